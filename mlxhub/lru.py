"""A map that keeps only its most recently used entries: the bound of a cache whose misses can
still be answered (by one indexed read), so that its memory follows the work in hand rather than
everything a long-running process has ever seen."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruMap(Generic[K, V]):
    """At most `size` entries; putting one more forgets the least recently read or put. Safe to share
    between threads: each step is one operation of OrderedDict, and a race costs at most a miss."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"an LruMap holds at least 1 entry, not {size}")
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, default: V | None = None) -> V | None:
        value = self._entries.get(key, default)
        if value is not default:
            try:
                self._entries.move_to_end(key)
            except KeyError:  # forgotten by another thread meanwhile: the value read is still right
                pass
        return value

    def put(self, key: K, value: V) -> None:
        entries = self._entries
        entries[key] = value
        entries.move_to_end(key)
        while len(entries) > self.size:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied by another thread meanwhile
                break

    def update(self, items: Mapping[K, V]) -> None:
        for key, value in items.items():
            self.put(key, value)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
