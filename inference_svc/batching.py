"""Continuous batching on mlx-lm's `BatchGenerator`, without the per-step log-softmax.

Before sampling, mlx-lm turns every step's logits into log-probabilities (`logits -
logsumexp(logits)`). On the CPU that is an exp over the whole vocabulary for every
sequence, and MLX's CPU exp is scalar: with SmolLM2's 49k tokens, ~14 ms of a ~150 ms
step at 8 streams, ~2 ms a sequence. Our samplers (`inference_svc.sampling`, marked
`takes_logits`) draw the same tokens from raw logits (argmax, top-k, min-p, top-p and the
categorical draw do not change when all logits shift by one constant), and the engine
reads no log-probabilities. So a batch whose samplers are all ours skips the step, and
its responses carry `logprobs=None`. Any other sampler, or a logits processor, gets
mlx-lm's own step.
"""

from __future__ import annotations

import mlx.core as mx
from mlx_lm.generate import BatchGenerator, GenerationBatch


def takes_logits(sampler) -> bool:
    return getattr(sampler, "takes_logits", False)


class Batches(BatchGenerator):
    """mlx-lm's `BatchGenerator` with `LeanGenerationBatch` decoding its running sequences."""

    def __init__(self, model, **options) -> None:
        super().__init__(model, **options)
        # New sequences arrive as mlx-lm's own batches (their first step is theirs) and are
        # merged into this one, which does every step after it.
        self._generation_batch = LeanGenerationBatch.empty(self.model, self.sampler)


class LeanGenerationBatch(GenerationBatch):
    def _step(self):
        samplers = [self.fallback_sampler if s is None else s for s in (self.samplers or [None] * len(self.uids))]
        if any(self.logits_processors) or not all(takes_logits(s) for s in samplers):
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
