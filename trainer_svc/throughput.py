"""The trainer service's own recent throughput, for GetTrainingMetrics: an hour of 10-second
buckets of trained tokens, steps and running jobs.

Fed from the progress every worker publishes to NATS (in-process and remote workers alike),
on one subscription on the process's one NATS connection; a job's tokens and steps in a bucket are the
growth of its cumulative counters since its previous report. Running jobs are sampled from
the read model (and a job that reported in a bucket ran in it). Progress of jobs another hub (schema) queued on the same NATS is ignored."""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlxhub.ring import TimeRing, elapsed
from trainer_svc.watch import ProgressFeed

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
    """10-second buckets in a fixed `mlxhub.ring.TimeRing` holding the last hour."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.ring: TimeRing[Bucket] = TimeRing(BUCKET_S, WINDOW_S // BUCKET_S + 1, Bucket)
        self._lock = threading.Lock()
        self._last: dict[str, tuple[int, int]] = {}  # job -> (step, trained_tokens) at its last report

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
                bucket = self.ring.at(self.clock())
                bucket.steps += steps
                bucket.tokens += tokens
                bucket.reporting.add(job)
                bucket.running_max = max(bucket.running_max, len(bucket.reporting))

    def running(self, count: int) -> None:
        with self._lock:
            bucket = self.ring.at(self.clock())
            bucket.running_max = max(bucket.running_max, count)

    def window(self, minutes: int) -> list[Bucket]:
        """The last `minutes` of buckets up to the current one, oldest first; empty ones where none was kept."""
        return self.ring.window(self.clock(), minutes * 60 // BUCKET_S)

    @staticmethod
    def elapsed(bucket: Bucket, now: float) -> float:
        """Seconds of `bucket` that have passed (the current one is partial)."""
        return elapsed(bucket, BUCKET_S, now)


class ThroughputFeed:
    """Feeds a Recorder from every job's progress, heard on the process's one NATS connection (the
    watchers' `ProgressFeed`), and samples the running jobs, from one thread. `is_ours(job_id)` says
    whether a job belongs to this hub (asked once per job); `running()` counts this hub's running jobs."""

    def __init__(self, feed: ProgressFeed, recorder: Recorder, is_ours: Callable[[str], bool],
                 running: Callable[[], int]) -> None:
        self.feed, self.recorder = feed, recorder
        self.is_ours, self.count_running = is_ours, running
        self._inbox: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._known: dict[str, bool] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainer-throughput", daemon=True)

    def start(self) -> ThroughputFeed:
        self.feed.listen(PROGRESS_WILDCARD, lambda subject, data: self._inbox.put((subject, data)))
        self._thread.start()
        return self

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
        """Stop feeding the recorder (the feed's connection is the ProgressFeed's to close); stopping
        it again (a server stopped twice) does nothing."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._inbox.put(None)
        if self._thread.is_alive():
            self._thread.join(5)
