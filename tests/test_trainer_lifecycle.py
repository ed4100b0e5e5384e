"""Job lifecycle on the tiny model: watch, cancel and resume (optimizer state and step
counter restored exactly), retry, list, NaN loss, disk full, MLflow unreachable."""

from __future__ import annotations

import errno
import math

import grpc
import mlx.core as mx
import pytest
from trainer_util import create, register, wait

from bench.tiny_model import make_tiny_model
from mlxhub.v1 import registry_pb2, trainer_pb2

S = trainer_pb2


@pytest.fixture
def hub(trainer_stub, registry_stub, tiny_model, training_chats):
    register(registry_stub, tiny_model, training_chats)
    return trainer_stub, registry_stub


def watch(trainer_stub, job_id: str) -> list[S.WatchTrainingJobResponse]:
    return list(trainer_stub.WatchTrainingJob(S.WatchTrainingJobRequest(id=job_id), timeout=120))


def test_watch_replays_progress_and_ends_with_the_final_job(hub):
    trainer_stub, _ = hub
    job = create(trainer_stub, iters=10, validation_split=0.25, steps_per_eval=5)
    updates = watch(trainer_stub, job.id)
    steps = [u.progress for u in updates if u.HasField("progress")]
    assert updates[0].HasField("job") and updates[-1].job.state == S.TRAINING_JOB_STATE_SUCCEEDED
    train_steps = [p for p in steps if p.step > 0]
    assert [p.step for p in train_steps] == list(range(1, 11))
    assert all(p.loss > 0 and p.tokens_per_second > 0 and p.peak_memory_gb > 0 for p in train_steps)
    assert all(p.learning_rate == pytest.approx(1e-3) for p in train_steps)
    assert [p.trained_tokens for p in train_steps] == sorted(p.trained_tokens for p in train_steps)
    assert [p.step for p in steps if p.has_validation_loss] == [0, 5, 10]
    assert train_steps[-1].loss < train_steps[0].loss  # it learns
    again = watch(trainer_stub, job.id)  # after the end: the same replay, then the final job
    assert [u.progress.step for u in again if u.HasField("progress")] == [p.step for p in steps]


def final_adapter(job) -> dict[str, mx.array]:
    return mx.load(f"{job.artifact_path}/adapters.safetensors")


def test_cancel_then_resume_continues_from_the_checkpoint_exactly(hub):
    trainer_stub, _ = hub
    straight = wait(trainer_stub, create(trainer_stub, iters=300, save_every=50, key="straight").id)
    assert straight.state == S.TRAINING_JOB_STATE_SUCCEEDED, straight.failure_reason

    job = create(trainer_stub, model="tiny/versions/1", iters=300, save_every=50, key="interrupted")
    wait(trainer_stub, job.id, until=lambda j: j.step >= 1 or j.state != S.TRAINING_JOB_STATE_QUEUED)
    cancelled = trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=job.id)).job
    assert cancelled.cancel_requested or cancelled.state == S.TRAINING_JOB_STATE_CANCELLED
    stopped = wait(trainer_stub, job.id)
    assert stopped.state == S.TRAINING_JOB_STATE_CANCELLED, stopped.failure_reason
    assert 0 < stopped.step < 300 and stopped.checkpoints[-1].step == stopped.step  # kept where it stopped
    with pytest.raises(grpc.RpcError) as caught:
        trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=straight.id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    resumed = trainer_stub.ResumeTrainingJob(S.ResumeTrainingJobRequest(id=job.id)).job
    assert resumed.state == S.TRAINING_JOB_STATE_QUEUED
    done = wait(trainer_stub, job.id)
    assert done.state == S.TRAINING_JOB_STATE_SUCCEEDED and done.step == 300 and done.attempt == 2
    # Same seed, same data order, Adam moments and step counter restored: the same weights as never stopping.
    a, b = final_adapter(straight), final_adapter(done)
    assert set(a) == set(b)
    for name in a:
        assert mx.allclose(a[name], b[name], atol=1e-5).item(), name


def test_retry_starts_a_new_job_from_step_zero(hub):
    trainer_stub, _ = hub
    job = create(trainer_stub, iters=100000)
    trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=job.id))
    first = wait(trainer_stub, job.id)
    assert first.state == S.TRAINING_JOB_STATE_CANCELLED
    retry = trainer_stub.RetryTrainingJob(S.RetryTrainingJobRequest(id=job.id)).job
    assert retry.id != job.id and retry.retried_from == job.id and retry.step == 0
    trainer_stub.CancelTrainingJob(S.CancelTrainingJobRequest(id=retry.id))
    assert wait(trainer_stub, retry.id).state == S.TRAINING_JOB_STATE_CANCELLED

    listed = trainer_stub.ListTrainingJobs(S.ListTrainingJobsRequest(state=S.TRAINING_JOB_STATE_CANCELLED)).jobs
    assert [j.id for j in listed] == [retry.id, job.id]  # newest first
    page = trainer_stub.ListTrainingJobs(S.ListTrainingJobsRequest(model="tiny", page_size=1))
    assert [j.id for j in page.jobs] == [retry.id] and page.next_page_token
    rest = trainer_stub.ListTrainingJobs(S.ListTrainingJobsRequest(model="tiny", page_token=page.next_page_token))
    assert [j.id for j in rest.jobs] == [job.id]
    assert not trainer_stub.ListTrainingJobs(S.ListTrainingJobsRequest(model="other")).jobs


def test_nan_loss_fails_the_job_with_a_clear_reason(trainer_stub, registry_stub, training_chats, tmp_path):
    register(registry_stub, make_tiny_model(tmp_path / "nan", nan=True), training_chats)
    job = wait(trainer_stub, create(trainer_stub).id)
    assert job.state == S.TRAINING_JOB_STATE_FAILED
    assert "loss is NaN at step 1" in job.failure_reason and job.end_time.seconds


def test_chat_dataset_needs_a_chat_template(trainer_stub, registry_stub, training_chats, tmp_path):
    register(registry_stub, make_tiny_model(tmp_path / "plain", chat_template=False), training_chats)
    with pytest.raises(grpc.RpcError) as caught:
        create(trainer_stub)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "no chat template" in caught.value.details()


def test_disk_full_while_writing_leaves_no_artifact_and_fails_the_job(hub, settings, monkeypatch):
    from trainer_svc import artifacts

    def full_disk(path, weights):
        path.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts, "save_weights", full_disk)
    trainer_stub, registry_stub = hub
    job = wait(trainer_stub, create(trainer_stub).id)
    assert job.state == S.TRAINING_JOB_STATE_FAILED
    assert "disk full while writing the adapter" in job.failure_reason and "no partial artifact" in job.failure_reason
    adapters = settings.models_dir / "tiny" / "adapters"
    assert list(adapters.iterdir()) == []  # neither the final directory nor the temp one
    model = registry_stub.GetModel(registry_pb2.GetModelRequest(name="tiny")).model
    assert model.latest_version == 1  # nothing registered


def test_unreachable_mlflow_does_not_fail_the_job(hub, monkeypatch, free_tcp_port, trainer):
    uri = f"http://127.0.0.1:{free_tcp_port}"  # MLFLOW_TRACKING_URI, as the workers' settings
    for worker in trainer.workers:
        monkeypatch.setattr(worker, "settings", worker.settings.model_copy(update={"mlflow_tracking_uri": uri}))
    trainer_stub, _ = hub
    job = wait(trainer_stub, create(trainer_stub).id)
    assert job.state == S.TRAINING_JOB_STATE_SUCCEEDED, job.failure_reason
    assert job.mlflow_run_id == "" and job.mlflow_status.startswith("MLflow unreachable")
    assert math.isfinite(job.last_loss)


@pytest.fixture
def free_tcp_port() -> int:
    from mlxhub.embedded import free_port

    return free_port()
