"""Sampling parameters: validated with errors that name the field (first on their own, then
against the loaded model), then turned into mlx-lm samplers and logits processors (one per
request, so a batch can mix them). In a batch every request's sampler runs in one step, so
an error in one must not end the step for all: `Guarded` keeps it to its own request."""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

from mlxhub import bounds
from mlxhub.errors import InvalidArgument
from mlxhub.v1 import inference_pb2

DEFAULT_MAX_TOKENS = 512
# Declared in inference.proto (`(mlxhub.v1.bounds)` on SamplingParams.stop).
_STOP_BOUNDS = bounds.of(inference_pb2.SamplingParams, "stop")
MAX_STOP_STRINGS = _STOP_BOUNDS.max_items
MAX_STOP_LENGTH = _STOP_BOUNDS.items.max_length


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    max_tokens: int = 0  # 0: up to DEFAULT_MAX_TOKENS, within the context
    stop: tuple[str, ...] = field(default_factory=tuple)


def _check(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise InvalidArgument(message, field=f"sampling.{name}")


def from_proto(params, present: bool = True) -> Sampling:
    """Validate a `SamplingParams`; unset (0) top_p and repetition_penalty mean 'off'."""
    if not present:
        return Sampling()
    values = {"temperature": params.temperature, "top_p": params.top_p, "min_p": params.min_p,
              "repetition_penalty": params.repetition_penalty}
    for name, value in values.items():
        _check(math.isfinite(value), name, f"sampling.{name} must be a finite number, got {value}")
    _check(params.temperature >= 0, "temperature", f"sampling.temperature must be >= 0 (0 is greedy), got {params.temperature}")
    _check(0 <= params.top_p <= 1, "top_p", f"sampling.top_p must be in (0, 1] (0 or unset: off), got {params.top_p}")
    _check(params.top_k >= 0, "top_k", f"sampling.top_k must be >= 0 (0: off), got {params.top_k}")
    _check(0 <= params.min_p < 1, "min_p", f"sampling.min_p must be in [0, 1), got {params.min_p}")
    _check(params.repetition_penalty >= 0, "repetition_penalty",
           f"sampling.repetition_penalty must be > 0 (1 or unset: off), got {params.repetition_penalty}")
    _check(params.max_tokens >= 0, "max_tokens", f"sampling.max_tokens must be >= 1 (0 or unset: default), got {params.max_tokens}")
    stops = tuple(params.stop)
    _check(len(stops) <= MAX_STOP_STRINGS, "stop", f"sampling.stop takes at most {MAX_STOP_STRINGS} strings, got {len(stops)}")
    for stop in stops:
        _check(0 < len(stop) <= MAX_STOP_LENGTH, "stop", f"sampling.stop strings must be 1-{MAX_STOP_LENGTH} characters, got {stop!r}")
    return Sampling(
        temperature=params.temperature,
        top_p=params.top_p or 1.0,
        top_k=params.top_k,
        min_p=params.min_p,
        repetition_penalty=params.repetition_penalty or 1.0,
        seed=params.seed if params.has_seed else None,
        max_tokens=params.max_tokens,
        stop=stops,
    )


def completion_budget(sampling: Sampling, prompt_tokens: int, context: int) -> int:
    """How many tokens the request may generate, or InvalidArgument when it cannot fit the context."""
    room = context - prompt_tokens
    if room < 1:
        raise InvalidArgument(f"the prompt has {prompt_tokens} tokens; the model's context is {context}", field="prompt")
    if sampling.max_tokens > context:
        raise InvalidArgument(f"sampling.max_tokens must be at most the model's context ({context}), got {sampling.max_tokens}",
                              field="sampling.max_tokens")
    return min(sampling.max_tokens or DEFAULT_MAX_TOKENS, room)


def check_for_model(sampling: Sampling, vocab_size: int) -> None:
    """InvalidArgument for parameters the loaded model cannot honour (checked before the request joins a batch)."""
    if vocab_size > 0:
        _check(sampling.top_k < vocab_size, "top_k",
               f"sampling.top_k must be less than the model's vocabulary of {vocab_size} tokens (0: off), "
               f"got {sampling.top_k}")


class Guarded:
    """A request's sampler that cannot fail its batch: an error is kept in `error` (the engine
    then fails that request alone) and the step goes on with the most likely token, which
    is never used."""

    def __init__(self, sampler) -> None:
        self.sampler, self.error = sampler, None
        self.takes_logits = getattr(sampler, "takes_logits", False)

    def __call__(self, logits):
        import mlx.core as mx

        try:
            return self.sampler(logits)
        except Exception as error:  # noqa: BLE001  (any error of this request's sampler is its own)
            self.error = self.error or error
            return mx.argmax(logits, axis=-1)

    def rewind(self) -> None:
        rewind = getattr(self.sampler, "rewind", None)
        if rewind is not None:
            rewind()


def greedy(logits):
    """Temperature 0: the most likely token."""
    import mlx.core as mx

    return mx.argmax(logits, axis=-1)


def make_sampler(sampling: Sampling):
    """A per-request sampler; with a seed it draws from its own key, so results do not depend on the batch.

    It takes raw logits as well as log-probabilities (`takes_logits`: the same tokens either
    way, so a batch can skip normalizing; `inference_svc.decode.batching`)."""
    import mlx.core as mx
    from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p

    if sampling.temperature == 0:
        return greedy
    # MLX keys take an unsigned 64-bit seed; a negative int64 seed (OpenAI's clients send them) wraps around
    key = [mx.random.key(sampling.seed % 2**64)] if sampling.seed is not None else None
    previous = [None]

    def sample(logits):
        if 0 < sampling.top_p < 1:  # exponentiates: shift the largest logit to 0 first
            logits = apply_top_p(logits - mx.max(logits, axis=-1, keepdims=True), sampling.top_p)
        if sampling.min_p > 0:
            logits = apply_min_p(logits, sampling.min_p)
        if sampling.top_k > 0:
            logits = apply_top_k(logits, sampling.top_k)
        scaled = logits * (1.0 / sampling.temperature)
        if key is None:
            return mx.random.categorical(scaled)
        previous[0] = key[0]
        key[0], now = mx.random.split(key[0])
        return mx.random.categorical(scaled, key=now)

    def rewind() -> None:
        """Undo the last draw's key split (a request moving into a batch recomputes that step)."""
        if key is not None and previous[0] is not None:
            key[0], previous[0] = previous[0], None

    sample.rewind = rewind
    sample.takes_logits = True
    return sample


greedy.takes_logits = True


def make_processors(sampling: Sampling) -> list:
    from mlx_lm.sample_utils import make_logits_processors

    if sampling.repetition_penalty == 1.0:
        return []
    return make_logits_processors(repetition_penalty=sampling.repetition_penalty)


MAX_TOP_LOGPROBS = 20  # OpenAI's bound on top_logprobs


@dataclass(frozen=True)
class TokenLogprob:
    """A drawn token's log-probability under the model, and the `top` most likely tokens at its step
    (most likely first)."""

    token: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


class Recording:
    """A row's sampler that also keeps the log-probability of each token it draws (and of the `top`
    most likely tokens), from the logits it is handed: only the rows that ask pay for a log-softmax,
    so a batch's lean step still skips it for the others (`inference_svc.decode.batching`).

    Records are read in draw order (`take`); a draw taken back (`rewind`) drops its record."""

    def __init__(self, sampler, top: int = 0) -> None:
        self.sampler, self.top = sampler, top
        self.takes_logits = getattr(sampler, "takes_logits", False)  # the log-softmax of logprobs is themselves
        self._records: collections.deque = collections.deque()

    def __call__(self, logits):
        import mlx.core as mx

        row = logits.astype(mx.float32)
        logprobs = row - mx.logsumexp(row, axis=-1, keepdims=True)
        token = self.sampler(logits)
        chosen = mx.take_along_axis(logprobs, token.reshape(-1, 1).astype(mx.int32), axis=-1)
        record = [token, chosen]
        if self.top > 0:
            ids = mx.argpartition(-logprobs, kth=self.top - 1, axis=-1)[:, :self.top]
            record += [ids, mx.take_along_axis(logprobs, ids, axis=-1)]
        mx.async_eval(*record)
        self._records.append(record)
        return token

    def rewind(self) -> None:
        if self._records:
            self._records.pop()
        rewind = getattr(self.sampler, "rewind", None)
        if rewind is not None:
            rewind()

    def take(self) -> TokenLogprob | None:
        """The oldest record not yet read (None if none is left)."""
        if not self._records:
            return None
        token, chosen, *top = self._records.popleft()
        alternatives = ()
        if top:
            pairs = zip(top[0].reshape(-1).tolist(), top[1].reshape(-1).tolist(), strict=True)
            alternatives = tuple(sorted(pairs, key=lambda pair: -pair[1]))
        return TokenLogprob(int(token.reshape(-1)[0].item()), float(chosen.reshape(-1)[0].item()), alternatives)
