"""The inference service's own recent figures, for GetMetricsSummary and ListLoadedModels:
an hour of 10-second buckets for the whole service, and per version its totals and 15
one-minute buckets.

Kept cheap for the engine's hot path: each bucket lives in a fixed `mlxhub.ring.TimeRing` slot,
replaced (under a lock, once per bucket) when its time has passed; per token the engine adds to a
counter and to a log-scale latency histogram, with no lock. Readers copy what they read.
Latency percentiles come from the histograms (bins 10% wide), not from kept samples."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from mlxhub.ring import TimeRing, elapsed

BUCKET_S = 10
WINDOW_S = 3600  # the longest window GetMetricsSummary serves
MINUTES = 15  # per version
# Latency histogram: bin i holds values in [MIN_MS * RATIO**i, MIN_MS * RATIO**(i+1)).
MIN_MS, RATIO, BINS = 0.1, 1.1, 170  # 0.1 ms .. ~1,100 s
_LOG_RATIO = math.log(RATIO)


def _bin(ms: float) -> int:
    if ms <= MIN_MS:
        return 0
    return min(BINS - 1, int(math.log(ms / MIN_MS) / _LOG_RATIO))


def percentile(bins: list[int], q: float) -> float:
    """The q-quantile (0..1) of a histogram, as its bin's geometric middle; 0 when empty."""
    total = sum(bins)
    if total == 0:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(bins):
        seen += n
        if n and seen >= rank:
            return MIN_MS * RATIO ** (i + 0.5)
    return MIN_MS * RATIO ** (BINS - 0.5)


@dataclass
class Bucket:
    start: int  # unix seconds
    requests: int = 0
    errors: int = 0
    tokens: int = 0
    ttft: list[int] = field(default_factory=lambda: [0] * BINS)
    itl: list[int] = field(default_factory=lambda: [0] * BINS)
    queue_max: int = 0
    queue_sum: int = 0
    queue_samples: int = 0
    rate_sum: float = 0.0  # decode tokens/s of the requests finished in it, summed
    ttft_count: int = 0


@dataclass
class VersionStats:
    requests: int = 0
    tokens: int = 0
    minutes: TimeRing[Bucket] | None = None


class Recorder:
    """Fed by the engine (first token, each later token, finish, queue samples) and by the servicer
    (errors); read by the servicer."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.service = TimeRing(BUCKET_S, WINDOW_S // BUCKET_S + 1, Bucket, self._lock)
        self._versions: dict[str, VersionStats] = {}

    def version(self, name: str) -> VersionStats:
        stats = self._versions.get(name)
        if stats is None:
            with self._lock:
                stats = self._versions.setdefault(name, VersionStats(minutes=TimeRing(60, MINUTES + 1, Bucket)))
        return stats

    # -- writers (the engine thread, except `error`) --------------------------------------
    def first_token(self, version: str, ttft_s: float) -> None:
        now = self.clock()
        ms = ttft_s * 1000
        bucket = self.service.at(now)
        bucket.tokens += 1
        bucket.ttft[_bin(ms)] += 1
        stats = self.version(version)
        stats.tokens += 1
        minute = stats.minutes.at(now)
        minute.tokens += 1
        minute.ttft[_bin(ms)] += 1
        minute.ttft_count += 1

    def token(self, version: str, gap_s: float) -> None:
        now = self.clock()
        bucket = self.service.at(now)
        bucket.tokens += 1
        bucket.itl[_bin(gap_s * 1000)] += 1
        stats = self._versions.get(version) or self.version(version)
        stats.tokens += 1
        stats.minutes.at(now).tokens += 1

    def finished(self, version: str, tokens_per_second: float) -> None:
        now = self.clock()
        bucket = self.service.at(now)
        bucket.requests += 1
        bucket.rate_sum += tokens_per_second
        stats = self.version(version)
        stats.requests += 1
        minute = stats.minutes.at(now)
        minute.requests += 1
        minute.rate_sum += tokens_per_second

    def queue(self, depth: int) -> None:
        bucket = self.service.at(self.clock())
        bucket.queue_samples += 1
        bucket.queue_sum += depth
        bucket.queue_max = max(bucket.queue_max, depth)

    def error(self) -> None:
        """A request that failed or was refused (any thread)."""
        bucket = self.service.at(self.clock())
        with self._lock:
            bucket.errors += 1

    # -- readers ---------------------------------------------------------------------------
    def summary(self, minutes: int) -> list[Bucket]:
        return self.service.window(self.clock(), minutes * 60 // BUCKET_S)

    def recent(self, version: str) -> tuple[int, int, list[Bucket]]:
        """A version's finished requests, generated tokens and its last 15 minutes."""
        now = self.clock()
        stats = self._versions.get(version)
        if stats is None:
            return 0, 0, TimeRing(60, MINUTES + 1, Bucket).window(now, MINUTES)
        return stats.requests, stats.tokens, stats.minutes.window(now, MINUTES)

    elapsed = staticmethod(elapsed)  # (bucket, width, now): seconds of a bucket that have passed
