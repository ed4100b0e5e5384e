"""The decode engine: one thread owns MLX decoding and every loaded model. Requests wait in a
bounded queue, join a per-version mlx-lm `BatchGenerator` (continuous batching, in
`inference_svc.decode.batching`'s leaner form) when a slot is free, and get their tokens back
through their own event queue (`inference_svc.decode.generation`). A cancelled request leaves
the batch at the next step; a request finishes on the version it started on even if an alias
moves meanwhile (the next request resolves afresh). A request alone on its version decodes on
mlx-lm's plain `generate_step` instead (`inference_svc.decode.solo`: a batch of one pays for
batching) and moves into the batch when a second one arrives. A version that is not loaded
loads in a thread of its own (`inference_svc.decode.loads`) while the engine decodes on; the
requests for it wait, then join.

Other threads act on the cache through `call` (UnloadModel, alias preloads), which runs their
work on the engine thread between steps: only that thread mutates the cache. Each request's
`keep_alive_s` becomes its version's keep-alive as it starts; after every step the versions whose
keep-alive ran out, and that no queued request is about to use, are unloaded (so keep_alive 0
unloads a version right after its answer, even while other versions decode).

What one request brings stays its own: its prompt is tokenized in the caller's thread
(`submit`), its sampling parameters are checked against the loaded model before it joins
a batch, and an error of its sampler during a batched step fails it alone
(`sampling.Guarded`). Should the engine thread itself die, a supervisor fails the requests
it was running, reports the service NOT_SERVING, and starts a fresh thread.

Each version keeps a prompt cache (mlx-lm's `LRUPromptCache`, as `mlx_lm.server` does):
the KV state of finished requests, keyed by their tokens, so a request that shares a
prefix with an earlier one (the chat template's system prompt, the earlier turns of a
conversation) computes only the rest of its prompt.

LoRA adapter versions decode in their base's batch: an adapter version loads only its low-rank
matrices (after its base, if that is not loaded), which attach to the base's model
(`inference_svc.lora.Router`); each batch row names its adapter, so requests on the base and
on any number of its adapters share one batch and one pass over the base weights."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from mlx_lm.models.cache import LRUPromptCache, can_trim_prompt_cache, trim_prompt_cache

from inference_svc import lora, metrics, prompts
from inference_svc.cache import Entry, ModelCache, ModelSpec
from inference_svc.decode import sampling
from inference_svc.decode.batching import Batches
from inference_svc.decode.generation import CANCELLED, LENGTH, STOP, Done, Failed, Generation, Request
from inference_svc.decode.loads import Load, Loads
from inference_svc.decode.solo import Solo, can_go_alone
from inference_svc.decode.stops import find_stop, held_back
from inference_svc.mlx_lm_compat import keep_leading_space
from inference_svc.stats import Recorder
from mlxhub.errors import HubError, NotFound, ResourceExhausted, Unavailable
from mlxhub.mlx_threads import release_streams

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.5
PREFILL_STEP = 512
PROMPT_CACHE_ENTRIES = 10  # per version, like mlx_lm.server's --prompt-cache-size
RESTART_DELAY_S = (0.5, 30.0)  # first and longest wait before a dead engine thread is replaced
STEADY_S = 60.0  # an engine thread that ran this long before it died restarts after the first wait again
CALL_TIMEOUT_S = 30.0  # how long `call` waits for the engine thread (one step, or a restart)


@dataclass(frozen=True)
class Unloaded:
    """What UnloadModel did: versions unloaded now, and those that go once their `running` requests end."""

    unloaded: list[str]
    unloading: list[str]
    running: int


class Engine:
    def __init__(self, load, budget_bytes: int, keep_alive_s: float, max_running: int = 8, max_queued: int = 32,
                 prompt_cache_bytes: int = 0, tokenizer=None, estimate=None, on_health=None,
                 stats: Recorder | None = None) -> None:
        """`load(spec)` loads a version (in a thread of its own); `tokenizer(spec)` gives its tokenizer (by
        default loaded from `spec.path`); `estimate(spec)` its size before loading (`ModelCache`);
        `on_health(serving)` hears when the engine thread died (False) and when its replacement runs
        (True); `stats` records the recent figures GetMetricsSummary and ListLoadedModels report."""
        self.stats = stats or Recorder()
        self.max_running = max_running
        self.max_queued = max_queued
        self.prompt_cache_bytes = prompt_cache_bytes  # per version; 0 turns the prompt cache off
        self.cache = ModelCache(load, budget_bytes, keep_alive_s, on_unload=self._close_entry, estimate=estimate)
        if tokenizer is None:
            tokenizers = prompts.Tokenizers()
            tokenizer = lambda spec: tokenizers.get(spec.path)
        self.tokenizer = tokenizer
        self._on_health = on_health or (lambda serving: None)
        self._pending: collections.deque[Generation] = collections.deque()
        self._calls: collections.deque[tuple[Callable[[], Any], Future]] = collections.deque()
        self._running: dict[tuple[str, int], Generation] = {}
        self._starting: Generation | None = None  # taken from the queue, not yet running
        self._solo_ids = itertools.count(-1, -1)
        self._wake = threading.Condition()
        self._loads = Loads(self.cache.load, on_done=self._notify)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._supervisor = threading.Thread(target=self._supervise, name="inference-engine-supervisor", daemon=True)
        metrics.QUEUE_DEPTH.set_function(lambda: len(self._pending))
        metrics.RUNNING.set_function(lambda: len(self._running))

    def start(self) -> Engine:
        self._thread = self._new_thread()
        self._supervisor.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        self._supervisor.join(30)

    @property
    def alive(self) -> bool:
        """Whether an engine thread runs (False while a dead one waits for its replacement)."""
        return self._thread is not None and self._thread.is_alive()

    def submit(self, request: Request) -> Generation:
        """Queue `request`, its prompt tokenized first, here in the caller's thread (the engine's decodes on)."""
        self._check_room()
        generation = Generation(request)
        tokens = prompts.encode(self.tokenizer(request.spec), request.spec.version, request.messages, request.prompt,
                                request.tools)
        generation.request = dataclasses.replace(request, tokens=tuple(tokens))
        with self._wake:
            self._check_room()
            self._pending.append(generation)
            self._wake.notify()
        return generation

    def _check_room(self) -> None:
        if len(self._pending) >= self.max_queued:
            raise ResourceExhausted(
                f"the inference queue is full ({self.max_queued} waiting, {len(self._running)} running); retry later",
                reason="QUEUE_FULL", metadata={"max_queued": str(self.max_queued)},
            )

    def call(self, work: Callable[[], Any]) -> Any:
        """Run `work` on the engine thread between steps and return its result (or raise its error)."""
        done: Future = Future()
        with self._wake:
            if self._stopping:
                raise Unavailable("the inference service is shutting down")
            self._calls.append((work, done))
            self._wake.notify()
        try:
            return done.result(timeout=CALL_TIMEOUT_S)
        except FutureTimeout:
            raise Unavailable("the inference engine did not answer in time; retry") from None

    def unload(self, version: str) -> Unloaded:
        """UnloadModel: unload `version` now if nothing runs on it, else as soon as its requests end."""
        return self.call(lambda: self._unload(version))

    def preload(self, spec: ModelSpec, reason: str) -> None:
        """Load `spec` without a request (within the budget, evicting no preloaded version) and hold it
        for `reason` until `release_preload`; a preload that does not fit is skipped with a warning."""
        self.call(lambda: self._preload(spec, reason))

    def release_preload(self, version: str, reason: str) -> None:
        """`reason` no longer holds `version` (its alias moved): it is left to its keep-alive from now."""
        self.call(lambda: self._release_preload(version, reason))

    def active_streams(self, version: str) -> int:
        return sum(1 for g in list(self._running.values()) if g.spec.version == version)

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify()

    # -- supervision -----------------------------------------------------------------------
    def _new_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="inference-engine", daemon=True)
        thread.start()
        return thread

    def _supervise(self) -> None:
        """Wait on the engine thread; replace it when it dies, with a growing wait if it keeps dying."""
        delay = 0.0
        while True:
            started = time.monotonic()
            self._thread.join()
            if self._stopping:
                return
            metrics.ENGINE_RESTARTS.inc()
            self._on_health(False)
            self._recover()
            steady = time.monotonic() - started > STEADY_S
            delay = RESTART_DELAY_S[0] if steady or not delay else min(delay * 2, RESTART_DELAY_S[1])
            with self._wake:
                self._wake.wait_for(lambda: self._stopping, timeout=delay)
                if self._stopping:
                    return
            log.warning("restarting the inference engine thread")
            self._thread = self._new_thread()
            self._on_health(True)

    def _recover(self) -> None:
        """After the engine thread died: fail what it was running and drop its batches and prompt caches
        (their state is whatever the failed step left). Loaded weights stay; queued requests, and those
        waiting for a load, wait for the next thread. No MLX call here: this thread must not own MLX streams."""
        for generation in {id(g): g for g in [self._starting, *self._running.values()] if g is not None}.values():
            generation.events.put(Failed(HubError("the inference engine failed while running this request and "
                                                  "was restarted; retry the request")))
        self._running.clear()
        self._starting = None
        for entry in self.cache.snapshot():
            entry.state, entry.prompts, entry.active = None, None, 0
            if entry.router is not None:
                entry.router.forget_rows()

    # -- the engine thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # the supervisor replaces the thread
            log.exception("the inference engine thread died")
        finally:
            release_streams()

    def _loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    break
                if (not self._running and not self._loads.any_finished() and not self._calls
                        and (not self._pending or self._full())):
                    self._wake.wait(IDLE_WAIT_S)
            self.stats.queue(len(self._pending))
            try:
                self._run_calls()
                self._join_loaded()
                self._admit()
                self._reap_cancelled()
                self._step()
                self.cache.unload_idle(wanted=self._wanted())
            except Exception:  # the engine must outlive any one request's failure
                log.exception("engine step failed; failing the running requests")
                for generation in list(self._running.values()):
                    self._finish_failed(generation, HubError("generation failed unexpectedly; see the inference log"))
        for generation in [*self._pending, *self._running.values(), *self._loads.clear()]:
            generation.events.put(Failed(HubError("the inference service is shutting down")))
        while self._calls:
            self._calls.popleft()[1].set_exception(Unavailable("the inference service is shutting down"))
        self.cache.clear()

    def _run_calls(self) -> None:
        while True:
            with self._wake:
                if not self._calls:
                    return
                work, done = self._calls.popleft()
            try:
                done.set_result(work())
            except BaseException as error:  # noqa: BLE001  (handed back to the caller)
                done.set_exception(error)

    def _wanted(self) -> set[str]:
        """Versions that queued requests (and those waiting for a load) are about to use: kept loaded."""
        with self._wake:
            waiting = [*self._pending, *self._loads.waiting()]
        return {v for g in waiting for v in (g.spec.version, g.spec.base_version) if v}

    def _unload(self, version: str) -> Unloaded:
        entry = self.cache.find(version)
        if entry is None:
            loading = " (it is loading now; unload it once it has loaded)" if self._loads.get(version) else ""
            loaded = ", ".join(e.spec.version for e in self.cache.snapshot()) or "none"
            raise NotFound(f"{version} is not loaded{loading}; loaded versions: {loaded} (ListLoadedModels)",
                           resource_type="loaded model version", resource_name=version)
        if entry.active == 0:  # on a base, `active` counts its adapters' requests too
            gone = self.cache.unload(entry)
            log.info("unloaded %s on request", ", ".join(gone))
            return Unloaded(gone, [], 0)
        entry.unload_when_idle = True
        going = [version, *(e.spec.version for e in self.cache.adapters_of(entry))]
        log.info("%s unloads when its %d running requests finish", version, entry.active)
        return Unloaded([], going, entry.active)

    def _preload(self, spec: ModelSpec, reason: str) -> None:
        entry = self.cache.find(spec.version)
        if entry is not None:
            if reason not in entry.preloaded:
                entry.preloaded.append(reason)
            log.info("preload %s (%s): already loaded, now held", spec.version, reason)
            return
        load = self._loads.get(spec.version)
        if load is not None:
            load.preloaded.append(reason)
            return
        if spec.adapter_path and self.cache.find(spec.base_version) is None:  # its base first, then it
            base = self._loads.get(spec.base_version)
            if base is None:
                base = self._start_preload(spec.base_spec, "")
            if base is not None:
                base.after.append((spec, reason))
            return
        self._start_preload(spec, reason)

    def _start_preload(self, spec: ModelSpec, reason: str) -> Load | None:
        try:
            self.cache.reserve(spec, preload=True)
        except HubError as error:
            log.warning("not preloading %s (%s): %s", spec.version, reason or "base of a preload", error.message)
            return None
        except Exception:  # a version whose size cannot be read must not stop the engine
            log.exception("not preloading %s (%s)", spec.version, reason or "base of a preload")
            return None
        return self._loads.start(spec, preloaded=reason)

    def _release_preload(self, version: str, reason: str) -> None:
        load = self._loads.get(version)
        if load is not None and reason in load.preloaded:
            load.preloaded.remove(reason)
        entry = self.cache.find(version)
        if entry is not None and reason in entry.preloaded:
            entry.preloaded.remove(reason)
            if not entry.preloaded:
                entry.last_used = time.monotonic()  # its keep-alive counts from now
                log.info("%s no longer preloaded (%s moved); left to its keep-alive", version, reason)

    def _full(self) -> bool:
        """Whether the running requests and those waiting for a load fill every slot."""
        return len(self._running) + self._loads.waiting_count >= self.max_running

    def _admit(self) -> None:
        """Start queued requests while slots are free; one whose version is not loaded waits for its load."""
        while not self._full():
            with self._wake:
                if not self._pending:
                    return
                generation = self._pending.popleft()
            self._place(generation)

    def _place(self, generation: Generation) -> None:
        """Start `generation` if its version is loaded, else queue it behind the load it needs first: its
        base's for an adapter whose base is not loaded, else its own."""
        spec = generation.spec
        entry = self.cache.loaded(spec)
        if entry is not None:
            self._begin(generation, entry)
        elif generation.cancelled.is_set():
            generation.events.put(Done(CANCELLED, 0, 0, 0.0, 0.0))
        elif spec.adapter_path and self.cache.loaded(spec.base_spec) is None:
            self._wait_for_load(generation, spec.base_spec)
        else:
            self._wait_for_load(generation, spec)

    def _wait_for_load(self, generation: Generation, spec) -> None:
        """Queue `generation` behind the load of `spec`, starting the load (within the memory budget) if
        none runs."""
        load = self._loads.get(spec.version)
        if load is None:
            try:
                self.cache.reserve(spec)
            except HubError as error:
                generation.events.put(Failed(error))
                return
            except Exception:  # a version whose size cannot be read must not stop the engine
                log.exception("cannot start a request on %s", generation.spec.version)
                generation.events.put(Failed(HubError(f"cannot load {generation.spec.version}; see the inference log")))
                return
            load = self._loads.start(spec)
        load.waiting.append(generation)

    def _join_loaded(self) -> None:
        """Install the versions whose loads ended and start the requests that waited for them."""
        for load in self._loads.finished():
            self._loads.drop(load)
            entry = self.cache.loaded(load.spec) or self._install(load)
            if entry is None and load.preloaded:
                log.warning("preload of %s (%s) did not load", load.spec.version, "; ".join(load.preloaded))
            if entry is not None and load.preloaded:
                entry.preloaded.extend(r for r in load.preloaded if r not in entry.preloaded)
                log.info("preloaded %s in %.1f s (%s)", load.spec.version, time.monotonic() - load.started,
                         "; ".join(load.preloaded))
            while entry is not None and load.waiting:
                self._place(load.waiting.popleft())  # starts it, or (an adapter on a base just loaded) loads on
            for spec, reason in load.after:  # preloads of adapters that waited for this base
                if entry is not None:
                    self._preload(spec, reason)
                else:
                    log.warning("not preloading %s (%s): its base did not load", spec.version, reason)

    def _install(self, load: Load) -> Entry | None:
        """The loaded version in the cache; None, with its waiting requests failed, when it did not load."""
        version = load.spec.version
        try:
            loaded = load.result.result()
            base = None
            if load.spec.adapter_path:
                base = self.cache.loaded(load.spec.base_spec)
                if base is None:  # the base went while the adapter loaded: its requests load it again
                    self.cache.release(load.spec)
                    return self._retry(load)
                loaded.version = load.spec.version
                self._router(base).attach(loaded)
            try:
                entry = self.cache.install(load.spec, loaded, base=base)
            except BaseException:
                if base is not None:
                    base.router.detach(loaded)
                raise
        except HubError as error:
            failure = error
        except Exception:  # a model that cannot load must not stop the engine
            log.exception("cannot load %s", version)
            failure = HubError(f"cannot load {version}; see the inference log")
        else:
            log.info("%s loaded in %.1f s; %d requests waited for it", version, time.monotonic() - load.started,
                     len(load.waiting))
            return entry
        self.cache.release(load.spec)
        while load.waiting:
            load.waiting.popleft().events.put(Failed(failure))
        return None

    def _retry(self, load: Load) -> None:
        """Place again the requests that waited for a load that cannot be installed as it is."""
        while load.waiting:
            self._place(load.waiting.popleft())

    @staticmethod
    def _router(home: Entry) -> lora.Router:
        """The adapter router of a loaded base (made on first use)."""
        if home.router is None:
            home.router = lora.Router(home.loaded.model)
        return home.router

    def _begin(self, generation: Generation, entry: Entry) -> None:
        """Start `generation` on its loaded version; a request that cannot start fails alone."""
        if generation.cancelled.is_set():
            generation.events.put(Done(CANCELLED, 0, 0, 0.0, 0.0))
            return
        self._starting = generation
        try:
            self._start(generation, entry)
        except HubError as error:
            generation.events.put(Failed(error))
        except Exception:  # one request that cannot start must not stop the engine
            log.exception("cannot start a request on %s", generation.spec.version)
            generation.events.put(Failed(HubError(f"cannot load {generation.spec.version}; see the inference log")))
        self._starting = None

    def _start(self, generation: Generation, entry: Entry) -> None:
        request = generation.request
        home = entry.home  # the base whose model and batch it decodes in
        adapter = entry.loaded if entry.base is not None else None
        loaded = home.loaded
        router = self._router(home)
        tokenizer = loaded.tokenizer
        budget = sampling.completion_budget(request.sampling, len(request.tokens), loaded.context)
        sampling.check_for_model(request.sampling, getattr(loaded, "vocab_size", 0))
        tokens = list(request.tokens)
        if home.state is None:
            home.state = Batches(
                lora.RoutedModel(loaded.model, router), stop_tokens=[[t] for t in tokenizer.eos_token_ids],
                completion_batch_size=self.max_running, prefill_batch_size=self.max_running,
                prefill_step_size=PREFILL_STEP,
            )
        if entry.prompts is None and self.prompt_cache_bytes > 0:
            entry.prompts = LRUPromptCache(PROMPT_CACHE_ENTRIES, self.prompt_cache_bytes)
        version = request.spec.version
        cache, rest = entry.prompts.fetch_nearest_cache(version, tokens) if entry.prompts else (None, tokens)
        if not rest:  # the whole prompt is cached: recompute its last token, which yields the first logits
            if cache is not None and can_trim_prompt_cache(cache):
                trim_prompt_cache(cache, 1)
                rest = tokens[-1:]
            else:
                cache, rest = None, tokens
        reused = len(tokens) - len(rest)
        sampler = request.sampler or sampling.make_sampler(request.sampling)
        if request.constraint is not None:  # masks this row's logits alone
            sampler = request.constraint.sampler(sampler)
        if request.logprobs is not None:  # only this row pays for the log-softmax
            sampler = generation.recorder = sampling.Recording(sampler, request.logprobs)
        processors = sampling.make_processors(request.sampling)
        if sampler is not sampling.greedy:  # greedy cannot fail, and a batch of greedy requests samples in one call
            sampler = generation.guard = sampling.Guarded(sampler)
        lone = next((g for g in self._running.values() if g.entry.home is home and g.solo is not None), None)
        if lone is not None:  # company: the request decoding alone moves into the batch first
            self._join_batch(lone)
        if home.active == 0 and can_go_alone(cache, processors):
            model = lora.RoutedModel(loaded.model, router, adapter, fixed=True)
            generation.solo = Solo(model, rest, cache, tokens[:reused], sampler, budget, PREFILL_STEP)
            generation.uid = next(self._solo_ids)
        else:
            (generation.uid,) = home.state.insert(
                [rest], max_tokens=[budget], caches=[cache] if cache is not None else None,
                all_tokens=[tokens[:reused]], samplers=[sampler], logits_processors=[processors],
            )
            router.assign(generation.uid, adapter)
        generation.entry, generation.budget = entry, budget
        generation.prompt_tokens, generation.cached_tokens = len(tokens), reused
        generation.detokenizer = _detokenizer(tokenizer, continues_prompt=request.messages is None)
        entry.active += 1
        if home is not entry:
            home.active += 1
        self.cache.keep_alive(entry, request.keep_alive_s)
        self._running[(home.spec.version, generation.uid)] = generation
        metrics.PROMPT_TOKENS.labels(version).inc(len(tokens))
        metrics.CACHED_PROMPT_TOKENS.labels(version).inc(reused)

    def _join_batch(self, generation: Generation) -> None:
        """Move a request decoding alone into its version's batch, where it goes on unchanged."""
        home, solo = generation.entry.home, generation.solo
        rest, cache, before = solo.handover()
        del self._running[(home.spec.version, generation.uid)]
        (generation.uid,) = home.state.insert(
            [rest], max_tokens=[generation.budget - generation.completion_tokens],
            caches=[cache] if cache is not None else None, all_tokens=[before], samplers=[solo.sampler],
            logits_processors=[[]],
        )
        generation.solo = None
        home.router.assign(generation.uid, generation.entry.loaded if generation.entry.base is not None else None)
        self._running[(home.spec.version, generation.uid)] = generation

    def _reap_cancelled(self) -> None:
        for generation in [g for g in self._running.values() if g.cancelled.is_set()]:
            self._remove(generation)
            self._finish(generation, CANCELLED)
        for generation in [g for g in self._loads.waiting() if g.cancelled.is_set()]:
            self._loads.get(generation.spec.version).waiting.remove(generation)
            generation.events.put(Done(CANCELLED, 0, 0, 0.0, 0.0))

    def _step(self) -> None:
        for generation in [g for g in self._running.values() if g.solo is not None]:
            token = generation.solo.next()
            if self._failed_sampling(generation):
                continue
            if token in generation.entry.home.loaded.tokenizer.eos_token_ids:
                reason = STOP
            else:
                reason = LENGTH if generation.completion_tokens + 1 >= generation.budget else None
            self._on_token(generation, token, reason, time.perf_counter())
        for home in {id(g.entry.home): g.entry.home for g in self._running.values() if g.solo is None}.values():
            _, responses = home.state.next()
            now = time.perf_counter()
            for generation in [g for g in self._running.values() if g.entry.home is home]:
                self._failed_sampling(generation)  # before its token is used: it leaves the batch
            for response in responses:
                generation = self._running.get((home.spec.version, response.uid))
                if generation is None:
                    continue
                if response.finish_reason is not None:
                    self._keep_prompt(generation.entry, response.all_tokens, response.prompt_cache)
                self._on_token(generation, response.token, response.finish_reason, now)

    def _failed_sampling(self, generation: Generation) -> bool:
        """Fail `generation` alone if its sampler raised during the last step."""
        if generation.guard is None or generation.guard.error is None:
            return False
        error = generation.guard.error
        log.error("sampling failed for a request on %s: %r", generation.spec.version, error)
        self._finish_failed(generation, HubError(f"sampling failed for this request ({error}); "
                                                 "the other requests go on"))
        return True

    def _on_token(self, generation: Generation, token: int, finish_reason: str | None, now: float) -> None:
        version, stops = generation.spec.version, generation.request.sampling.stop
        if generation.first_token == 0.0:
            generation.first_token = now
            metrics.TTFT.labels(version).observe(now - generation.received)
            self.stats.first_token(version, now - generation.received)
        else:
            metrics.INTER_TOKEN.labels(version).observe(now - generation.last_token)
            self.stats.token(version, now - generation.last_token)
        generation.last_token = now
        generation.completion_tokens += 1
        is_eos = finish_reason == STOP and token in generation.entry.home.loaded.tokenizer.eos_token_ids
        ids = [] if is_eos else [token]
        if not is_eos:
            generation.detokenizer.add_token(token)
        if finish_reason is not None:
            generation.detokenizer.finalize()
        generation.text += generation.detokenizer.last_segment
        text, emitted = generation.text, generation.emitted
        stop_at = find_stop(text, stops, emitted)
        if stop_at is not None:
            generation.put_text(text[emitted:stop_at], ids)
            if finish_reason is None:
                self._remove(generation)
            self._finish(generation, STOP)
            return
        end = len(text) if finish_reason is not None else len(text) - held_back(text, stops)
        generation.put_text(text[emitted:end], ids)
        generation.emitted = max(emitted, end)
        if finish_reason is not None:
            self._finish(generation, finish_reason)

    def _remove(self, generation: Generation) -> None:
        """Take an unfinished request out of its batch, keeping what it computed for reuse."""
        if generation.solo is not None:  # _finish keeps its cache
            return
        entry = generation.entry
        kept = entry.home.state.remove([generation.uid], return_prompt_caches=entry.prompts is not None)
        if generation.uid in kept:
            cache, tokens = kept[generation.uid]
            self._keep_prompt(entry, tokens, cache)

    def _keep_prompt(self, entry: Entry, tokens: list[int] | None, cache: list | None) -> None:
        if entry.prompts is None or not tokens or not cache:
            return
        entry.prompts.insert_cache(entry.spec.version, list(tokens), cache)
        metrics.PROMPT_CACHE_BYTES.labels(entry.spec.version).set(entry.prompts.nbytes)

    def _finish(self, generation: Generation, reason: str) -> None:
        g = generation
        self._leave(g)
        if g.solo is not None:
            self._keep_prompt(g.entry, *g.solo.kept())
            g.solo = None
        g.entry.served += 1
        end = g.last_token or time.perf_counter()
        decode = g.last_token - g.first_token
        rate = (g.completion_tokens - 1) / decode if g.completion_tokens > 1 and decode > 0 else 0.0
        ttft = (g.first_token - g.received) * 1000 if g.first_token else 0.0
        version = g.spec.version
        metrics.GENERATED_TOKENS.labels(version).inc(g.completion_tokens)
        metrics.REQUESTS.labels(version, reason).inc()
        metrics.E2E.labels(version).observe(end - g.received)
        self.stats.finished(version, rate)
        g.events.put(Done(reason, g.prompt_tokens, g.completion_tokens, ttft, rate, g.cached_tokens))

    def _leave(self, generation: Generation) -> None:
        """Take a finishing request off the running set and out of its entries' counts."""
        entry = generation.entry
        home = entry.home
        self._running.pop((home.spec.version, generation.uid), None)
        if generation.solo is None and home.router is not None:
            home.router.release(generation.uid)
        now = time.monotonic()
        for held in {id(entry): entry, id(home): home}.values():
            held.active -= 1
            held.last_used = now

    def _finish_failed(self, generation: Generation, error: HubError) -> None:
        if generation.entry is not None:
            self._leave(generation)
            if generation.solo is not None:
                generation.solo = None
            elif generation.entry.home.state is not None:
                generation.entry.home.state.remove([generation.uid])
        generation.events.put(Failed(error))

    @staticmethod
    def _close_entry(entry: Entry) -> None:
        if entry.state is not None:
            entry.state.close()
        if entry.base is not None and entry.base.router is not None:  # an adapter: its base stays
            entry.base.router.detach(entry.loaded)


def _detokenizer(tokenizer, continues_prompt: bool):
    """A fresh streaming detokenizer. mlx-lm's drop the first token's leading space, right for a
    chat reply; the completion of a raw prompt continues the prompt's text, so it keeps it
    ("is" + " Paris", as OpenAI's completions answer)."""
    detokenizer = tokenizer.detokenizer  # a reset copy
    if continues_prompt:
        keep_leading_space(detokenizer)
    return detokenizer
