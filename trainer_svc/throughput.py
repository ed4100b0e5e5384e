"""The trainer service's own recent throughput, for GetTrainingMetrics: an hour of 10-second
buckets of trained tokens, steps and running jobs.

Fed from the progress every worker publishes to NATS (in-process and remote workers alike),
on one subscription per service process; a job's tokens and steps in a bucket are the
growth of its cumulative counters since its previous report. Running jobs are sampled from
the read model (and a job that reported in a bucket ran in it). Progress of jobs another hub (schema) queued on the same NATS is ignored."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import nats

from mlxhub.config import Settings

log = logging.getLogger(__name__)

BUCKET_S = 10
WINDOW_S = 3600  # the longest window GetTrainingMetrics serves
SAMPLE_S = 2.0  # how often running jobs are counted
PROGRESS_WILDCARD = "mlxhub.jobs.*.progress"


@dataclass
class Bucket:
    start: int  # unix seconds
    tokens: int = 0
    steps: int = 0
    running_max: int = 0
    reporting: set[str] = field(default_factory=set)  # jobs that reported in it: running, whatever the sample said


class Recorder:
    """10-second buckets in a fixed ring; slot i holds the bucket whose index mod the ring's size is i."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.slots = WINDOW_S // BUCKET_S + 1
        self._ring: list[Bucket | None] = [None] * self.slots
        self._lock = threading.Lock()
        self._last: dict[str, tuple[int, int]] = {}  # job -> (step, trained_tokens) at its last report

    def _bucket(self, now: float) -> Bucket:
        index = int(now // BUCKET_S)
        slot = index % self.slots
        bucket = self._ring[slot]
        if bucket is None or bucket.start != index * BUCKET_S:
            bucket = self._ring[slot] = Bucket(index * BUCKET_S)
        return bucket

    def progress(self, job: str, step: int, trained_tokens: int) -> None:
        """A job's progress report. Its first report counts from zero only if it is the job's first
        step (otherwise the service started mid-job, and the report only sets the baseline); a
        resumed attempt whose counters go back (to its checkpoint's) sets a new baseline."""
        with self._lock:
            last = self._last.get(job)
            if last is None:
                last = (0, 0) if step <= 1 else (step, trained_tokens)
            steps, tokens = step - last[0], trained_tokens - last[1]
            self._last[job] = (step, trained_tokens)
            if steps > 0 and tokens >= 0:
                bucket = self._bucket(self.clock())
                bucket.steps += steps
                bucket.tokens += tokens
                bucket.reporting.add(job)
                bucket.running_max = max(bucket.running_max, len(bucket.reporting))

    def running(self, count: int) -> None:
        with self._lock:
            bucket = self._bucket(self.clock())
            bucket.running_max = max(bucket.running_max, count)

    def window(self, minutes: int) -> list[Bucket]:
        """The last `minutes` of buckets up to the current one, oldest first; empty ones where none was kept."""
        now = self.clock()
        with self._lock:
            ring, last = list(self._ring), int(now // BUCKET_S)
        count = minutes * 60 // BUCKET_S
        out = []
        for index in range(last - count + 1, last + 1):
            bucket = ring[index % self.slots]
            out.append(bucket if bucket is not None and bucket.start == index * BUCKET_S else Bucket(index * BUCKET_S))
        return out

    @staticmethod
    def elapsed(bucket: Bucket, now: float) -> float:
        """Seconds of `bucket` that have passed (the current one is partial)."""
        return max(1e-3, min(BUCKET_S, now - bucket.start))


class ThroughputFeed:
    """Subscribes to every job's progress and feeds a Recorder from one thread, which also samples
    the running jobs. `is_ours(job_id)` says whether a job belongs to this hub (asked once per job);
    `running()` counts this hub's running jobs."""

    def __init__(self, settings: Settings, recorder: Recorder, is_ours: Callable[[str], bool],
                 running: Callable[[], int]) -> None:
        self.settings, self.recorder = settings, recorder
        self.is_ours, self.count_running = is_ours, running
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._known: dict[str, bool] = {}
        self._stopping = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="trainer-throughput-nats", daemon=True)
        self._thread = threading.Thread(target=self._run, name="trainer-throughput", daemon=True)
        self._connection = None

    def start(self) -> ThroughputFeed:
        self._loop_thread.start()
        if self.settings.nats_url:
            asyncio.run_coroutine_threadsafe(self._subscribe(), self._loop)
        self._thread.start()
        return self

    async def _subscribe(self) -> None:
        async def deliver(message) -> None:
            self._inbox.put((message.subject, message.data))

        while not self._stopping.is_set():
            try:
                # Reconnects for as long as the service runs; the worker publishes as plain NATS messages too.
                self._connection = await nats.connect(self.settings.nats_url, connect_timeout=2, max_reconnect_attempts=-1,
                                                      name="mlxhub-trainer-throughput")
                await self._connection.subscribe(PROGRESS_WILDCARD, cb=deliver)
                return
            except Exception as exc:  # noqa: BLE001  (NATS not up yet: try again shortly)
                log.warning("training throughput: NATS did not answer (%s); retrying", exc)
                await asyncio.sleep(2)

    def _ours(self, job: str) -> bool:
        known = self._known.get(job)
        if known is None:
            try:
                known = self.is_ours(job)
            except Exception:  # noqa: BLE001  (the database is briefly unavailable: ask again next report)
                return False
            self._known[job] = known
        return known

    def _run(self) -> None:
        next_sample = 0.0
        while not self._stopping.is_set():
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + SAMPLE_S
                with contextlib.suppress(Exception):  # a sample missed is a sample missed
                    self.recorder.running(self.count_running())
            try:
                item = self._inbox.get(timeout=max(0.05, next_sample - time.monotonic()))
            except queue.Empty:
                continue
            if item is None:
                break
            subject, data = item
            job = subject.split(".")[2]
            try:
                progress = json.loads(data)
                step, tokens = int(progress.get("step", 0)), int(progress.get("trainedTokens", 0))
            except (ValueError, TypeError, AttributeError):
                continue
            if self._ours(job):
                self.recorder.progress(job, step, tokens)

    def stop(self) -> None:
        """Stop the feed; stopping it again (a server stopped twice) does nothing."""
        if self._loop.is_closed():
            return
        self._stopping.set()
        self._inbox.put(None)
        self._thread.join(5)

        async def shut() -> None:
            if self._connection is not None and not self._connection.is_closed:
                with contextlib.suppress(Exception):
                    await self._connection.close()
            leftover = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(5)
        self._loop.close()
