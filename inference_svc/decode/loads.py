"""Model loads off the engine thread.

Loading a version (checking its files' hashes, reading, dequantizing, fusing an adapter)
takes seconds; on the engine thread it would pause every stream of every other version
for as long. So each load runs in a thread of its own (which releases its MLX streams when
it ends, `mlxhub.mlx_threads`), the requests for that version wait beside it, and the engine
thread goes on decoding. When the load ends the engine installs the model in its cache
and starts the waiting requests. Requests for a version already loading wait for that
load: one load per version at a time. A preload (an alias's target) is a load that no
request waits for, with the reasons it was asked for."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from inference_svc.cache import ModelSpec
from inference_svc.decode.generation import Generation
from mlxhub.mlx_threads import release_streams

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Load:
    """A version loading, and the requests waiting for it (oldest first)."""

    spec: ModelSpec
    result: Future = field(default_factory=Future)
    waiting: collections.deque[Generation] = field(default_factory=collections.deque)
    started: float = field(default_factory=time.monotonic)
    preloaded: list[str] = field(default_factory=list)  # why it loads without a request (alias targets)
    after: list[tuple[ModelSpec, str]] = field(default_factory=list)  # preloads waiting for it (its adapters)


class Loads:
    """The loads in flight, by version. Only the engine thread calls these methods; `on_done`
    is called from the loading thread when a load ends (to wake the engine)."""

    def __init__(self, load: Callable[[ModelSpec], Any], on_done: Callable[[], None]) -> None:
        self._load = load
        self._on_done = on_done
        self._loads: dict[str, Load] = {}

    def get(self, version: str) -> Load | None:
        return self._loads.get(version)

    def start(self, spec: ModelSpec, preloaded: str = "") -> Load:
        load = self._loads[spec.version] = Load(spec, preloaded=[preloaded] if preloaded else [])
        log.info("loading %s off the engine thread%s", spec.version, f" (preload: {preloaded})" if preloaded else "")
        threading.Thread(target=self._run, args=(load,), name=f"inference-load {spec.version}", daemon=True).start()
        return load

    def _run(self, load: Load) -> None:
        try:
            try:
                loaded = self._load(load.spec)
            finally:
                release_streams()  # also waits for the load's MLX work to finish
        except BaseException as error:  # noqa: BLE001  (handed to the engine thread with the load)
            load.result.set_exception(error)
        else:
            load.result.set_result(loaded)
        self._on_done()

    def finished(self) -> list[Load]:
        return [load for load in self._loads.values() if load.result.done()]

    def any_finished(self) -> bool:
        return any(load.result.done() for load in self._loads.values())

    def drop(self, load: Load) -> None:
        self._loads.pop(load.spec.version, None)

    def waiting(self) -> Iterator[Generation]:
        for load in list(self._loads.values()):
            yield from list(load.waiting)

    @property
    def waiting_count(self) -> int:
        return sum(len(load.waiting) for load in self._loads.values())

    def clear(self) -> list[Generation]:
        """Forget every load (their threads end on their own); the requests that waited."""
        waiting = list(self.waiting())
        self._loads.clear()
        return waiting
