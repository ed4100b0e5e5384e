"""A trainer worker: pulls one job at a time (FIFO) from the hub's JetStream work queue,
trains it, and acks only when the job has reached an end, so a worker that dies
mid-job leaves its work item to be redelivered after `ack_wait`. While training it
calls `msg.in_progress()` and publishes a heartbeat every few seconds, and watches
the job for a cancel request or for another attempt having taken over (fencing).
Asked to stop, it checkpoints at the next step and hands the job back to the queue.
A trained adapter goes to a directory of the attempt's own and is recorded on the job
before it is registered; an attempt interrupted after that (its last save refused, the
registry away, the process killed) is finished by the next one, which registers the
recorded adapter under the job's idempotency key and finds the version if it exists.
The work item carries the creating request's trace context, so the training span
continues the trace that started at the gateway."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import shutil
import socket
import threading
import time
from uuid import UUID

import grpc
import nats
from google.protobuf import json_format
from opentelemetry import propagate, trace

from mlxhub import blas
from mlxhub.audit import acting_as
from mlxhub.config import Settings
from mlxhub.errors import HubError
from mlxhub.mlx_threads import run_in_own_thread
from mlxhub.v1 import common_pb2, registry_pb2, trainer_pb2
from trainer_svc import artifacts, engine, metrics
from trainer_svc.application import TrainerApplication
from trainer_svc.config import WorkerOptions, adapter_config
from trainer_svc.domain import RUNNING, SUCCEEDED, TERMINAL, TrainingJob
from trainer_svc.lineage import code_commit, library_versions
from trainer_svc.queue import QueueNames, ensure_streams, heartbeat_subject, progress_subject, work_item
from trainer_svc.registry_client import RegistryClient
from trainer_svc.tracking import MlflowRun

log = logging.getLogger(__name__)
tracer = trace.get_tracer("mlxhub.trainer")

CONTROL_POLL_SECONDS = 0.5


def trace_headers() -> dict[str, str] | None:
    """The current trace context as NATS headers (W3C traceparent), so a consumer of a progress or
    heartbeat message can join the trace of the training that sent it."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers or None


def report_backend(worker: str) -> None:
    """Say in the log and in metrics where this worker trains (the fast BLAS or not)."""
    import mlx.core as mx

    fast = blas.state()
    device = "gpu" if mx.default_device() == mx.gpu else "cpu"
    metrics.BACKEND.info({"backend": device, "blas": fast.name})
    log.info("worker %s trains on %s, BLAS %s", worker, device, fast.name)
    if not fast.active and fast.reason:
        log.warning("fast BLAS not active: %s", fast.reason)


class Control:
    """Flags the training thread reads at every step."""

    def __init__(self, stopping: threading.Event) -> None:
        self.cancel = threading.Event()
        self.fenced = threading.Event()
        self.stopping = stopping  # the worker is shutting down: checkpoint and hand the job back


class JobHooks:
    """engine.Hooks for one attempt: progress to NATS and MLflow, checkpoints to the log."""

    def __init__(self, worker: Worker, job: TrainingJob, control: Control, mlflow: MlflowRun) -> None:
        self.worker, self.job, self.control, self.mlflow = worker, job, control, mlflow
        self.attempt = job.attempt
        # Cumulative trained tokens at the last step; unknown on a resumed attempt until its first step.
        self.tokens: int | None = 0 if job.resume_from is None else None

    def on_step(self, progress: dict) -> None:
        if progress["step"] and progress.get("loss") is not None:
            metrics.STEPS.inc()
            if self.tokens is not None:
                metrics.TRAINED_TOKENS.inc(progress["trained_tokens"] - self.tokens)
            self.tokens = progress["trained_tokens"]
            metrics.LOSS.labels(self.worker.name).set(progress["loss"])
            metrics.TOKENS_PER_SECOND.labels(self.worker.name).set(progress["tokens_per_second"])
            metrics.PEAK_MEMORY.labels(self.worker.name).set(progress["peak_memory_gb"] * 1e9)
        message = trainer_pb2.TrainingProgress(**{k: v for k, v in progress.items() if v is not None})
        message.has_validation_loss = progress.get("validation_loss") is not None
        self.worker.publish(progress_subject(self.job.id), json_format.MessageToJson(message, indent=None).encode())
        self.mlflow.log(progress["step"], {k: v for k, v in progress.items() if k != "step" and v is not None})

    def on_checkpoint(self, checkpoint: dict) -> None:
        fields = {k: checkpoint[k] for k in ("step", "path", "sha256", "validation_loss", "loss")}
        self.worker.app.record_checkpoint(self.job.id, self.attempt, fields)

    def should_stop(self) -> bool:
        return self.control.cancel.is_set() or self.control.fenced.is_set() or self.control.stopping.is_set()


class Worker:
    def __init__(self, settings: Settings, app: TrainerApplication, options: WorkerOptions | None = None,
                 name: str = "") -> None:
        self.settings = settings
        self.app = app
        self.options = options or WorkerOptions.from_settings(settings)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.names = QueueNames.of(settings)
        self.registry = RegistryClient(settings)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connection = None
        self.js = None
        self.busy = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name=f"trainer-worker-{self.name}",
                                        daemon=True)

    def acting(self, job_id: UUID):
        """The audit context of this worker's changes to a job: recorded as `worker/<name>`, for the job."""
        return acting_as(f"worker/{self.name}", str(job_id))

    # ----- lifecycle ------------------------------------------------------------------------

    def start(self) -> Worker:
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Stop pulling; a job in hand checkpoints at its next step and goes back on the queue."""
        self._stopping.set()

    def stop(self, timeout: float = 60.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)
        self.registry.close()

    def run_forever(self) -> None:
        asyncio.run(self.run())

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        report_backend(self.name)
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                self.connection = await nats.connect(self.settings.nats_url, connect_timeout=2, max_reconnect_attempts=-1)
                js = self.js = self.connection.jetstream(timeout=10)
                await ensure_streams(js, self.names, ack_wait=self.options.ack_wait)
                subscription = await js.pull_subscribe_bind(self.names.consumer, self.names.stream)
                log.info("worker %s pulling from %s", self.name, self.names.stream)
                backoff = 0.2
                while not self._stopping.is_set():
                    try:
                        messages = await subscription.fetch(1, timeout=1)
                    except (TimeoutError, nats.errors.TimeoutError):
                        continue
                    for message in messages:
                        await self.handle(message)
            except Exception as exc:  # noqa: BLE001  (NATS down: retry; a job in hand is redelivered)
                if self._stopping.is_set():
                    break
                log.warning("worker %s: %s; retrying in %.1fs", self.name, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                if self.connection is not None and not self.connection.is_closed:
                    await self.connection.close()

    def publish(self, subject: str, payload: bytes) -> None:
        """Fire-and-forget from the training thread; the stream keeps it for watchers."""
        if self.loop is not None and self.connection is not None:
            asyncio.run_coroutine_threadsafe(self.connection.publish(subject, payload, headers=trace_headers()),
                                             self.loop)

    # ----- one work item --------------------------------------------------------------------

    async def handle(self, message) -> None:
        item = json.loads(message.data)
        job_id, queue_seq = UUID(item["job"]), int(item["queue_seq"])
        parent = propagate.extract(message.headers or {})  # the trace of the request that queued the job
        with tracer.start_as_current_span(f"train {job_id}", context=parent, kind=trace.SpanKind.CONSUMER,
                                          attributes={"mlxhub.training_job": str(job_id),
                                                      "messaging.system": "nats",
                                                      "messaging.destination.name": self.names.subject}):
            await self.claim(message, job_id, queue_seq)

    async def claim(self, message, job_id: UUID, queue_seq: int) -> None:
        try:
            job = await asyncio.to_thread(self.app.get_job, job_id)
        except HubError:
            await message.ack()
            return
        duplicate = job.state == RUNNING and message.metadata.num_delivered <= 1
        if job.state in TERMINAL or job.queue_seq != queue_seq or duplicate:
            await message.ack()
            return
        if job.state == RUNNING:
            log.warning("job %s: worker %s was lost (redelivered); taking over", job_id, job.worker)
        with self.acting(job_id):
            job = await asyncio.to_thread(self.app.start_attempt, job_id, self.name, queue_seq,
                                          self.options.max_attempts)
        if job.state != RUNNING or job.worker != self.name:
            await message.ack()
            return
        if message.metadata.num_delivered <= 1 and message.metadata.timestamp is not None:
            metrics.QUEUE_WAIT.observe(max(0.0, time.time() - message.metadata.timestamp.timestamp()))
        control = Control(self._stopping)
        self.busy.set()
        metrics.RUNNING.inc()
        watcher = asyncio.create_task(self.heartbeat(message, job, control))
        try:
            outcome = await run_in_own_thread(self.execute, job, control, name=f"train-{job_id}")
        except Exception:  # e.g. the database refused the last save: the retry finishes the job
            log.exception("job %s: attempt %s ended without recording how; putting the work item back for a retry, "
                          "which finishes the job from what this attempt recorded", job_id, job.attempt)
            outcome = "interrupted"
        finally:
            watcher.cancel()
            self.busy.clear()
            metrics.RUNNING.dec()
        metrics.ATTEMPTS.labels(outcome).inc()
        if outcome == "interrupted":
            await message.nak(delay=self.options.heartbeat)  # redelivered: another attempt takes over
            return
        await self.connection.flush()
        if outcome == "handed_back":
            handed = await asyncio.to_thread(self.app.get_job, job_id)
            body, headers = work_item(job_id, handed.queue_seq)
            propagate.inject(headers)
            await self.js.publish(self.names.subject, body, headers=headers)  # the reaper re-publishes if this fails
        await message.ack()

    async def heartbeat(self, message, job: TrainingJob, control: Control) -> None:
        """Until cancelled: every `heartbeat` seconds tell JetStream and the reaper that the attempt is alive,
        and every tick check the job for a cancel request or a newer attempt (fencing). A failed beat (NATS
        away) or check (database away) is logged and tried again next time; it never ends the task, or the
        attempt would go on without noticing that it was cancelled or superseded."""
        last_beat, failing = 0.0, False
        while True:
            if time.monotonic() - last_beat >= self.options.heartbeat:
                last_beat = time.monotonic()
                try:
                    await message.in_progress()
                    beat = {"worker": self.name, "attempt": job.attempt, "time": time.time()}
                    await self.connection.publish(heartbeat_subject(job.id), json.dumps(beat).encode(),
                                                  headers=trace_headers())
                    if failing:
                        log.info("job %s: heartbeats are getting through again", job.id)
                    failing = False
                except Exception as exc:  # noqa: BLE001  (NATS away or its buffer full: beat again next time)
                    if not failing:
                        log.warning("job %s: heartbeat failed (%s: %s); retrying every %.1fs", job.id,
                                    type(exc).__name__, exc, self.options.heartbeat)
                    failing = True
            try:
                current = await asyncio.to_thread(self.app.get_job, job.id)
            except Exception:  # noqa: BLE001  (database hiccup: try again next tick)
                current = None
            if current is not None:
                if current.cancel_requested:
                    control.cancel.set()
                if current.state != RUNNING or current.attempt != job.attempt:
                    control.fenced.set()
            await asyncio.sleep(CONTROL_POLL_SECONDS)

    def execute(self, job: TrainingJob, control: Control) -> str:
        """Train, write the adapter, record it (fenced), register the version, record success; the outcome.
        When an earlier attempt already recorded its adapter, only the idempotent rest is done."""
        with self.acting(job.id):
            return self.run_attempt(job, control)

    def run_attempt(self, job: TrainingJob, control: Control) -> str:
        if job.adapter is not None:
            log.info("job %s: attempt %s trained and recorded its adapter; registering it and finishing the job",
                     job.id, job.adapter["attempt"])
            return self.register(job, job.adapter)
        attempt = job.attempt
        mlflow = MlflowRun(self.settings)
        mlflow.start(str(job.id), {**job.config, "model": job.base_version, "dataset": job.dataset,
                                   "total_steps": job.total_steps, "attempt": attempt},
                     {"name": job.dataset, "sha256": job.dataset_sha256, "path": job.dataset_path})

        def fail(reason: str, step: int) -> str:
            log.warning("job %s failed: %s", job.id, reason)
            mlflow.end(None, "FAILED")
            self.app.fail(job.id, attempt, reason, step)
            return "failed"

        spec = {"base_path": job.base_path, "dataset_path": job.dataset_path, "validation_path": job.validation_path,
                "config": job.training_config, "total_steps": job.total_steps, "resume_from": job.resume_from,
                "registered": (job.dataset_sha256, self.settings.data_roots)}
        try:
            result = engine.train(spec, self.settings.home / "jobs" / str(job.id), JobHooks(self, job, control, mlflow))
        except engine.TrainingFailed as exc:
            return fail(str(exc), self.app.get_job(job.id).step)
        except HubError as exc:  # the dataset changed since it was registered
            return fail(exc.message, self.app.get_job(job.id).step)
        except OSError as exc:
            disk = "disk full" if exc.errno == errno.ENOSPC else "cannot write"
            return fail(f"{disk} while saving a checkpoint ({exc})", self.app.get_job(job.id).step)
        except Exception as exc:
            log.exception("job %s crashed", job.id)
            return fail(f"training crashed: {type(exc).__name__}: {exc}", self.app.get_job(job.id).step)
        if result.stopped:
            mlflow.end(None, "KILLED")
            if control.fenced.is_set():
                log.warning("job %s: attempt %s was superseded; stopping without recording", job.id, attempt)
                return "superseded"
            if control.cancel.is_set():
                self.app.stop_cancelled(job.id, attempt, result.step)
                return "cancelled"
            reason = f"worker {self.name} shut down; checkpointed at step {result.step} and handed back to the queue"
            log.info("job %s: %s", job.id, reason)
            self.app.hand_back(job.id, attempt, result.step, reason)
            return "handed_back"
        # A directory per attempt: one that a registered version points at is never rewritten.
        dest = self.settings.models_dir / job.output_model / "adapters" / f"{job.id}-attempt-{attempt}"
        try:
            files = artifacts.write_adapter(dest, result.weights, adapter_config(job.training_config, job.base_path))
        except OSError as exc:
            what = "disk full" if exc.errno == errno.ENOSPC else "cannot write"
            return fail(f"{what} while writing the adapter to {dest} ({exc}); no partial artifact was left",
                        result.step)
        mlflow.end(dest, "FINISHED")
        final_metrics = finite(job.id, {"train_loss": result.loss, "trained_tokens": float(result.trained_tokens),
                                        "validation_loss": result.validation_loss})
        adapter = {"path": str(dest), "files": files, "step": result.step,
                   "loss": final_metrics.get("train_loss", 0.0), "metrics": final_metrics,
                   "mlflow_run_id": mlflow.run_id, "mlflow_status": mlflow.report()}
        current = self.app.save_adapter(job.id, attempt, adapter)  # the fence
        recorded = current.adapter is not None and current.adapter["path"] == str(dest)
        if not recorded:
            shutil.rmtree(dest, ignore_errors=True)  # nothing points at it
        if current.state != RUNNING or current.attempt != attempt:
            log.warning("job %s: attempt %s was superseded before registering; registering nothing", job.id, attempt)
            return "superseded"
        return self.register(current, current.adapter)

    def register(self, job: TrainingJob, adapter: dict) -> str:
        """Register `adapter` (recorded on the job) as a version and record the job as succeeded. Both steps
        are idempotent (the version's idempotency key is the job's), so after a crash between them a
        later attempt does them again and finds the version already registered."""
        attempt = job.attempt
        if not self.app.holds(job.id, attempt):
            log.warning("job %s: attempt %s was superseded before registering; registering nothing", job.id, attempt)
            return "superseded"
        parameters = common_pb2.Lineage().parameters
        parameters.update({k: v for k, v in job.config.items()})
        lineage = common_pb2.Lineage(
            base_model=job.base_version, parent_version=job.base_version, dataset=job.dataset,
            dataset_sha256=job.dataset_sha256, parameters=parameters, seed=job.config["seed"],
            library_versions=library_versions(), code_commit=code_commit(), training_job=str(job.id),
            mlflow_run_id=adapter["mlflow_run_id"], source="trained",
        )
        try:
            version = self.registry.create_version(registry_pb2.CreateModelVersionRequest(
                name=job.output_model, artifact_path=adapter["path"],
                description=f"LoRA adapter trained by job {job.id}", metrics=adapter["metrics"], lineage=lineage,
                idempotency_key=version_key(job.id),
            ), on_behalf_of=job.created_by)  # the version is the job creator's, not the service's
        except HubError as exc:
            if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise  # the registry is away for now: a later attempt registers the recorded adapter
            reason = f"the adapter was written to {adapter['path']} but registering it failed: {exc.message}"
            log.warning("job %s failed: %s", job.id, reason)
            self.app.fail(job.id, attempt, reason, adapter["step"])
            return "failed"
        finished = self.app.succeed(
            job.id, attempt, step=adapter["step"], loss=adapter["loss"],
            output_version=f"{version.model}/versions/{version.version}", artifact_path=version.artifact_path,
            artifact_files=[{"path": f.path, "sha256": f.sha256, "size_bytes": f.size_bytes} for f in version.files],
            mlflow_run_id=adapter["mlflow_run_id"], mlflow_status=adapter["mlflow_status"],
        )
        return "succeeded" if finished.state == SUCCEEDED else "superseded"


def version_key(job_id: UUID) -> str:
    """The idempotency key of the version a job registers: one version per job, whichever attempt asks."""
    return f"training-job/{job_id}"


def finite(job_id: UUID, values: dict[str, float | None]) -> dict[str, float]:
    """`values` without the absent and the non-finite ones (a NaN or infinity is no measurement; it is
    logged and left out, never recorded in an event or sent as a version metric)."""
    kept = {}
    for name, value in values.items():
        if value is None:
            continue
        if not math.isfinite(value):
            log.warning("job %s: %s is %s; left out of the version's metrics", job_id, name, value)
            continue
        kept[name] = value
    return kept
