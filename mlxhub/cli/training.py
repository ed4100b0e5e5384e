"""`mlx-hub train` (queue a LoRA job and follow it with a live progress bar) and
`mlx-hub jobs list|show|watch|cancel|resume|retry`, over the trainer's gRPC API."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, console, details, emit, when
from mlxhub.v1 import trainer_pb2 as pb

jobs_app = typer.Typer(no_args_is_help=True, help="Training jobs: list, show, watch, cancel, resume, retry.")


def state_name(state: int) -> str:
    return pb.TrainingJobState.Name(state).removeprefix("TRAINING_JOB_STATE_").lower()


def job_rows(job: pb.TrainingJob) -> Table:
    config = json_format.MessageToDict(job.config, preserving_proto_field_name=True)
    rows = [
        ("id", job.id), ("state", state_name(job.state) + (" (cancel requested)" if job.cancel_requested else "")),
        ("model", f"{job.model} -> {job.base_version}"), ("dataset", f"{job.dataset} (sha256 {job.dataset_sha256[:12]})"),
        ("step", f"{job.step} / {job.total_steps}"), ("last loss", f"{job.last_loss:.4f}" if job.last_loss else ""),
        ("best checkpoint", f"step {job.best_checkpoint.step}, validation loss {job.best_validation_loss:.4f}"
         if job.HasField("best_checkpoint") else ""),
        ("checkpoints", ", ".join(str(c.step) for c in job.checkpoints)),
        ("attempt", f"{job.attempt} on {job.worker}" if job.attempt else ""), ("failure", job.failure_reason),
        ("output version", job.output_version), ("artifact", job.artifact_path),
        ("mlflow", f"{job.mlflow_run_id} ({job.mlflow_status})" if job.mlflow_run_id else job.mlflow_status),
        ("config", json.dumps(config, separators=(",", ":"))),
        ("created", f"{when(job.create_time)} by {job.created_by}"), ("ended", when(job.end_time)),
    ]
    return details(f"training job {job.id}", [(k, v) for k, v in rows if v not in ("", None)])


def follow(job_id: str) -> pb.TrainingJob:
    """Live progress bar (loss, tokens/s, ETA) until the job ends; returns the final job."""
    job = None
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  {task.fields[tps]} tok/s"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    trainer = rpc.connect("trainer")
    try:
        # errors() outside the Progress: the bar is closed before an error is printed
        with trainer.errors(), Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("queued", total=None, loss="-", val="-", tps="-")
            for update in trainer.start("WatchTrainingJob", pb.WatchTrainingJobRequest(id=job_id)):
                if update.HasField("job"):
                    job = update.job
                    progress.update(task, description=state_name(job.state), total=job.total_steps or None,
                                    completed=job.step)
                    continue
                p = update.progress
                fields = {"val": f"{p.validation_loss:.3f}"} if p.has_validation_loss else {}
                if p.step:
                    fields.update(loss=f"{p.loss:.3f}", tps=f"{p.tokens_per_second:.0f}")
                progress.update(task, completed=p.step, **fields)
    except KeyboardInterrupt:
        console.print(f"stopped watching; the job goes on (mlx-hub jobs watch {job_id})")
        raise typer.Exit(0) from None
    return job


def finish(job: pb.TrainingJob) -> None:
    if job.state == pb.TRAINING_JOB_STATE_SUCCEEDED:
        console.print(f"[green]succeeded[/]: new version [bold]{job.output_version}[/] (job {job.id})")
        if job.mlflow_status and not job.mlflow_run_id:
            console.print(f"[yellow]{job.mlflow_status}[/]")
        return
    console.print(job_rows(job))
    raise typer.Exit(1)


def train(
    model: Annotated[str, typer.Argument(help="Base model: NAME, NAME@ALIAS or NAME/versions/N.")],
    dataset: Annotated[str, typer.Argument(help="A registered dataset.")],
    iters: Annotated[int, typer.Option(help="Training steps (default 1000, as mlx_lm.lora).")] = 0,
    epochs: Annotated[int, typer.Option(help="Epochs instead of --iters.")] = 0,
    batch_size: Annotated[int, typer.Option()] = 0,
    learning_rate: Annotated[float, typer.Option()] = 0.0,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 0,
    num_layers: Annotated[int, typer.Option(help="Layers to adapt from the top; -1 for all.")] = 0,
    max_seq_length: Annotated[int, typer.Option()] = 0,
    save_every: Annotated[int, typer.Option(help="Checkpoint interval in steps.")] = 0,
    validation_split: Annotated[float, typer.Option(help="Fraction held out for validation.")] = 0.0,
    steps_per_eval: Annotated[int, typer.Option()] = 0,
    mask_prompt: Annotated[bool, typer.Option(help="Train on the answers only.")] = False,
    dora: Annotated[bool, typer.Option(help="DoRA instead of LoRA.")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    output_model: Annotated[str, typer.Option(help="Model that receives the new version (default: the base).")] = "",
    idempotency_key: Annotated[str, typer.Option(help="Repeat-safe: the same key returns the same job.")] = "",
    detach: Annotated[bool, typer.Option(help="Queue the job and return without watching.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune MODEL on DATASET with LoRA; shows live progress and ends with the new version."""
    config = pb.TrainingConfig(
        iters=iters, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, rank=rank,
        num_layers=num_layers, max_seq_length=max_seq_length, save_every=save_every,
        validation_split=validation_split, steps_per_eval=steps_per_eval, mask_prompt=mask_prompt, seed=seed,
        fine_tune_type=pb.FINE_TUNE_TYPE_DORA if dora else pb.FINE_TUNE_TYPE_UNSPECIFIED,
    )
    request = pb.CreateTrainingJobRequest(model=model, dataset=dataset, config=config, output_model=output_model,
                                          idempotency_key=idempotency_key)
    job = rpc.call("CreateTrainingJob", request, service="trainer").job
    if detach or as_json:
        emit(job, as_json, job_rows)
        return
    console.print(f"queued job [bold]{job.id}[/] ({job.total_steps} steps on {job.base_version})")
    finish(follow(job.id))


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str, typer.Option(help="queued, running, succeeded, failed or cancelled.")] = "",
    model: Annotated[str, typer.Option(help="Base or output model name.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """List training jobs, newest first."""
    try:
        value = pb.TrainingJobState.Value(f"TRAINING_JOB_STATE_{state.upper()}") if state else 0
    except ValueError:
        raise typer.BadParameter("use queued, running, succeeded, failed or cancelled", param_hint="--state") from None
    request = pb.ListTrainingJobsRequest(state=value, model=model)
    response = rpc.call_all("ListTrainingJobs", request, "jobs", service="trainer")

    def render(r: pb.ListTrainingJobsResponse) -> Table:
        table = Table(title="training jobs")
        for column in ("id", "state", "model", "dataset", "step", "loss", "output", "created"):
            table.add_column(column, overflow="fold")
        for j in r.jobs:
            table.add_row(j.id, state_name(j.state), j.base_version, j.dataset, f"{j.step}/{j.total_steps}",
                          f"{j.last_loss:.4f}" if j.last_loss else "", j.output_version, when(j.create_time))
        return table

    emit(response, as_json, render)


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: JsonOpt = False) -> None:
    """Show one job: state, steps, checkpoints, failure reason, output version."""
    emit(rpc.call("GetTrainingJob", pb.GetTrainingJobRequest(id=job_id), service="trainer").job, as_json, job_rows)


@jobs_app.command("watch")
def jobs_watch(job_id: str) -> None:
    """Follow a job's progress (replays what happened so far) until it ends."""
    finish(follow(job_id))


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, as_json: JsonOpt = False) -> None:
    """Cancel a job; a running one stops at its next step and keeps its last checkpoint."""
    emit(rpc.call("CancelTrainingJob", pb.CancelTrainingJobRequest(id=job_id), service="trainer").job, as_json, job_rows)


@jobs_app.command("resume")
def jobs_resume(job_id: str, as_json: JsonOpt = False) -> None:
    """Continue a cancelled or failed job from its last checkpoint (optimizer state and step included)."""
    emit(rpc.call("ResumeTrainingJob", pb.ResumeTrainingJobRequest(id=job_id), service="trainer").job, as_json, job_rows)


@jobs_app.command("retry")
def jobs_retry(job_id: str, as_json: JsonOpt = False) -> None:
    """Start a cancelled or failed job again from step 0, as a new job."""
    emit(rpc.call("RetryTrainingJob", pb.RetryTrainingJobRequest(id=job_id), service="trainer").job, as_json, job_rows)
