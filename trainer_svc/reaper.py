"""Never leave a job RUNNING forever, nor QUEUED without a work item: every few seconds
the server re-queues (or fails, past max attempts) running jobs whose worker stopped
sending heartbeats, and re-publishes the work item of every queued job (JetStream
drops the duplicate by its `<job>:<seq>` message id), which also heals a publish
lost between saving a job and queueing it. Between sweeps it waits on its stop signal,
not in a plain sleep, so a stopping server is not held for up to one interval."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time

import nats

from mlxhub.audit import acting_as
from mlxhub.config import Settings
from trainer_svc.application import TrainerApplication
from trainer_svc.config import WorkerOptions
from trainer_svc.domain import QUEUED, RUNNING
from trainer_svc.queue import PROGRESS_STREAM, QueueNames, ensure_streams, heartbeat_subject, work_item
from trainer_svc.read_model import TrainerReadModel

log = logging.getLogger(__name__)
SWEEP_LIMIT = 1000
PRINCIPAL = "trainer/reaper"  # who the reaper's changes are recorded as


class Reaper:
    def __init__(self, settings: Settings, app: TrainerApplication, read_model: TrainerReadModel,
                 options: WorkerOptions) -> None:
        self.settings, self.app, self.read_model, self.options = settings, app, read_model, options
        self.names = QueueNames.of(settings)
        self.interval = max(0.5, min(options.heartbeat_timeout / 3, 10.0))
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None  # set (on the reaper's loop) by stop()
        self._thread = threading.Thread(target=lambda: asyncio.run(self.run()), name="trainer-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                loop.call_soon_threadsafe(wake.set)
        self._thread.join(timeout)

    async def pause(self) -> None:
        """Wait one interval, or less if stop() is called meanwhile."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval)

    async def run(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            connection = None
            try:
                connection = await nats.connect(self.settings.nats_url, connect_timeout=2, allow_reconnect=False)
                js = connection.jetstream(timeout=5)
                await ensure_streams(js, self.names)
                while not self._stopping.is_set():
                    await self.sweep(js)
                    await self.pause()
            except Exception as exc:  # noqa: BLE001  (NATS or the database briefly away: sweep again later)
                if not self._stopping.is_set():
                    log.warning("reaper: %s; retrying", exc)
                    await self.pause()
            finally:
                if connection is not None and not connection.is_closed:
                    with contextlib.suppress(Exception):
                        await connection.close()

    async def last_heartbeat(self, js, job) -> float:
        last = job.attempt_start_time.timestamp() if job.attempt_start_time else 0.0
        try:
            message = await js.get_last_msg(PROGRESS_STREAM, heartbeat_subject(job.id))
        except nats.js.errors.NotFoundError:
            return last
        beat = json.loads(message.data)
        return max(last, beat["time"]) if beat.get("attempt") == job.attempt else last

    async def sweep(self, js) -> None:
        with acting_as(PRINCIPAL, trace_id=""):
            await self.sweep_running(js)
        await self.publish_queued(js)

    async def sweep_running(self, js) -> None:
        """Re-queue (or fail) the running jobs whose worker went silent."""
        running = await asyncio.to_thread(self.read_model.list_jobs, RUNNING, "", None, SWEEP_LIMIT)
        for row in running:
            job = await asyncio.to_thread(self.app.get_job, row["id"])
            if job.state != RUNNING:
                continue
            silent = time.time() - await self.last_heartbeat(js, job)
            if silent > self.options.heartbeat_timeout:
                reason = f"worker {job.worker} sent no heartbeat for {silent:.0f}s (attempt {job.attempt})"
                log.warning("job %s: %s", job.id, reason)
                await asyncio.to_thread(self.app.requeue_lost, job.id, job.attempt, self.options.max_attempts,
                                        reason)

    async def publish_queued(self, js) -> None:
        """Publish every queued job's current work item again (JetStream drops duplicates)."""
        queued = await asyncio.to_thread(self.read_model.list_jobs, QUEUED, "", None, SWEEP_LIMIT)
        for row in queued:
            job = await asyncio.to_thread(self.app.get_job, row["id"])
            if job.state == QUEUED:
                body, headers = work_item(job.id, job.queue_seq)
                await js.publish(self.names.subject, body, headers=headers)
