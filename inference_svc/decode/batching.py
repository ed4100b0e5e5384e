"""Continuous batching on mlx-lm's `BatchGenerator`, without the per-step log-softmax.

Before sampling, mlx-lm turns every step's logits into log-probabilities (`logits -
logsumexp(logits)`). On the CPU that is an exp over the whole vocabulary for every
sequence, and MLX's CPU exp is scalar: with SmolLM2's 49k tokens, ~14 ms of a ~150 ms
step at 8 streams, ~2 ms a sequence. Our samplers (`inference_svc.decode.sampling`, marked
`takes_logits`) draw the same tokens from raw logits (argmax, top-k, min-p, top-p and the
categorical draw do not change when all logits shift by one constant), and the engine
reads no log-probabilities. So a batch whose samplers are all ours skips the step, and
its responses carry `logprobs=None`. Any other sampler, or a logits processor, gets
mlx-lm's own step. The step itself reaches into mlx-lm: `inference_svc.mlx_lm_compat`.
"""

from __future__ import annotations

from inference_svc.mlx_lm_compat import LeanBatchGenerator


def takes_logits(sampler) -> bool:
    return getattr(sampler, "takes_logits", False)


def can_skip_log_softmax(samplers: list, logits_processors: list) -> bool:
    """True when every sampler draws the same from raw logits and no row has a logits processor."""
    return not any(logits_processors) and all(takes_logits(s) for s in samplers)


class Batches(LeanBatchGenerator):
    """mlx-lm's `BatchGenerator`, skipping the log-softmax whenever `can_skip_log_softmax`."""

    def __init__(self, model, **options) -> None:
        super().__init__(model, can_skip_log_softmax, **options)
