"""What a caller hands the engine and what it gets back.

A `Request` is what was asked, fixed once submitted (the engine fills in its prompt's token
ids as it accepts it). A `Generation` is one request on its way through the engine: the
caller reads its `events` (`Chunk`s, then one `Done` or `Failed`) and may `cancel()` it; every
other field is the engine thread's decode state, read by no one else."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference_svc.cache import Entry, ModelSpec
from inference_svc.decode import sampling
from inference_svc.decode.solo import Solo
from inference_svc.tool_calls import ToolUse
from mlxhub.errors import HubError

STOP, LENGTH, CANCELLED = "stop", "length", "cancelled"


@dataclass(frozen=True)
class Request:
    """One generation request, as asked: the version, how to sample, and the prompt (chat
    `messages`, or a raw `prompt` whose completion continues its text)."""

    spec: ModelSpec
    sampling: sampling.Sampling
    messages: Sequence[Mapping[str, str]] | None = None
    prompt: str = ""
    sampler: Any = None  # a sampler of the caller's own; None: one made from `sampling`
    streaming: bool = True  # False: text collects in `Generation.collected`; only Done/Failed wake the caller
    tokens: tuple[int, ...] = ()  # the prompt's token ids, filled in by `Engine.submit`
    tools: ToolUse | None = None  # the chat's tools, rendered by its template; None: no tool calls
    logprobs: int | None = None  # None: none; n: each token's log-probability and its n most likely alternatives
    constraint: Any = None  # a `constraints.Constraint`: the output must match its format
    keep_alive_s: float | None = None  # how long its version stays loaded after it (None: the default; <0: pinned)


@dataclass
class Chunk:
    text: str
    token_ids: list[int]
    logprobs: list[sampling.TokenLogprob] | None = None  # one per token id, when the request asked


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


@dataclass(eq=False)
class Generation:
    """A request from submission to its Done/Failed event. The caller's side: `events`,
    `collected` and `cancel()`; the rest belongs to the engine thread."""

    request: Request
    events: queue.Queue = field(default_factory=queue.Queue)
    collected: list[str] = field(default_factory=list)  # the text of a non-streaming request
    cancelled: threading.Event = field(default_factory=threading.Event)
    received: float = field(default_factory=time.perf_counter)
    # Where it decodes.
    entry: Entry | None = None
    uid: int = -1  # in the version's BatchGenerator; negative while decoding alone (`solo`)
    solo: Solo | None = None
    guard: sampling.Guarded | None = None  # its sampler, when it is one that can fail
    recorder: sampling.Recording | None = None  # its sampler, when it asked for log-probabilities
    collected_logprobs: list[sampling.TokenLogprob] = field(default_factory=list)  # a non-streaming request's
    budget: int = 0  # tokens it may generate
    # What it has produced.
    detokenizer: Any = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    text: str = ""
    emitted: int = 0  # characters of `text` sent (the rest may still be part of a stop string)
    first_token: float = 0.0
    last_token: float = 0.0

    @property
    def spec(self) -> ModelSpec:
        return self.request.spec

    def cancel(self) -> None:
        self.cancelled.set()

    def put_text(self, text: str, ids: list[int]) -> None:
        """Hand the caller new text and the token ids it came from (with their log-probabilities, if asked)."""
        if not (text or ids):  # an end-of-sequence token alone carries nothing to send
            return
        logprobs = [self.recorder.take() for _ in ids] if self.recorder is not None else None
        if self.request.streaming:
            self.events.put(Chunk(text, ids, logprobs))
        else:  # a unary caller needs the whole text once: waking its thread per token only costs the engine the GIL
            self.collected.append(text)
            self.collected_logprobs.extend(logprobs or ())
