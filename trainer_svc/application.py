"""The trainer's commands and queries (the service layer), on the hub's event-sourced application
("trainer", own tables). Commands take plain values and own their whole use case: creating a job
checks the idempotency key, resolves the model and data through the registry, records the job and
queues its work item. gRPC and proto stay outside; who and why come from the audit context.

Commands that may race (a cancel from the API while the worker saves a checkpoint) reload and retry
on the library's optimistic-concurrency conflict; the job's own methods hold the state rules."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from mlxhub.errors import Aborted, InvalidArgument, NotFound
from mlxhub.eventstore import HubApplication
from trainer_svc import intake
from trainer_svc.config import TrainingConfig
from trainer_svc.domain import TrainingJob, job_id
from trainer_svc.registry_client import RegistryClient

UPDATE_ATTEMPTS = 20

# Puts a job's current work item on the queue: (job id, queue_seq).
Enqueue = Callable[[UUID, int], None]


class TrainerApplication(HubApplication):
    name = "trainer"
    snapshotting_intervals = {TrainingJob: 50}  # noqa: RUF012  (the library's class attribute)

    def __init__(self, env: dict[str, str] | None = None, registry: RegistryClient | None = None,
                 enqueue: Enqueue | None = None, data_roots: tuple[Path, ...] = ()) -> None:
        """`registry` and `enqueue` are what the API's commands need (a worker's application has neither)."""
        super().__init__(env)
        self.registry = registry
        self.enqueue = enqueue
        self.data_roots = tuple(data_roots)

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

    def holds(self, id: UUID, attempt: int) -> bool:
        """Whether `attempt` is still the job's current, running attempt (not superseded, not ended)."""
        return self.get_job(id).held_by(attempt)

    # ----- the API's commands ---------------------------------------------------------------

    def create_job(self, principal: str, idempotency_key: str, model_ref: str, dataset: str, config: TrainingConfig,
                   output_model: str = "", credentials: Sequence[tuple[str, str]] = ()) -> TrainingJob:
        """Queue a job training `model_ref` on `dataset`, or return the caller's job with the same key.
        `credentials`: the caller's authorization, forwarded to the registry for the look-ups."""
        job = self.existing_job(principal, idempotency_key)
        if job is not None:
            return job
        assert self.registry is not None, "this application was made without a registry client"
        fields = intake.prepare(self.registry, list(credentials), self.data_roots, model_ref, dataset, config,
                                output_model)
        return self.queue_new(TrainingJob(principal=principal, idempotency_key=idempotency_key, **fields))

    def cancel_job(self, id: str) -> TrainingJob:
        return self.change(id, TrainingJob.cancel)

    def resume_job(self, id: str) -> TrainingJob:
        job = self.change(id, TrainingJob.resume)
        self.queue(job)
        return job

    def retry_job(self, id: str, principal: str) -> TrainingJob:
        """A new job (for `principal`) with the failed or cancelled job's model, data and config."""
        fields = self.get_job(id).retry_fields()
        return self.queue_new(TrainingJob(principal=principal, idempotency_key="", retried_from=str(id), **fields))

    # ----- the workers' and the reaper's ----------------------------------------------------

    def start_attempt(self, id: UUID, worker: str, queue_seq: int, max_attempts: int) -> TrainingJob:
        """Claim the job for `worker`, or fail it when it has used up its attempts."""
        return self.change(id, TrainingJob.start_attempt, worker, queue_seq, max_attempts)

    def record_checkpoint(self, id: UUID, attempt: int, checkpoint: dict[str, Any]) -> TrainingJob:
        return self.change(id, TrainingJob.record_checkpoint, attempt, **checkpoint)

    def save_adapter(self, id: UUID, attempt: int, adapter: dict[str, Any]) -> TrainingJob:
        """Record `attempt`'s adapter (the fence before registering it); the job as it is now."""
        return self.change(id, TrainingJob.save_adapter, attempt, **adapter)

    def succeed(self, id: UUID, attempt: int, **result: Any) -> TrainingJob:
        return self.change(id, TrainingJob.succeed, attempt, **result)

    def fail(self, id: UUID, attempt: int, reason: str, step: int) -> TrainingJob:
        return self.change(id, TrainingJob.fail, attempt, reason, step)

    def stop_cancelled(self, id: UUID, attempt: int, step: int) -> TrainingJob:
        return self.change(id, TrainingJob.stop_cancelled, attempt, step)

    def hand_back(self, id: UUID, attempt: int, step: int, reason: str) -> TrainingJob:
        return self.change(id, TrainingJob.hand_back, attempt, step, reason)

    def requeue_lost(self, id: UUID, attempt: int, max_attempts: int, reason: str) -> TrainingJob:
        return self.change(id, TrainingJob.requeue_lost, attempt, max_attempts, reason)

    # ----- helpers --------------------------------------------------------------------------

    def change(self, id: str | UUID, command: Callable[..., None], *args: Any, **kwargs: Any) -> TrainingJob:
        """Load the job, run one of its commands, save what it recorded; again on a concurrent change."""
        for _ in range(UPDATE_ATTEMPTS):
            job = self.get_job(id)
            command(job, *args, **kwargs)
            if not job.pending_events:
                return job
            try:
                self.save(job)
                return job
            except IntegrityError:
                continue
        raise Aborted(f"training job {id} is being changed by many writers at once; retry", resource_type="training_job")

    def queue_new(self, job: TrainingJob) -> TrainingJob:
        try:
            self.save(job)
        except IntegrityError:  # the same idempotency key won a race: return the first job
            return self.repository.get(job.id)
        self.queue(job)
        return job

    def queue(self, job: TrainingJob) -> None:
        if self.enqueue is not None:
            self.enqueue(job.id, job.queue_seq)
