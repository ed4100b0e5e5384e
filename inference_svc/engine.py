"""The decode engine: one thread owns MLX and every loaded model. Requests wait in a
bounded queue, join a per-version mlx-lm `BatchGenerator` (continuous batching, in
`inference_svc.batching`'s leaner form) when a slot is free, and get their tokens back
through their own event queue. A cancelled request leaves the batch at the next step; a
request finishes on the version it started on even if an alias moves meanwhile (the next
request resolves afresh). A request alone on its version decodes on mlx-lm's plain
`generate_step` instead (`inference_svc.solo`: a batch of one pays for batching) and moves
into the batch when a second one arrives.

What one request brings stays its own: its prompt is tokenized in the caller's thread
(`submit`), its sampling parameters are checked against the loaded model before it joins
a batch, and an error of its sampler during a batched step fails it alone
(`sampling.Guarded`). Should the engine thread itself die, a supervisor fails the requests
it was running, reports the service NOT_SERVING, and starts a fresh thread.

Each version keeps a prompt cache (mlx-lm's `LRUPromptCache`, as `mlx_lm.server` does):
the KV state of finished requests, keyed by their tokens, so a request that shares a
prefix with an earlier one (the chat template's system prompt, the earlier turns of a
conversation) computes only the rest of its prompt."""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mlx_lm.models.cache import LRUPromptCache, can_trim_prompt_cache, trim_prompt_cache

from inference_svc import metrics, prompts, sampling
from inference_svc.batching import Batches
from inference_svc.cache import Entry, ModelCache, ModelSpec
from inference_svc.solo import Solo, can_go_alone
from inference_svc.stats import Recorder
from mlxhub.errors import HubError, ResourceExhausted
from mlxhub.mlx_threads import release_streams

log = logging.getLogger(__name__)

STOP, LENGTH, CANCELLED = "stop", "length", "cancelled"
IDLE_WAIT_S = 0.5
PREFILL_STEP = 512
PROMPT_CACHE_ENTRIES = 10  # per version, like mlx_lm.server's --prompt-cache-size
RESTART_DELAY_S = (0.5, 30.0)  # first and longest wait before a dead engine thread is replaced
STEADY_S = 60.0  # an engine thread that ran this long before it died restarts after the first wait again


@dataclass
class Chunk:
    text: str
    token_ids: list[int]


@dataclass
class Done:
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float
    tokens_per_second: float
    cached_tokens: int = 0


@dataclass
class Failed:
    error: HubError


@dataclass
class Job:
    """One request, from submission to its Done/Failed event."""

    spec: ModelSpec
    sampling: sampling.Sampling
    messages: list[dict[str, str]] | None = None
    prompt: str = ""
    sampler: Any = None  # a sampler of the caller's own; None: one made from `sampling`
    tokens: list[int] | None = None  # the prompt's token ids, set by `Engine.submit`
    streaming: bool = True  # False: text collects in `collected` and only Done/Failed wake the caller
    collected: list[str] = field(default_factory=list)
    received: float = field(default_factory=time.perf_counter)
    events: queue.Queue = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    # Engine-side state.
    uid: int = -1  # in the version's BatchGenerator; negative while decoding alone (`solo`)
    guard: sampling.Guarded | None = None  # its sampler, when it is one that can fail
    solo: Solo | None = None
    budget: int = 0
    entry: Entry | None = None
    detokenizer: Any = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    text: str = ""
    emitted: int = 0
    first_token: float = 0.0
    last_token: float = 0.0

    def cancel(self) -> None:
        self.cancelled.set()


class Engine:
    def __init__(self, load, budget_bytes: int, keep_alive_s: float, max_running: int = 8, max_queued: int = 32,
                 prompt_cache_bytes: int = 0, tokenizer=None, estimate=None, on_health=None,
                 stats: Recorder | None = None) -> None:
        """`load(spec)` loads a version; `tokenizer(spec)` gives its tokenizer (by default loaded from
        `spec.path`); `estimate(spec)` its size before loading (`ModelCache`); `on_health(serving)` hears
        when the engine thread died (False) and when its replacement runs (True); `stats` records the
        recent figures GetMetricsSummary and ListLoadedModels report."""
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
        self._pending: collections.deque[Job] = collections.deque()
        self._running: dict[tuple[str, int], Job] = {}
        self._starting: Job | None = None  # taken from the queue, not yet running
        self._solo_ids = itertools.count(-1, -1)
        self._wake = threading.Condition()
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

    def submit(self, job: Job) -> Job:
        """Queue `job`, its prompt tokenized first, here in the caller's thread (the engine's decodes on)."""
        self._check_room()
        job.tokens = prompts.encode(self.tokenizer(job.spec), job.spec.version, job.messages, job.prompt)
        with self._wake:
            self._check_room()
            self._pending.append(job)
            self._wake.notify()
        return job

    def _check_room(self) -> None:
        if len(self._pending) >= self.max_queued:
            raise ResourceExhausted(
                f"the inference queue is full ({self.max_queued} waiting, {len(self._running)} running); retry later",
                reason="QUEUE_FULL", metadata={"max_queued": str(self.max_queued)},
            )

    def active_streams(self, version: str) -> int:
        return sum(1 for key in list(self._running) if key[0] == version)

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
        (their state is whatever the failed step left). Loaded weights stay; queued requests wait for the
        next thread. No MLX call here: this thread must not own MLX streams."""
        for job in {id(j): j for j in [self._starting, *self._running.values()] if j is not None}.values():
            job.events.put(Failed(HubError("the inference engine failed while running this request and was "
                                           "restarted; retry the request")))
        self._running.clear()
        self._starting = None
        for entry in self.cache.snapshot():
            entry.state, entry.prompts, entry.active = None, None, 0

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
                if not self._pending and not self._running:
                    self._wake.wait(IDLE_WAIT_S)
            self.stats.queue(len(self._pending))
            try:
                self._admit()
                self._reap_cancelled()
                self._step()
                if not self._running:
                    self.cache.unload_idle()
            except Exception:  # the engine must outlive any one request's failure
                log.exception("engine step failed; failing the running requests")
                for job in list(self._running.values()):
                    self._finish_failed(job, HubError("generation failed unexpectedly; see the inference log"))
        for job in [*self._pending, *self._running.values()]:
            job.events.put(Failed(HubError("the inference service is shutting down")))
        self.cache.clear()

    def _admit(self) -> None:
        while len(self._running) < self.max_running:
            with self._wake:
                if not self._pending:
                    return
                job = self._pending.popleft()
            if job.cancelled.is_set():
                job.events.put(Done(CANCELLED, 0, 0, 0.0, 0.0))
                continue
            self._starting = job
            try:
                self._start(job)
            except HubError as error:
                job.events.put(Failed(error))
            except Exception:  # a model that cannot load must not stop the engine
                log.exception("cannot start a request on %s", job.spec.version)
                job.events.put(Failed(HubError(f"cannot load {job.spec.version}; see the inference log")))
            self._starting = None

    def _start(self, job: Job) -> None:
        entry = self.cache.get(job.spec)
        loaded = entry.loaded
        tokenizer = loaded.tokenizer
        tokens = job.tokens  # set by submit
        budget = sampling.completion_budget(job.sampling, len(tokens), loaded.context)
        sampling.check_for_model(job.sampling, getattr(loaded, "vocab_size", 0))
        if entry.state is None:
            entry.state = Batches(
                loaded.model, stop_tokens=[[t] for t in tokenizer.eos_token_ids],
                completion_batch_size=self.max_running, prefill_batch_size=self.max_running,
                prefill_step_size=PREFILL_STEP,
            )
        if entry.prompts is None and self.prompt_cache_bytes > 0:
            entry.prompts = LRUPromptCache(PROMPT_CACHE_ENTRIES, self.prompt_cache_bytes)
        cache, rest = entry.prompts.fetch_nearest_cache(job.spec.version, tokens) if entry.prompts else (None, tokens)
        if not rest:  # the whole prompt is cached: recompute its last token, which yields the first logits
            if cache is not None and can_trim_prompt_cache(cache):
                trim_prompt_cache(cache, 1)
                rest = tokens[-1:]
            else:
                cache, rest = None, tokens
        reused = len(tokens) - len(rest)
        sampler, processors = job.sampler or sampling.make_sampler(job.sampling), sampling.make_processors(job.sampling)
        if sampler is not sampling.greedy:  # greedy cannot fail, and a batch of greedy requests samples in one call
            sampler = job.guard = sampling.Guarded(sampler)
        lone = next((j for j in self._running.values() if j.entry is entry and j.solo is not None), None)
        if lone is not None:  # company: the request decoding alone moves into the batch first
            self._join_batch(lone)
        if entry.active == 0 and can_go_alone(cache, processors):
            job.solo = Solo(loaded.model, rest, cache, tokens[:reused], sampler, budget, PREFILL_STEP)
            job.uid = next(self._solo_ids)
        else:
            (job.uid,) = entry.state.insert(
                [rest], max_tokens=[budget], caches=[cache] if cache is not None else None,
                all_tokens=[tokens[:reused]], samplers=[sampler], logits_processors=[processors],
            )
        job.entry, job.prompt_tokens, job.cached_tokens, job.budget = entry, len(tokens), reused, budget
        job.detokenizer = _detokenizer(tokenizer, continues_prompt=job.messages is None)
        entry.active += 1
        self._running[(job.spec.version, job.uid)] = job
        metrics.PROMPT_TOKENS.labels(job.spec.version).inc(len(tokens))
        metrics.CACHED_PROMPT_TOKENS.labels(job.spec.version).inc(reused)

    def _join_batch(self, job: Job) -> None:
        """Move a request decoding alone into its version's batch, where it goes on unchanged."""
        entry, solo = job.entry, job.solo
        rest, cache, before = solo.handover()
        del self._running[(job.spec.version, job.uid)]
        (job.uid,) = entry.state.insert(
            [rest], max_tokens=[job.budget - job.completion_tokens],
            caches=[cache] if cache is not None else None, all_tokens=[before], samplers=[solo.sampler],
            logits_processors=[[]],
        )
        job.solo = None
        self._running[(job.spec.version, job.uid)] = job

    def _reap_cancelled(self) -> None:
        for job in [j for j in self._running.values() if j.cancelled.is_set()]:
            self._remove(job)
            self._finish(job, CANCELLED)

    def _step(self) -> None:
        for job in [j for j in self._running.values() if j.solo is not None]:
            token = job.solo.next()
            if self._failed_sampling(job):
                continue
            if token in job.entry.loaded.tokenizer.eos_token_ids:
                reason = STOP
            else:
                reason = LENGTH if job.completion_tokens + 1 >= job.budget else None
            self._on_token(job, token, reason, time.perf_counter())
        for entry in {id(j.entry): j.entry for j in self._running.values() if j.solo is None}.values():
            _, responses = entry.state.next()
            now = time.perf_counter()
            for job in [j for j in self._running.values() if j.entry is entry]:
                self._failed_sampling(job)  # before its token is used: it leaves the batch
            for response in responses:
                job = self._running.get((entry.spec.version, response.uid))
                if job is None:
                    continue
                if response.finish_reason is not None:
                    self._keep_prompt(entry, response.all_tokens, response.prompt_cache)
                self._on_token(job, response.token, response.finish_reason, now)

    def _failed_sampling(self, job: Job) -> bool:
        """Fail `job` alone if its sampler raised during the last step."""
        if job.guard is None or job.guard.error is None:
            return False
        error = job.guard.error
        log.error("sampling failed for a request on %s: %r", job.spec.version, error)
        self._finish_failed(job, HubError(f"sampling failed for this request ({error}); the other requests go on"))
        return True

    def _on_token(self, job: Job, token: int, finish_reason: str | None, now: float) -> None:
        version = job.spec.version
        if job.first_token == 0.0:
            job.first_token = now
            metrics.TTFT.labels(version).observe(now - job.received)
            self.stats.first_token(version, now - job.received)
        else:
            metrics.INTER_TOKEN.labels(version).observe(now - job.last_token)
            self.stats.token(version, now - job.last_token)
        job.last_token = now
        job.completion_tokens += 1
        is_eos = finish_reason == STOP and token in job.entry.loaded.tokenizer.eos_token_ids
        ids = [] if is_eos else [token]
        if not is_eos:
            job.detokenizer.add_token(token)
        if finish_reason is not None:
            job.detokenizer.finalize()
        job.text += job.detokenizer.last_segment
        stop_at = _find_stop(job.text, job.sampling.stop, job.emitted)
        if stop_at is not None:
            _put_chunk(job, job.text[job.emitted:stop_at], ids)
            if finish_reason is None:
                self._remove(job)
            self._finish(job, STOP)
            return
        end = len(job.text) if finish_reason is not None else len(job.text) - _held_back(job.text, job.sampling.stop)
        _put_chunk(job, job.text[job.emitted:end], ids)
        job.emitted = max(job.emitted, end)
        if finish_reason is not None:
            self._finish(job, finish_reason)

    def _remove(self, job: Job) -> None:
        """Take an unfinished request out of its batch, keeping what it computed for reuse."""
        if job.solo is not None:  # _finish keeps its cache
            return
        kept = job.entry.state.remove([job.uid], return_prompt_caches=job.entry.prompts is not None)
        if job.uid in kept:
            cache, tokens = kept[job.uid]
            self._keep_prompt(job.entry, tokens, cache)

    def _keep_prompt(self, entry: Entry, tokens: list[int] | None, cache: list | None) -> None:
        if entry.prompts is None or not tokens or not cache:
            return
        entry.prompts.insert_cache(entry.spec.version, list(tokens), cache)
        metrics.PROMPT_CACHE_BYTES.labels(entry.spec.version).set(entry.prompts.nbytes)

    def _finish(self, job: Job, reason: str) -> None:
        self._running.pop((job.spec.version, job.uid), None)
        if job.solo is not None:
            self._keep_prompt(job.entry, *job.solo.kept())
            job.solo = None
        job.entry.active -= 1
        job.entry.last_used = time.monotonic()
        end = job.last_token or time.perf_counter()
        decode = job.last_token - job.first_token
        rate = (job.completion_tokens - 1) / decode if job.completion_tokens > 1 and decode > 0 else 0.0
        ttft = (job.first_token - job.received) * 1000 if job.first_token else 0.0
        version = job.spec.version
        metrics.GENERATED_TOKENS.labels(version).inc(job.completion_tokens)
        metrics.REQUESTS.labels(version, reason).inc()
        metrics.E2E.labels(version).observe(end - job.received)
        self.stats.finished(version, rate)
        job.events.put(Done(reason, job.prompt_tokens, job.completion_tokens, ttft, rate, job.cached_tokens))

    def _finish_failed(self, job: Job, error: HubError) -> None:
        self._running.pop((job.spec.version, job.uid), None)
        if job.entry is not None:
            job.entry.active -= 1
            if job.solo is not None:
                job.solo = None
            elif job.entry.state is not None:
                job.entry.state.remove([job.uid])
        job.events.put(Failed(error))

    @staticmethod
    def _close_entry(entry: Entry) -> None:
        if entry.state is not None:
            entry.state.close()


def _detokenizer(tokenizer, continues_prompt: bool):
    """A fresh streaming detokenizer. mlx-lm's drop the first token's leading space, right for a
    chat reply; the completion of a raw prompt continues the prompt's text, so it keeps it
    ("is" + " Paris", as OpenAI's completions answer)."""
    detokenizer = tokenizer.detokenizer  # a reset copy
    if continues_prompt:
        if hasattr(detokenizer, "trim_space"):  # SentencePiece
            detokenizer.trim_space = False
        elif hasattr(detokenizer, "_maybe_trim_space"):  # byte-level BPE (SmolLM2, Llama 3, ...)
            detokenizer._maybe_trim_space = lambda text: text
    return detokenizer


def _put_chunk(job: Job, text: str, ids: list[int]) -> None:
    if not (text or ids):  # an end-of-sequence token alone carries nothing to send
        return
    if job.streaming:
        job.events.put(Chunk(text, ids))
    else:  # a unary caller needs the whole text once: waking its thread per token only costs the engine the GIL
        job.collected.append(text)


def _find_stop(text: str, stops: tuple[str, ...], emitted: int) -> int | None:
    """Index of the earliest stop string that ends after `emitted` (text before it is released)."""
    if not stops:
        return None
    start = max(0, emitted - max(len(s) for s in stops))
    found = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(found) if found else None


def _held_back(text: str, stops: tuple[str, ...]) -> int:
    """Length of the longest tail of `text` that could still grow into a stop string."""
    best = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:k]):
                best = k
                break
    return best

