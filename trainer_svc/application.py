"""The trainer's commands and queries on its own eventsourcing application ("trainer",
own tables). Commands that may race (a cancel from the API while the worker saves
a checkpoint) reload and retry on the library's optimistic-concurrency conflict."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from mlxhub.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from trainer_svc.domain import CANCELLED, FAILED, QUEUED, RUNNING, TERMINAL, TrainingJob, job_id

UPDATE_ATTEMPTS = 20


def now() -> datetime:
    return datetime.now(UTC)


class TrainerApplication(Application[UUID]):
    name = "trainer"
    snapshotting_intervals = {TrainingJob: 50}  # noqa: RUF012  (the library's class attribute)

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        # Called with the highest notification id after each save (read-your-writes for lists).
        self.after_save: Callable[[int], None] | None = None

    def save(self, *objs: Any, **kwargs: Any):  # type: ignore[override]
        recordings = super().save(*objs, **kwargs)
        if recordings and self.after_save is not None:
            self.after_save(max(r.notification.id for r in recordings))
        return recordings

    # ----- queries --------------------------------------------------------------------------

    def get_job(self, id: str | UUID) -> TrainingJob:
        try:
            uid = id if isinstance(id, UUID) else UUID(id)
        except ValueError:
            raise InvalidArgument(f"id {id!r} is not a training job id (a UUID)", field="id") from None
        try:
            return self.repository.get(uid)
        except AggregateNotFoundError:
            raise NotFound(f"training job {id} not found", resource_type="training_job", resource_name=str(id)) from None

    def existing_job(self, principal: str, idempotency_key: str) -> TrainingJob | None:
        if not idempotency_key:
            return None
        try:
            return self.repository.get(job_id(principal, idempotency_key))
        except AggregateNotFoundError:
            return None

    # ----- commands -------------------------------------------------------------------------

    def create_job(self, **fields: Any) -> TrainingJob:
        job = TrainingJob(**fields)
        try:
            self.save(job)
        except IntegrityError:  # the same idempotency key won a race: return the first job
            return self.repository.get(job.id)
        return job

    def update(self, id: str | UUID, change: Callable[[TrainingJob], bool]) -> TrainingJob:
        """Apply `change` (it returns False when there is nothing to do) and save; retry on conflicts."""
        for _ in range(UPDATE_ATTEMPTS):
            job = self.get_job(id)
            if not change(job):
                return job
            try:
                self.save(job)
                return job
            except IntegrityError:
                continue
        raise Aborted(f"training job {id} is being changed by many writers at once; retry", resource_type="training_job")

    def cancel_job(self, id: str, meta: dict[str, str]) -> TrainingJob:
        def change(job: TrainingJob) -> bool:
            if job.state == CANCELLED or (job.state == RUNNING and job.cancel_requested):
                return False
            if job.state in TERMINAL:
                raise FailedPrecondition(f"training job {id} already {job.state.lower()}; only queued or running "
                                         "jobs can be cancelled", resource_type="training_job", resource_name=id)
            if job.state == QUEUED:
                job.cancel(step=job.step, end_time=now(), meta=meta)
            else:
                job.request_cancel(meta=meta)
            return True

        return self.update(id, change)

    def resume_job(self, id: str, meta: dict[str, str]) -> TrainingJob:
        def change(job: TrainingJob) -> bool:
            if job.state not in (CANCELLED, FAILED):
                raise FailedPrecondition(f"training job {id} is {job.state.lower()}; only cancelled or failed jobs "
                                         "can be resumed", resource_type="training_job", resource_name=id)
            if not job.checkpoints:
                raise FailedPrecondition(f"training job {id} has no checkpoint to resume from; retry it instead "
                                         "(POST /v1/training/jobs/{id}:retry)", resource_type="training_job",
                                         resource_name=id)
            job.resume(meta=meta)
            return True

        return self.update(id, change)

    def retry_job(self, id: str, meta: dict[str, str]) -> TrainingJob:
        old = self.get_job(id)
        if old.state not in (CANCELLED, FAILED):
            raise FailedPrecondition(f"training job {id} is {old.state.lower()}; only cancelled or failed jobs can be "
                                     "retried", resource_type="training_job", resource_name=id)
        fields = {k: getattr(old, k) for k in ("model", "base_version", "base_path", "dataset", "dataset_sha256",
                                               "dataset_path", "validation_path", "output_model", "config",
                                               "total_steps")}
        return self.create_job(principal=meta.get("principal", ""), idempotency_key="", retried_from=str(old.id),
                               meta=meta, **fields)

    # ----- worker side ----------------------------------------------------------------------

    def start_attempt(self, id: UUID, worker: str, queue_seq: int, max_attempts: int, meta: dict) -> TrainingJob:
        """Claim the job for `worker`, or fail it when it has used up its attempts."""

        def change(job: TrainingJob) -> bool:
            if job.queue_seq != queue_seq or job.state in TERMINAL:
                return False
            if job.attempt - job.handoffs >= max_attempts:
                job.fail(reason=f"gave up after {job.attempt} attempts: the worker ({job.worker}) was lost each time "
                         "(missed heartbeats)", step=job.step, end_time=now(), meta=meta)
                return True
            resume = job.last_checkpoint if job.state == RUNNING else job.resume_from
            job.start(worker=worker, attempt=job.attempt + 1, resume_from=resume, start_time=now(), meta=meta)
            return True

        return self.update(id, change)

    def record_checkpoint(self, id: UUID, attempt: int, checkpoint: dict[str, Any], meta: dict) -> TrainingJob:
        def change(job: TrainingJob) -> bool:
            if job.state != RUNNING or job.attempt != attempt:
                return False
            job.save_checkpoint(step=checkpoint["step"], path=checkpoint["path"], sha256=checkpoint["sha256"],
                                validation_loss=checkpoint["validation_loss"], loss=checkpoint["loss"],
                                save_time=now(), meta=meta)
            return True

        return self.update(id, change)

    def save_adapter(self, id: UUID, attempt: int, adapter: dict[str, Any], meta: dict) -> TrainingJob:
        """Record `attempt`'s adapter as the job's result, only while that attempt still holds the job and
        no adapter is recorded yet; the job as it is now. This is the fence before registering: an attempt
        that no longer holds the job (superseded, or ended) must register nothing."""

        def change(job: TrainingJob) -> bool:
            if job.state != RUNNING or job.attempt != attempt or job.adapter is not None:
                return False
            job.save_adapter(attempt=attempt, meta=meta, **adapter)
            return True

        return self.update(id, change)

    def holds(self, id: UUID, attempt: int) -> bool:
        """Whether `attempt` is still the job's current, running attempt (not superseded, not ended)."""
        job = self.get_job(id)
        return job.state == RUNNING and job.attempt == attempt

    def finish(self, id: UUID, attempt: int, outcome: str, meta: dict, **fields: Any) -> TrainingJob:
        """Record the attempt's end (succeeded / failed / cancelled) unless the job moved on without it."""

        def change(job: TrainingJob) -> bool:
            if job.state != RUNNING or job.attempt != attempt:
                return False
            getattr(job, outcome)(end_time=now(), meta=meta, **fields)
            return True

        return self.update(id, change)

    def hand_back(self, id: UUID, attempt: int, step: int, reason: str, meta: dict) -> TrainingJob:
        """The worker of `attempt` is shutting down and checkpointed: back on the queue, attempt not spent."""

        def change(job: TrainingJob) -> bool:
            if job.state != RUNNING or job.attempt != attempt:
                return False
            if job.cancel_requested:  # the user asked to stop it: back on the queue it would run again
                job.cancel(step=max(job.step, step), end_time=now(), meta=meta)
            else:
                job.hand_back(step=step, reason=reason, meta=meta)
            return True

        return self.update(id, change)

    def requeue_lost(self, id: UUID, attempt: int, max_attempts: int, reason: str, meta: dict) -> TrainingJob:
        """The worker of `attempt` stopped sending heartbeats: re-queue from the last checkpoint, or fail."""

        def change(job: TrainingJob) -> bool:
            if job.state != RUNNING or job.attempt != attempt:
                return False
            if job.cancel_requested:  # the lost worker never saw the cancel: honour it instead of re-queueing
                job.cancel(step=job.step, end_time=now(), meta=meta)
            elif job.attempt - job.handoffs >= max_attempts:
                job.fail(reason=f"{reason}; gave up after {job.attempt} attempts", step=job.step, end_time=now(),
                         meta=meta)
            else:
                job.requeue(reason=reason, meta=meta)
            return True

        return self.update(id, change)
