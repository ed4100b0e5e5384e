"""Batches decode without normalizing the logits when every sampler takes raw logits
(`inference_svc.decode.batching`): the same tokens as mlx-lm's own `BatchGenerator`, greedy and
seeded (real SmolLM2), and mlx-lm's step wherever a sampler or a processor needs it."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx_lm.generate import BatchGenerator
from mlx_lm.sample_utils import greedy_sampler

from inference_svc.decode import sampling
from inference_svc.decode.batching import Batches
from inference_svc.decode.sampling import Sampling
from inference_svc.loader import FLOAT32, load

CHATS = ["Name three colours.", "What is a bicycle?", "Count from one to five.", "Say hello in French."]
STEPS = 12


@pytest.fixture(scope="module")
def loaded(smollm2):
    return load(str(smollm2), "", FLOAT32)


def decode(loaded, generator, samplers, processors=None):
    """{uid: tokens} and the logprobs the responses carried, for CHATS decoded together."""
    tokenizer = loaded.tokenizer
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": c}], add_generation_prompt=True) for c in CHATS]
    batch = generator(loaded.model, stop_tokens=[], completion_batch_size=4, prefill_batch_size=4)
    batch.insert(prompts, max_tokens=[STEPS] * len(prompts), samplers=samplers, logits_processors=processors)
    tokens, logprobs = {}, []
    while sum(map(len, tokens.values())) < STEPS * len(prompts):
        for response in batch.next()[1]:
            tokens.setdefault(response.uid, []).append(response.token)
            logprobs.append(response.logprobs)
    batch.close()
    return tokens, logprobs


@pytest.mark.parametrize("settings", [Sampling(), Sampling(temperature=0.8, top_p=0.9, top_k=40, seed=5)],
                         ids=["greedy", "seeded"])
def test_lean_steps_give_mlx_lm_tokens(loaded, settings):
    expected, normalized = decode(loaded, BatchGenerator, [sampling.make_sampler(settings) for _ in CHATS])
    tokens, carried = decode(loaded, Batches, [sampling.make_sampler(settings) for _ in CHATS])
    assert tokens == expected
    assert all(lp is not None for lp in normalized)
    lean = carried[len(CHATS):]  # the first step is mlx-lm's (new sequences arrive as its batches)
    assert lean and all(lp is None for lp in lean)


def test_other_samplers_and_processors_get_mlx_lm_steps(loaded):
    for samplers, processors in (([greedy_sampler] * len(CHATS), None),
                                 ([sampling.greedy] * len(CHATS), [sampling.make_processors(Sampling(repetition_penalty=1.3))] * len(CHATS))):
        expected, _ = decode(loaded, BatchGenerator, samplers, processors)
        tokens, carried = decode(loaded, Batches, samplers, processors)
        assert tokens == expected
        assert all(lp is not None and abs(mx.logsumexp(lp).item()) < 1e-3 for lp in carried)  # normalized


@pytest.mark.parametrize("settings", [Sampling(), Sampling(temperature=1.0, seed=3), Sampling(temperature=0.7, top_p=0.8, seed=3),
                                      Sampling(temperature=0.7, min_p=0.1, seed=3), Sampling(temperature=0.7, top_k=5, seed=3)],
                         ids=["greedy", "plain", "top_p", "min_p", "top_k"])
def test_samplers_draw_the_same_from_logits_and_log_probabilities(settings):
    on_logits, on_logprobs = sampling.make_sampler(settings), sampling.make_sampler(settings)
    assert on_logits.takes_logits
    for step in range(20):
        logits = 4 * mx.random.normal((1, 500), key=mx.random.key(step)) + 100  # exp overflows unshifted
        logprobs = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        assert on_logits(logits).item() == on_logprobs(logprobs).item(), step
