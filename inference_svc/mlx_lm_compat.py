"""Everything the inference service relies on in mlx-lm beyond its documented API, in one place.

mlx-lm is pinned (`MLX_LM_REQUIREMENT`, the same range as pyproject.toml) because these reach
past its public functions: a step of the batch generator that skips the log-softmax, batches
that name their rows before each model call (for per-row LoRA adapters, `inference_svc.lora`), the
number of samples `generate_step` draws ahead, the KV-cache offset, and the byte-level
detokenizer's leading-space trim. tests/test_mlx_lm_compat.py checks that each internal used
here still exists in the shape used here, so an mlx-lm upgrade that changes one fails there,
naming it, instead of as wrong tokens while serving. Code elsewhere uses the names below and
never an underscore name of mlx-lm."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import mlx.core as mx
from mlx_lm.generate import BatchGenerator, GenerationBatch, PromptProcessingBatch, generate_step

MLX_LM_REQUIREMENT = "mlx-lm>=0.32.2,<0.33"

# generate_step has fed the last token it yielded to the model and drawn the next sample before
# it yields: a caller that stops it and goes on elsewhere takes back this many steps.
SAMPLES_AHEAD = 1

# `skip(samplers, logits_processors)`: whether a step may hand the samplers raw logits.
SkipLogSoftmax = Callable[[list, list], bool]


def route_rows(batch) -> None:
    """Tell a model that serves rows on different adapters (`inference_svc.lora.RoutedModel`) whose rows
    its next call runs: the batch's sequence ids, in row order."""
    route = getattr(batch.model, "route_rows", None)
    if route is not None:
        route(batch.uids)


class RoutedPromptBatch(PromptProcessingBatch):
    """mlx-lm's `PromptProcessingBatch` that names its rows (`route_rows`) before it runs the model."""

    def prompt(self, tokens):
        route_rows(self)
        return super().prompt(tokens)

    def generate(self, tokens):
        route_rows(self)  # also the rows of the first step of the GenerationBatch it makes
        return super().generate(tokens)


class LeanGenerationBatch(GenerationBatch):
    """mlx-lm's `GenerationBatch` whose step hands the samplers raw logits (no log-softmax) when
    `skip_log_softmax` allows it; mlx-lm's own step otherwise."""

    skip_log_softmax: SkipLogSoftmax = staticmethod(lambda samplers, processors: False)

    def _step(self):
        route_rows(self)
        samplers = [self.fallback_sampler if s is None else s for s in (self.samplers or [None] * len(self.uids))]
        if not self.skip_log_softmax(samplers, self.logits_processors or []):
            return super()._step()
        # mlx-lm 0.32's GenerationBatch._step without the normalization (and so without processors).
        self._current_tokens, self._current_logprobs = self._next_tokens, self._next_logprobs
        inputs = self._current_tokens
        logits = self.model(inputs[:, None], cache=self.prompt_cache)[:, -1, :]
        if all(s is samplers[0] for s in samplers):
            sampled = samplers[0](logits)
        else:
            sampled = mx.concatenate([s(logits[e:e + 1]) for e, s in enumerate(samplers)], axis=0)
        self._next_tokens, self._next_logprobs = sampled, [None] * len(self.uids)
        mx.async_eval(self._next_tokens)  # the next step computes while this one's tokens are read
        mx.eval(inputs)
        inputs = inputs.tolist()
        for sequence, token in zip(self.tokens, inputs):
            sequence.append(token)
        return inputs, self._current_logprobs


class LeanBatchGenerator(BatchGenerator):
    """mlx-lm's `BatchGenerator` with a `LeanGenerationBatch` decoding its running sequences. New
    sequences arrive as mlx-lm's own batches (their first step is theirs) and are merged into
    this one, which does every step after it."""

    def __init__(self, model, skip_log_softmax: SkipLogSoftmax, **options) -> None:
        super().__init__(model, **options)
        batch = LeanGenerationBatch.empty(self.model, self.sampler)
        batch.skip_log_softmax = skip_log_softmax
        self._generation_batch = batch
        self._prompt_batch = RoutedPromptBatch.empty(self.model, self.sampler, prefill_step_size=self.prefill_step_size)


def plain_steps(prompt: list[int], model, *, max_tokens: int, sampler: Any, cache: list,
                prefill_step: int) -> Iterator[tuple[mx.array, Any]]:
    """mlx-lm's single-sequence decode loop (`generate_step`), `SAMPLES_AHEAD` samples ahead."""
    return generate_step(mx.array(prompt), model, max_tokens=max_tokens, sampler=sampler, prompt_cache=cache,
                         prefill_step_size=prefill_step)


def cached_length(cache: list) -> int:
    """How many tokens' keys and values a model's KV cache (one entry per layer) holds."""
    return cache[0].offset


def keep_leading_space(detokenizer) -> None:
    """Stop a streaming detokenizer from dropping its first token's leading space (mlx-lm drops
    it, right for a chat reply; a raw prompt's completion continues the prompt's text)."""
    if hasattr(detokenizer, "trim_space"):  # SentencePiece: a public switch
        detokenizer.trim_space = False
    elif hasattr(detokenizer, "_maybe_trim_space"):  # byte-level BPE (SmolLM2, Llama 3, ...): an internal
        detokenizer._maybe_trim_space = lambda text: text
