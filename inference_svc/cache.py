"""Loaded model versions under a memory budget: LRU eviction of idle versions and an
idle unload after `keep_alive` seconds (like Ollama's keep_alive). A version's size is
estimated from its files before it loads (`inference_svc.footprint`), so one that cannot
fit is refused, and idle versions make room for one that can, before anything is
allocated. Only the engine thread mutates it; readers (ListLoadedModels) take the lock
for a snapshot."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference_svc import metrics
from inference_svc.integrity import RecordedFile
from mlxhub.errors import ResourceExhausted

log = logging.getLogger(__name__)
GB = 1024**3


@dataclass(frozen=True)
class ModelSpec:
    """What to load for a resolved reference: `version` is the exact name responses carry."""

    version: str
    path: str
    adapter_path: str = ""
    base_version: str = ""
    # The sha256 the registry recorded for the files of `path` and of `adapter_path`.
    files: tuple[RecordedFile, ...] = ()
    adapter_files: tuple[RecordedFile, ...] = ()

    @property
    def kind(self) -> str:
        return "adapter" if self.adapter_path else "model"


@dataclass
class Entry:
    spec: ModelSpec
    loaded: Any  # loader.Loaded (or a stand-in in tests): needs .nbytes
    state: Any = None  # per-entry engine state (the batch generator)
    prompts: Any = None  # its prompt cache (mlx-lm's LRUPromptCache), made and used by the engine
    active: int = 0
    last_used: float = field(default_factory=time.monotonic)


class ModelCache:
    def __init__(self, load: Callable[[ModelSpec], Any], budget_bytes: int, keep_alive_s: float,
                 on_unload: Callable[[Entry], None] | None = None,
                 estimate: Callable[[ModelSpec], int] | None = None) -> None:
        """`estimate`: a version's bytes once loaded, from its files (None: only known after loading)."""
        self._load = load
        self._estimate = estimate
        self.budget_bytes = budget_bytes
        self.keep_alive_s = keep_alive_s
        self._on_unload = on_unload or (lambda entry: None)
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.lock = threading.Lock()

    def snapshot(self) -> list[Entry]:
        with self.lock:
            return list(self._entries.values())

    @property
    def used_bytes(self) -> int:
        return sum(e.loaded.nbytes for e in self._entries.values())

    def get(self, spec: ModelSpec) -> Entry:
        """The loaded entry for `spec`, loading it (and evicting idle versions) when needed."""
        entry = self._entries.get(spec.version)
        if entry is None:
            entry = self._admit(spec)
        with self.lock:
            self._entries.move_to_end(spec.version)
        entry.last_used = time.monotonic()
        return entry

    def _admit(self, spec: ModelSpec) -> Entry:
        if self._estimate is not None:
            self._make_room(spec, self._estimate(spec), "an estimated ")
        loaded = self._load(spec)
        need = loaded.nbytes
        self._make_room(spec, need, "")
        entry = Entry(spec, loaded)
        with self.lock:
            self._entries[spec.version] = entry
        metrics.LOADED.labels(spec.version, spec.kind).set(1)
        metrics.LOADED_BYTES.labels(spec.version).set(need)
        log.info("loaded %s (%s, %.0f MB)", spec.version, spec.kind, need / 2**20)
        return entry

    def _make_room(self, spec: ModelSpec, need: int, estimated: str) -> None:
        """Unload idle versions, least recently used first, until `need` bytes fit; ResourceExhausted
        naming the sizes when they cannot."""
        if need > self.budget_bytes:
            raise ResourceExhausted(
                f"{spec.version} needs {estimated}{need / GB:.2f} GB, more than the inference memory budget of "
                f"{self.budget_bytes / GB:.2f} GB; raise MLXHUB_INFERENCE_MEMORY_GB",
                resource_type="model version", resource_name=spec.version, reason="MEMORY_BUDGET",
                metadata={"needed_bytes": str(need), "budget_bytes": str(self.budget_bytes)},
            )
        for victim in [e for e in self._entries.values() if e.active == 0]:  # least recently used first
            if self.used_bytes + need <= self.budget_bytes:
                break
            self._unload(victim, "lru")
        if self.used_bytes + need > self.budget_bytes:
            raise ResourceExhausted(
                f"cannot load {spec.version} ({estimated}{need / GB:.2f} GB): the versions in use hold "
                f"{self.used_bytes / GB:.2f} GB of the {self.budget_bytes / GB:.2f} GB budget; retry when they are idle",
                resource_type="model version", resource_name=spec.version, reason="MEMORY_BUDGET",
                metadata={"needed_bytes": str(need), "budget_bytes": str(self.budget_bytes),
                          "used_bytes": str(self.used_bytes)},
            )

    def unload_idle(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for entry in list(self._entries.values()):
            if entry.active == 0 and now - entry.last_used >= self.keep_alive_s:
                self._unload(entry, "idle")

    def _unload(self, entry: Entry, reason: str) -> None:
        with self.lock:
            self._entries.pop(entry.spec.version, None)
        self._on_unload(entry)
        metrics.LOADED.remove(entry.spec.version, entry.spec.kind)
        metrics.LOADED_BYTES.remove(entry.spec.version)
        if entry.prompts is not None:
            metrics.PROMPT_CACHE_BYTES.remove(entry.spec.version)
        metrics.EVICTIONS.labels(reason).inc()
        log.info("unloaded %s (%s)", entry.spec.version, reason)
        entry.loaded = entry.state = entry.prompts = None
        gc.collect()

    def clear(self) -> None:
        for entry in list(self._entries.values()):
            self._unload(entry, "shutdown")
