"""The `TrainingJob` aggregate: one fine-tuning job and everything that happened to it.

A job created with an idempotency key gets the id uuid5(principal, key), so a
repeated request (even concurrent) collides on (id, version 1) and returns the
first job. State changes are events; per-step progress is not (it goes to NATS
only). Every event carries `meta` (principal, request id, trace id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

NAMESPACE = UUID("0b6f3c2e-9d1a-4f57-8a3e-6c1d2b7e9f40")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})


def job_id(principal: str, idempotency_key: str) -> UUID:
    """uuid5 of (principal, key): one job per key and caller; a random id without a key."""
    if not idempotency_key:
        return uuid4()
    return uuid5(NAMESPACE, f"training_job/{principal}/{idempotency_key}")


class TrainingJob(Aggregate):
    """A fine-tuning job: queued, run by a worker (maybe several attempts), finished once."""

    # Attempts that ended by a worker's graceful shutdown; they do not count against max attempts.
    # A class default, so jobs (and snapshots) from before this field load with 0.
    handoffs = 0
    # The trained adapter an attempt wrote and recorded before registering it (see `save_adapter`);
    # None until then. A class default, like `handoffs`.
    adapter: dict[str, Any] | None = None

    @staticmethod
    def create_id(principal: str, idempotency_key: str, **_: Any) -> UUID:
        return job_id(principal, idempotency_key)

    @event("TrainingJobQueued")
    def __init__(
        self,
        principal: str,
        idempotency_key: str,
        model: str,
        base_version: str,
        base_path: str,
        dataset: str,
        dataset_sha256: str,
        dataset_path: str,
        validation_path: str,
        output_model: str,
        config: dict[str, Any],
        total_steps: int,
        retried_from: str,
        meta: dict[str, str],
    ) -> None:
        self.idempotency_key = idempotency_key
        self.model = model
        self.base_version = base_version
        self.base_path = base_path
        self.dataset = dataset
        self.dataset_sha256 = dataset_sha256
        self.dataset_path = dataset_path
        self.validation_path = validation_path
        self.output_model = output_model
        self.config = dict(config)
        self.total_steps = total_steps
        self.retried_from = retried_from
        self.created_by = meta.get("principal", "")
        self.state = QUEUED
        self.queue_seq = 1  # which work item is current: bumped on every (re)queue
        self.step = 0
        self.last_loss = 0.0
        self.attempt = 0
        self.worker = ""
        self.start_time: datetime | None = None
        self.attempt_start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.checkpoints: list[dict[str, Any]] = []
        self.best_checkpoint: dict[str, Any] | None = None
        self.resume_from: dict[str, Any] | None = None
        self.cancel_requested = False
        self.failure_reason = ""
        self.output_version = ""
        self.artifact_path = ""
        self.artifact_files: list[dict[str, Any]] = []
        self.mlflow_run_id = ""
        self.mlflow_status = ""

    @event("TrainingJobStarted")
    def start(
        self, worker: str, attempt: int, resume_from: dict[str, Any] | None, start_time: datetime, meta: dict[str, str]
    ) -> None:
        self.state = RUNNING
        self.worker = worker
        self.attempt = attempt
        self.resume_from = resume_from
        self.step = resume_from["step"] if resume_from else 0
        self.start_time = self.start_time or start_time
        self.attempt_start_time = start_time
        self.cancel_requested = False

    @event("CheckpointSaved")
    def save_checkpoint(
        self, step: int, path: str, sha256: str, validation_loss: float | None, loss: float, save_time: datetime,
        meta: dict[str, str],
    ) -> None:
        checkpoint = {"step": step, "path": path, "sha256": sha256, "validation_loss": validation_loss,
                      "save_time": save_time}
        self.checkpoints.append(checkpoint)
        self.step = step
        self.last_loss = loss
        if validation_loss is not None and (
            self.best_checkpoint is None or validation_loss < self.best_checkpoint["validation_loss"]
        ):
            self.best_checkpoint = checkpoint

    @property
    def last_checkpoint(self) -> dict[str, Any] | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def best_validation_loss(self) -> float | None:
        return self.best_checkpoint["validation_loss"] if self.best_checkpoint else None

    @event("TrainingJobCancelRequested")
    def request_cancel(self, meta: dict[str, str]) -> None:
        self.cancel_requested = True

    @event("TrainingJobCancelled")
    def cancel(self, step: int, end_time: datetime, meta: dict[str, str]) -> None:
        self.state = CANCELLED
        self.step = max(self.step, step)
        self.end_time = end_time

    @event("TrainingJobFailed")
    def fail(self, reason: str, step: int, end_time: datetime, meta: dict[str, str]) -> None:
        self.state = FAILED
        self.failure_reason = reason
        self.step = max(self.step, step)
        self.end_time = end_time

    @event("TrainingJobRequeued")
    def requeue(self, reason: str, meta: dict[str, str]) -> None:
        """The worker was lost (missed heartbeats): back on the queue, from the last checkpoint."""
        self.state = QUEUED
        self.queue_seq += 1
        self.resume_from = self.last_checkpoint
        self.failure_reason = reason

    @event("TrainingJobHandedBack")
    def hand_back(self, step: int, reason: str, meta: dict[str, str]) -> None:
        """The worker shut down gracefully: it checkpointed at `step` and put the job back on the queue."""
        self.state = QUEUED
        self.queue_seq += 1
        self.resume_from = self.last_checkpoint
        self.step = max(self.step, step)
        self.handoffs += 1

    @event("TrainingJobAdapterSaved")
    def save_adapter(
        self, attempt: int, path: str, files: list[dict[str, Any]], step: int, loss: float,
        metrics: dict[str, float], mlflow_run_id: str, mlflow_status: str, meta: dict[str, str],
    ) -> None:
        """Training is over and the adapter is on disk, complete: from now on the job's result is this
        directory, never retrained or rewritten. What is left (registering it, recording success)
        is idempotent, so any later attempt can finish it."""
        self.adapter = {"attempt": attempt, "path": path, "files": list(files), "step": step, "loss": loss,
                        "metrics": dict(metrics), "mlflow_run_id": mlflow_run_id, "mlflow_status": mlflow_status}
        self.step = max(self.step, step)

    @event("TrainingJobResumed")
    def resume(self, meta: dict[str, str]) -> None:
        self.state = QUEUED
        self.queue_seq += 1
        self.resume_from = self.last_checkpoint
        self.failure_reason = ""
        self.end_time = None

    @event("TrainingJobSucceeded")
    def succeed(
        self,
        step: int,
        loss: float,
        output_version: str,
        artifact_path: str,
        artifact_files: list[dict[str, Any]],
        mlflow_run_id: str,
        mlflow_status: str,
        end_time: datetime,
        meta: dict[str, str],
    ) -> None:
        self.state = SUCCEEDED
        self.step = step
        self.last_loss = loss
        self.output_version = output_version
        self.artifact_path = artifact_path
        self.artifact_files = list(artifact_files)
        self.mlflow_run_id = mlflow_run_id
        self.mlflow_status = mlflow_status
        self.end_time = end_time
