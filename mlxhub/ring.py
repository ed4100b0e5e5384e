"""Recent figures in fixed time buckets: a ring of buckets of `width` seconds, slot i holding the
bucket whose index (start // width) mod the ring's size is i, so that old buckets are replaced
in place and memory stays fixed. The trainer's throughput and the inference service's serving
figures both keep theirs here; what a bucket counts is theirs (any object with a `start`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Timed(Protocol):
    start: int  # unix seconds, a multiple of the ring's width


B = TypeVar("B", bound=Timed)


class TimeRing(Generic[B]):
    """`slots` buckets of `width` seconds, made by `new(start)` when their time comes.

    `at` is cheap on a hot path: while the time stays in the bucket of the previous call it
    returns that bucket without a lock; a new bucket is put in its slot under `lock` (one the
    owner shares with other state, or the ring's own). Readers get copies of the slots' list.
    """

    def __init__(self, width: int, slots: int, new: Callable[[int], B], lock: threading.Lock | None = None) -> None:
        self.width, self.slots, self.new = width, slots, new
        self._ring: list[B | None] = [None] * slots
        self._lock = lock or threading.Lock()
        self._current: B | None = None

    def at(self, now: float) -> B:
        """The bucket holding the moment `now`, made if its slot holds an older one."""
        current = self._current  # the common case: still in the bucket the last call used
        if current is not None and current.start <= now < current.start + self.width:
            return current
        index = int(now // self.width)
        slot = index % self.slots
        bucket = self._ring[slot]
        if bucket is None or bucket.start != index * self.width:
            with self._lock:
                bucket = self._ring[slot]
                if bucket is None or bucket.start != index * self.width:
                    bucket = self._ring[slot] = self.new(index * self.width)
        self._current = bucket
        return bucket

    def window(self, now: float, count: int) -> list[B]:
        """The last `count` buckets up to the current one, oldest first; empty ones where none was kept."""
        ring, last = list(self._ring), int(now // self.width)
        out = []
        for index in range(last - count + 1, last + 1):
            bucket = ring[index % self.slots]
            out.append(bucket if bucket is not None and bucket.start == index * self.width else self.new(index * self.width))
        return out

    def elapsed(self, bucket: Timed, now: float) -> float:
        """Seconds of `bucket` that have passed by `now` (the current one is partial), at least 1 ms."""
        return elapsed(bucket, self.width, now)


def elapsed(bucket: Timed, width: int, now: float) -> float:
    """Seconds of a `width`-second bucket that have passed by `now`, at least 1 ms (a rate's divisor)."""
    return max(1e-3, min(width, now - bucket.start))
