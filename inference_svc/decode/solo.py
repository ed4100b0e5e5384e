"""One request decoding alone, on mlx-lm's plain `generate_step` instead of a batch.

With a single stream, mlx-lm's `BatchGenerator` still pays for batching: a left-padding
mask, per-sequence offsets and bookkeeping on every step (~12% of the decode speed of
SmolLM2 on a 2-core CPU). So the engine decodes a request that is alone on its version
here, and hands it over to the batch when a second request arrives: the batch takes its
KV cache, the tokens so far and its sampler, and continues exactly where it stopped
(greedy and seeded results do not change).
"""

from __future__ import annotations

from typing import Any

from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

from inference_svc.mlx_lm_compat import SAMPLES_AHEAD, cached_length, plain_steps


def can_go_alone(cache: list | None, processors: list) -> bool:
    """Logits processors would see only the uncached part of the prompt here; a cache that
    cannot be trimmed by one token cannot be handed over."""
    return not processors and can_trim_prompt_cache(cache or [])


class Solo:
    def __init__(self, model, rest: list[int], cache: list | None, before: list[int], sampler: Any,
                 max_tokens: int, prefill_step: int) -> None:
        self.rest, self.before, self.sampler = rest, before, sampler
        self.cache = cache if cache is not None else make_prompt_cache(model)
        self.generated: list[int] = []
        self._steps = plain_steps(rest, model, max_tokens=max_tokens, sampler=sampler, cache=self.cache,
                                  prefill_step=prefill_step)

    def next(self) -> int:
        token, _ = next(self._steps)
        self.generated.append(int(token))
        return self.generated[-1]

    def kept(self) -> tuple[list[int], list]:
        """The tokens whose keys and values the cache holds, and the cache (for the prompt cache)."""
        tokens = [*self.before, *self.rest, *self.generated]
        return tokens[:cached_length(self.cache)], self.cache

    def handover(self) -> tuple[list[int], list | None, list[int]]:
        """(tokens to compute, cache, tokens already in it) for the batch to go on from."""
        self._steps.close()
        if not self.generated:  # nothing computed yet
            return self.rest, (self.cache if cached_length(self.cache) else None), self.before
        # the plain loop has already fed the last token and drawn a sample ahead: take both back,
        # so the batch recomputes that step and draws the sample this loop would have drawn.
        trim_prompt_cache(self.cache, SAMPLES_AHEAD)
        rewind = getattr(self.sampler, "rewind", None)
        if rewind is not None:
            rewind()
        return [self.generated[-1]], self.cache, [*self.before, *self.rest, *self.generated[:-1]]
