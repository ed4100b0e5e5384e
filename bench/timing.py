"""Shared timing helpers: one clock, rates, latency percentiles, threads released together."""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

clock = time.perf_counter


class Stopwatch:
    """`with Stopwatch() as watch: ...` then `watch.seconds`."""

    def __enter__(self) -> Self:
        self.started = clock()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = clock() - self.started


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.inf


def ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else math.inf


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50, p99 and mean of latencies given in seconds, in milliseconds."""
    return {
        "p50_ms": round(percentile(samples_s, 50) * 1000, 4),
        "p99_ms": round(percentile(samples_s, 99) * 1000, 4),
        "mean_ms": round(statistics.fmean(samples_s) * 1000, 4),
    }


def run_together(workers: Sequence[Callable[[], Any]], timeout: float = 600.0) -> float:
    """Run each worker in its own thread, released at once; return the wall time until all finish.

    A worker's exception is re-raised here after every thread has ended.
    """
    barrier = threading.Barrier(len(workers) + 1)
    errors: list[BaseException] = []

    def run(worker: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            worker()
        except BaseException as error:  # noqa: BLE001  (re-raised in the caller)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(w,), daemon=True) for w in workers]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = clock()
    for thread in threads:
        thread.join(timeout)
    seconds = clock() - started
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"workers still running after {timeout:.0f}s")
    if errors:
        raise errors[0]
    return seconds
