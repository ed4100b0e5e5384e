"""Loaded model versions under a memory budget: LRU eviction of idle versions and an
idle unload after `keep_alive` seconds (like Ollama's keep_alive). Each entry has its own
keep-alive, set by the latest request that named one (None: the cache's default); a negative
one pins it (never idle-unloaded nor evicted; only `unload` lifts it), and an entry preloaded
for an alias (`preloaded`, its reasons) is not idle-unloaded while an alias points at it,
though LRU may evict it for a request. An adapter version is an entry of its own that holds
only its LoRA matrices (`inference_svc.lora`: stored once, in its base's router, and counted
on the adapter; the router's working arrays count on the base) and points at its base's entry,
whose weights it shares: an idle adapter may go while its base stays; a base goes only when no
request runs on it or on any of its adapters (the engine counts those in the base's `active`),
and its adapters go with it. A version's size is
estimated from its files before it loads (`inference_svc.footprint`), so one that cannot
fit is refused, and idle versions make room for one that can, before anything is
allocated. A version loading elsewhere (off the engine thread) holds its estimated bytes
as a reservation meanwhile, so loads that overlap cannot together exceed the budget. Only
the engine thread mutates it; readers (ListLoadedModels) take the lock for a snapshot."""

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

    @property
    def base_spec(self) -> ModelSpec:
        """What to load for the base an adapter version runs on (the spec itself for a base)."""
        if not self.adapter_path:
            return self
        return ModelSpec(self.base_version, self.path, files=self.files)


@dataclass
class Entry:
    spec: ModelSpec
    loaded: Any  # loader.Loaded (or a stand-in in tests): needs .nbytes
    state: Any = None  # per-entry engine state (the batch generator)
    prompts: Any = None  # its prompt cache (mlx-lm's LRUPromptCache), made and used by the engine
    active: int = 0  # requests running on it (on a base: also those on its adapters)
    last_used: float = field(default_factory=time.monotonic)
    base: Entry | None = None  # an adapter's base entry, whose model it runs on
    router: Any = None  # a base's `lora.Router`, once an adapter attached or a batch started
    served: int = 0  # requests finished on it
    keep_alive_s: float | None = None  # None: the cache's default; negative: pinned
    preloaded: list[str] = field(default_factory=list)  # why it is held without requests (alias targets)
    unload_when_idle: bool = False  # UnloadModel asked while requests ran on it

    @property
    def pinned(self) -> bool:
        return self.keep_alive_s is not None and self.keep_alive_s < 0

    @property
    def nbytes(self) -> int:
        """What it holds in memory: its weights (an adapter's matrices, stored once in its base's pack,
        `inference_svc.lora`), and on a base its router's working arrays beside them."""
        if self.loaded is None:
            return 0
        return self.loaded.nbytes + (self.router.working_bytes if self.router is not None else 0)

    @property
    def home(self) -> Entry:
        """The entry whose model and batch this version decodes in: its base's for an adapter."""
        return self.base or self


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
        self._reserved: dict[str, int] = {}  # version -> estimated bytes, while it loads
        self.lock = threading.Lock()

    def snapshot(self) -> list[Entry]:
        with self.lock:
            return list(self._entries.values())

    @property
    def used_bytes(self) -> int:
        """Bytes of the loaded versions (not counting reservations)."""
        return sum(e.nbytes for e in self._entries.values())

    @property
    def reserved_bytes(self) -> int:
        """Estimated bytes of the versions loading now."""
        return sum(self._reserved.values())

    def get(self, spec: ModelSpec) -> Entry:
        """The loaded entry for `spec`, loading it here (and evicting idle versions) when needed."""
        entry = self.loaded(spec)
        if entry is None:
            self.reserve(spec)
            try:
                loaded = self.load(spec)
            except BaseException:
                self.release(spec)
                raise
            entry = self.install(spec, loaded)
        return entry

    def find(self, version: str) -> Entry | None:
        """The loaded entry of `version`, leaving its place in the LRU order as it is."""
        return self._entries.get(version)

    def loaded(self, spec: ModelSpec) -> Entry | None:
        """The entry for `spec` if it is loaded (now the most recently used), else None."""
        entry = self._entries.get(spec.version)
        if entry is None:
            return None
        with self.lock:
            self._entries.move_to_end(spec.version)
        entry.last_used = time.monotonic()
        return entry

    def reserve(self, spec: ModelSpec, preload: bool = False) -> None:
        """Before `spec` loads: make room for its estimated size (ResourceExhausted when there is none)
        and hold that room until `install` or `release`. A `preload` evicts no preloaded version."""
        need = 0
        if self._estimate is not None:
            need = self._estimate(spec)
            base = self._entries.get(spec.base_version) if spec.adapter_path else None
            self._make_room(spec, need, "an estimated ", keep=base, spare_preloaded=preload)  # an adapter needs its base
        self._reserved[spec.version] = need

    def load(self, spec: ModelSpec) -> Any:
        """Load `spec`'s weights (any thread: it touches nothing of the cache)."""
        return self._load(spec)

    def release(self, spec: ModelSpec) -> None:
        """Give back the room reserved for a load that failed."""
        self._reserved.pop(spec.version, None)

    def install(self, spec: ModelSpec, loaded: Any, base: Entry | None = None) -> Entry:
        """Keep what `load` returned, in place of its reservation (ResourceExhausted when it turned
        out bigger than there is room for); `base`: an adapter's loaded base entry."""
        self.release(spec)
        need = loaded.nbytes
        self._make_room(spec, need, "", keep=base)
        entry = Entry(spec, loaded, base=base)
        with self.lock:
            self._entries[spec.version] = entry
        metrics.LOADED.labels(spec.version, spec.kind).set(1)
        metrics.LOADED_BYTES.labels(spec.version).set(need)
        log.info("loaded %s (%s, %.0f MB)", spec.version, spec.kind, need / 2**20)
        return entry

    def keep_alive(self, entry: Entry, seconds: float | None) -> None:
        """A request's keep-alive for `entry` (None: the default, but a pin stays). 0 also releases a
        preload hold: the caller wants the version gone after its answer."""
        if seconds is None:
            if not entry.pinned:
                entry.keep_alive_s = None
            return
        entry.keep_alive_s = seconds
        if seconds == 0:
            entry.preloaded.clear()

    def adapters_of(self, entry: Entry, among: list[Entry] | None = None) -> list[Entry]:
        """The loaded adapter versions that run on `entry` (looked for in `among`, a reader's `snapshot`)."""
        return [a for a in (self._entries.values() if among is None else among) if a.base is entry]

    def _held(self, entry: Entry) -> bool:
        """Whether `entry` is spared by LRU eviction: pinned, or the base of a pinned adapter."""
        return entry.pinned or any(a.pinned for a in self.adapters_of(entry))

    def expires(self, entry: Entry, among: list[Entry] | None = None) -> float | None:
        """When keep-alive unloads `entry` if no request comes (monotonic), None while it is held
        (pinned, preloaded, or the base of an adapter that is). A base lasts as long as its adapters.
        `among`: the entries to look for its adapters in (a reader's `snapshot`)."""
        kept = [entry, *self.adapters_of(entry, among)]
        if any(e.pinned or e.preloaded for e in kept):
            return None
        return max(e.last_used + (self.keep_alive_s if e.keep_alive_s is None else e.keep_alive_s) for e in kept)

    def unload(self, entry: Entry) -> list[str]:
        """UnloadModel: unload `entry` (a base with its adapters) now; the versions that went."""
        gone = [entry.spec.version, *(a.spec.version for a in self.adapters_of(entry))]
        self._unload(entry, "request")
        return gone

    def _make_room(self, spec: ModelSpec, need: int, estimated: str, keep: Entry | None = None,
                   spare_preloaded: bool = False) -> None:
        """Unload idle versions (never `keep`, never a pinned one; with `spare_preloaded`, as a preload
        asks, no preloaded one either), least recently used first, until `need` bytes fit;
        ResourceExhausted naming the sizes (and the pinned versions) when they cannot."""
        if need > self.budget_bytes:
            raise ResourceExhausted(
                f"{spec.version} needs {estimated}{need / GB:.2f} GB, more than the inference memory budget of "
                f"{self.budget_bytes / GB:.2f} GB; raise MLXHUB_INFERENCE_MEMORY_GB",
                resource_type="model version", resource_name=spec.version, reason="MEMORY_BUDGET",
                metadata={"needed_bytes": str(need), "budget_bytes": str(self.budget_bytes)},
            )
        victims = [e for e in self._entries.values() if e.active == 0 and e is not keep and not self._held(e)
                   and not (spare_preloaded and (e.preloaded or any(a.preloaded for a in self.adapters_of(e))))]
        for victim in victims:  # LRU first
            if self.used_bytes + self.reserved_bytes + need <= self.budget_bytes:
                break
            if victim.loaded is not None:  # not gone with its base already
                self._unload(victim, "lru")
        held = self.used_bytes + self.reserved_bytes
        if held + need > self.budget_bytes:
            pinned = [e for e in self._entries.values() if e.pinned]
            because = (f"; pinned (keep_alive -1): {', '.join(e.spec.version for e in pinned)} hold "
                       f"{sum(e.nbytes for e in pinned) / GB:.2f} GB (UnloadModel frees them)") if pinned else ""
            raise ResourceExhausted(
                f"cannot load {spec.version} ({estimated}{need / GB:.2f} GB): the versions in use hold "
                f"{held / GB:.2f} GB of the {self.budget_bytes / GB:.2f} GB budget{because}; "
                "retry when they are idle",
                resource_type="model version", resource_name=spec.version, reason="MEMORY_BUDGET",
                metadata={"needed_bytes": str(need), "budget_bytes": str(self.budget_bytes),
                          "used_bytes": str(held)},
            )

    def unload_idle(self, now: float | None = None, wanted: frozenset[str] | set[str] = frozenset()) -> None:
        """Unload the idle versions whose keep-alive ran out (and those UnloadModel marked), but none
        that a queued request in `wanted` (versions) is about to use."""
        now = time.monotonic() if now is None else now
        for entry in list(self._entries.values()):
            if entry.loaded is None or entry.active != 0 or entry.spec.version in wanted:
                continue
            if entry.base is not None and entry.base.spec.version in wanted:
                continue
            if entry.unload_when_idle:
                self._unload(entry, "request")
                continue
            expires = self.expires(entry)  # a base stays while one of its adapters is kept
            if expires is not None and now >= expires and not any(
                    a.spec.version in wanted for a in self.adapters_of(entry)):
                self._unload(entry, "idle")

    def _unload(self, entry: Entry, reason: str) -> None:
        for adapter in self.adapters_of(entry):  # they cannot run without it
            self._unload(adapter, reason)
        with self.lock:
            self._entries.pop(entry.spec.version, None)
        self._on_unload(entry)
        metrics.LOADED.remove(entry.spec.version, entry.spec.kind)
        metrics.LOADED_BYTES.remove(entry.spec.version)
        if entry.prompts is not None:
            metrics.PROMPT_CACHE_BYTES.remove(entry.spec.version)
        metrics.EVICTIONS.labels(reason).inc()
        log.info("unloaded %s (%s)", entry.spec.version, reason)
        entry.loaded = entry.state = entry.prompts = entry.router = None
        gc.collect()

    def clear(self) -> None:
        for entry in list(self._entries.values()):
            self._unload(entry, "shutdown")
