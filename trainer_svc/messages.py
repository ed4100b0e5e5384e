"""The trainer's values as proto messages and back: `TrainingConfig` <-> `mlxhub.v1.TrainingConfig`
(a zero field means "the default"), and a `TrainingJob` (or its stored list row) as the
`mlxhub.v1.TrainingJob` message. Only the servicer uses this module: below it, plain values."""

from __future__ import annotations

from typing import Any

from mlxhub import bounds
from mlxhub.timestamps import to_timestamp
from mlxhub.v1 import common_pb2, trainer_pb2
from trainer_svc.config import TrainingConfig
from trainer_svc.domain import TrainingJob

ENUMS = {"fine_tune_type": (trainer_pb2.FineTuneType, "FINE_TUNE_TYPE_"),
         "lr_schedule": (trainer_pb2.LearningRateSchedule, "LEARNING_RATE_SCHEDULE_")}


def config_from_proto(message: trainer_pb2.TrainingConfig) -> TrainingConfig:
    """The requested config: the fields set (non-zero) as given, the rest defaults; checked against the
    bounds trainer.proto declares (`(mlxhub.v1.bounds)`). The rules that tie fields together are the
    application's (`config.check`)."""
    bounds.check(message, "config.")
    given: dict[str, Any] = {}
    for name in TrainingConfig.model_fields:
        value = getattr(message, name)
        if not value:
            continue
        if name in ENUMS:
            enum, prefix = ENUMS[name]
            value = enum.Name(value).removeprefix(prefix).lower()
        given[name] = value
    return TrainingConfig(**given)


def config_to_proto(config: TrainingConfig | dict[str, Any]) -> trainer_pb2.TrainingConfig:
    values = config.as_dict() if isinstance(config, TrainingConfig) else TrainingConfig.stored(config).as_dict()
    for name, (enum, prefix) in ENUMS.items():
        values[name] = enum.Value(f"{prefix}{values[name].upper()}")
    return trainer_pb2.TrainingConfig(**values)


def checkpoint_message(c: dict | None) -> trainer_pb2.Checkpoint | None:
    if not c:
        return None
    return trainer_pb2.Checkpoint(step=c["step"], path=c["path"], sha256=c["sha256"],
                                  validation_loss=c["validation_loss"] or 0.0, save_time=to_timestamp(c["save_time"]))


def job_message(job: TrainingJob | dict[str, Any]) -> trainer_pb2.TrainingJob:
    """The job as the API shows it, from the aggregate or from its list row (`TrainingJob.summary()`)."""
    s = job.summary() if isinstance(job, TrainingJob) else job
    best = s["best_checkpoint"]
    return trainer_pb2.TrainingJob(
        id=s["id"], model=s["model"], base_version=s["base_version"], dataset=s["dataset"],
        dataset_sha256=s["dataset_sha256"], config=config_to_proto(s["config"]),
        state=trainer_pb2.TrainingJobState.Value(f"TRAINING_JOB_STATE_{s['state']}"), step=s["step"],
        total_steps=s["total_steps"], last_loss=s["last_loss"],
        best_validation_loss=(best["validation_loss"] if best else None) or 0.0,
        best_checkpoint=checkpoint_message(best), checkpoints=[checkpoint_message(c) for c in s["checkpoints"]],
        failure_reason=s["failure_reason"], output_version=s["output_version"], mlflow_run_id=s["mlflow_run_id"],
        worker=s["worker"], attempt=s["attempt"], create_time=to_timestamp(s["create_time"]),
        start_time=to_timestamp(s["start_time"]), end_time=to_timestamp(s["end_time"]), created_by=s["created_by"],
        output_model=s["output_model"], artifact_path=s["artifact_path"],
        artifact_files=[common_pb2.ArtifactFile(**f) for f in s["artifact_files"]],
        mlflow_status=s["mlflow_status"], cancel_requested=s["cancel_requested"], retried_from=s["retried_from"],
        idempotency_key=s["idempotency_key"], handoffs=s["handoffs"],
    )
