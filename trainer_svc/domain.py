"""The `TrainingJob` aggregate: one fine-tuning job and everything that happened to it.

A job created with an idempotency key gets the id uuid5(principal, key), so a
repeated request (even concurrent) collides on (id, version 1) and returns the
first job. State changes are events; per-step progress is not (it goes to NATS
only). The public methods hold the state rules (what may happen when) and record
events through the private `@event` methods; every event carries `meta` (who and
why) from the call's audit context (mlxhub.audit).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4, uuid5

from eventsourcing.domain import event

from mlxhub.audit import HubAggregate
from mlxhub.errors import FailedPrecondition
from trainer_svc.config import TrainingConfig

NAMESPACE = UUID("0b6f3c2e-9d1a-4f57-8a3e-6c1d2b7e9f40")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
# What a retry takes over from the job it retries.
RETRIED_FIELDS = ("model", "base_version", "base_path", "dataset", "dataset_sha256", "dataset_path",
                  "validation_path", "output_model", "config", "total_steps")


def job_id(principal: str, idempotency_key: str) -> UUID:
    """uuid5 of (principal, key): one job per key and caller; a random id without a key."""
    if not idempotency_key:
        return uuid4()
    return uuid5(NAMESPACE, f"training_job/{principal}/{idempotency_key}")


def now() -> datetime:
    return datetime.now(UTC)


class TrainingJob(HubAggregate):
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
        self.created_by = principal  # the job is its creator's (the id is made from it too)
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

    # ----- what the job is ------------------------------------------------------------------

    @property
    def training_config(self) -> TrainingConfig:
        return TrainingConfig.stored(self.config)

    @property
    def last_checkpoint(self) -> dict[str, Any] | None:
        return self.checkpoints[-1] if self.checkpoints else None

    @property
    def best_validation_loss(self) -> float | None:
        return self.best_checkpoint["validation_loss"] if self.best_checkpoint else None

    def held_by(self, attempt: int) -> bool:
        """Whether `attempt` is the job's current, running attempt (not superseded, not ended)."""
        return self.state == RUNNING and self.attempt == attempt

    def summary(self) -> dict[str, Any]:
        """Everything the API shows of the job, as plain values."""
        return {
            "id": str(self.id), "model": self.model, "base_version": self.base_version, "dataset": self.dataset,
            "dataset_sha256": self.dataset_sha256, "config": dict(self.config), "state": self.state,
            "step": self.step, "total_steps": self.total_steps, "last_loss": self.last_loss,
            "best_checkpoint": self.best_checkpoint, "checkpoints": list(self.checkpoints),
            "failure_reason": self.failure_reason, "output_version": self.output_version,
            "mlflow_run_id": self.mlflow_run_id, "worker": self.worker, "attempt": self.attempt,
            "create_time": self.created_on, "start_time": self.start_time, "end_time": self.end_time,
            "created_by": self.created_by, "output_model": self.output_model, "artifact_path": self.artifact_path,
            "artifact_files": list(self.artifact_files), "mlflow_status": self.mlflow_status,
            "cancel_requested": self.cancel_requested, "retried_from": self.retried_from,
            "idempotency_key": self.idempotency_key, "handoffs": self.handoffs,
        }

    # ----- the API's commands ---------------------------------------------------------------

    def refused(self, message: str) -> FailedPrecondition:
        return FailedPrecondition(message, resource_type="training_job", resource_name=str(self.id))

    def cancel(self) -> None:
        """Cancel a queued job now; ask a running one to stop (its worker ends it). Twice is once."""
        if self.state == CANCELLED or (self.state == RUNNING and self.cancel_requested):
            return
        if self.state in TERMINAL:
            raise self.refused(f"training job {self.id} already {self.state.lower()}; only queued or running "
                               "jobs can be cancelled")
        if self.state == QUEUED:
            self._cancel(step=self.step, end_time=now())
        else:
            self._request_cancel()

    def resume(self) -> None:
        """Back on the queue from the last checkpoint (a cancelled or failed job that has one)."""
        if self.state not in (CANCELLED, FAILED):
            raise self.refused(f"training job {self.id} is {self.state.lower()}; only cancelled or failed jobs "
                               "can be resumed")
        if not self.checkpoints:
            raise self.refused(f"training job {self.id} has no checkpoint to resume from; retry it instead "
                               "(POST /v1/training/jobs/{id}:retry)")
        self._resume()

    def retry_fields(self) -> dict[str, Any]:
        """What a new job that retries this one (cancelled or failed) starts from."""
        if self.state not in (CANCELLED, FAILED):
            raise self.refused(f"training job {self.id} is {self.state.lower()}; only cancelled or failed jobs can "
                               "be retried")
        return {name: getattr(self, name) for name in RETRIED_FIELDS}

    # ----- the workers' and the reaper's ----------------------------------------------------

    def start_attempt(self, worker: str, queue_seq: int, max_attempts: int) -> None:
        """`worker` claims work item `queue_seq`, or the job fails when it has used up its attempts.
        A stale work item (the job was re-queued since, or has ended) changes nothing."""
        if self.queue_seq != queue_seq or self.state in TERMINAL:
            return
        if self.attempt - self.handoffs >= max_attempts:
            self._fail(reason=f"gave up after {self.attempt} attempts: the worker ({self.worker}) was lost each time "
                       "(missed heartbeats)", step=self.step, end_time=now())
            return
        resume = self.last_checkpoint if self.state == RUNNING else self.resume_from
        self._start(worker=worker, attempt=self.attempt + 1, resume_from=resume, start_time=now())

    def record_checkpoint(self, attempt: int, step: int, path: str, sha256: str, validation_loss: float | None,
                          loss: float) -> None:
        if self.held_by(attempt):
            self._save_checkpoint(step=step, path=path, sha256=sha256, validation_loss=validation_loss, loss=loss,
                                  save_time=now())

    def save_adapter(self, attempt: int, path: str, files: list[dict[str, Any]], step: int, loss: float,
                     metrics: dict[str, float], mlflow_run_id: str, mlflow_status: str) -> None:
        """Record `attempt`'s adapter as the job's result, only while that attempt still holds the job and no
        adapter is recorded yet. This is the fence before registering: an attempt that no longer holds the
        job (superseded, or ended) must register nothing."""
        if self.held_by(attempt) and self.adapter is None:
            self._save_adapter(attempt=attempt, path=path, files=files, step=step, loss=loss, metrics=metrics,
                               mlflow_run_id=mlflow_run_id, mlflow_status=mlflow_status)

    def succeed(self, attempt: int, step: int, loss: float, output_version: str, artifact_path: str,
                artifact_files: list[dict[str, Any]], mlflow_run_id: str, mlflow_status: str) -> None:
        if self.held_by(attempt):
            self._succeed(step=step, loss=loss, output_version=output_version, artifact_path=artifact_path,
                          artifact_files=artifact_files, mlflow_run_id=mlflow_run_id, mlflow_status=mlflow_status,
                          end_time=now())

    def fail(self, attempt: int, reason: str, step: int) -> None:
        if self.held_by(attempt):
            self._fail(reason=reason, step=step, end_time=now())

    def stop_cancelled(self, attempt: int, step: int) -> None:
        """The attempt stopped on the user's cancel request."""
        if self.held_by(attempt):
            self._cancel(step=step, end_time=now())

    def hand_back(self, attempt: int, step: int, reason: str) -> None:
        """The worker of `attempt` is shutting down and checkpointed: back on the queue, attempt not spent."""
        if not self.held_by(attempt):
            return
        if self.cancel_requested:  # the user asked to stop it: back on the queue it would run again
            self._cancel(step=max(self.step, step), end_time=now())
        else:
            self._hand_back(step=step, reason=reason)

    def requeue_lost(self, attempt: int, max_attempts: int, reason: str) -> None:
        """The worker of `attempt` stopped sending heartbeats: re-queue from the last checkpoint, or fail."""
        if not self.held_by(attempt):
            return
        if self.cancel_requested:  # the lost worker never saw the cancel: honour it instead of re-queueing
            self._cancel(step=self.step, end_time=now())
        elif self.attempt - self.handoffs >= max_attempts:
            self._fail(reason=f"{reason}; gave up after {self.attempt} attempts", step=self.step, end_time=now())
        else:
            self._requeue(reason=reason)

    # ----- the events (names and attributes are stored: keep them) ---------------------------

    @event("TrainingJobStarted")
    def _start(self, worker: str, attempt: int, resume_from: dict[str, Any] | None, start_time: datetime) -> None:
        self.state = RUNNING
        self.worker = worker
        self.attempt = attempt
        self.resume_from = resume_from
        self.step = resume_from["step"] if resume_from else 0
        self.start_time = self.start_time or start_time
        self.attempt_start_time = start_time
        self.cancel_requested = False

    @event("CheckpointSaved")
    def _save_checkpoint(self, step: int, path: str, sha256: str, validation_loss: float | None, loss: float,
                         save_time: datetime) -> None:
        checkpoint = {"step": step, "path": path, "sha256": sha256, "validation_loss": validation_loss,
                      "save_time": save_time}
        self.checkpoints.append(checkpoint)
        self.step = step
        self.last_loss = loss
        if validation_loss is not None and (
            self.best_checkpoint is None or validation_loss < self.best_checkpoint["validation_loss"]
        ):
            self.best_checkpoint = checkpoint

    @event("TrainingJobCancelRequested")
    def _request_cancel(self) -> None:
        self.cancel_requested = True

    @event("TrainingJobCancelled")
    def _cancel(self, step: int, end_time: datetime) -> None:
        self.state = CANCELLED
        self.step = max(self.step, step)
        self.end_time = end_time

    @event("TrainingJobFailed")
    def _fail(self, reason: str, step: int, end_time: datetime) -> None:
        self.state = FAILED
        self.failure_reason = reason
        self.step = max(self.step, step)
        self.end_time = end_time

    @event("TrainingJobRequeued")
    def _requeue(self, reason: str) -> None:
        """The worker was lost (missed heartbeats): back on the queue, from the last checkpoint."""
        self.state = QUEUED
        self.queue_seq += 1
        self.resume_from = self.last_checkpoint
        self.failure_reason = reason

    @event("TrainingJobHandedBack")
    def _hand_back(self, step: int, reason: str) -> None:
        """The worker shut down gracefully: it checkpointed at `step` and put the job back on the queue."""
        self.state = QUEUED
        self.queue_seq += 1
        self.resume_from = self.last_checkpoint
        self.step = max(self.step, step)
        self.handoffs += 1

    @event("TrainingJobAdapterSaved")
    def _save_adapter(self, attempt: int, path: str, files: list[dict[str, Any]], step: int, loss: float,
                      metrics: dict[str, float], mlflow_run_id: str, mlflow_status: str) -> None:
        """Training is over and the adapter is on disk, complete: from now on the job's result is this
        directory, never retrained or rewritten. What is left (registering it, recording success)
        is idempotent, so any later attempt can finish it."""
        self.adapter = {"attempt": attempt, "path": path, "files": list(files), "step": step, "loss": loss,
                        "metrics": dict(metrics), "mlflow_run_id": mlflow_run_id, "mlflow_status": mlflow_status}
        self.step = max(self.step, step)

    @event("TrainingJobResumed")
    def _resume(self) -> None:
        self.state = QUEUED
        self.queue_seq += 1
        self.resume_from = self.last_checkpoint
        self.failure_reason = ""
        self.end_time = None

    @event("TrainingJobSucceeded")
    def _succeed(self, step: int, loss: float, output_version: str, artifact_path: str,
                 artifact_files: list[dict[str, Any]], mlflow_run_id: str, mlflow_status: str,
                 end_time: datetime) -> None:
        self.state = SUCCEEDED
        self.step = step
        self.last_loss = loss
        self.output_version = output_version
        self.artifact_path = artifact_path
        self.artifact_files = list(artifact_files)
        self.mlflow_run_id = mlflow_run_id
        self.mlflow_status = mlflow_status
        self.end_time = end_time
