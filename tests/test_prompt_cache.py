"""The prompt cache: a request that shares a prefix with an earlier one (the same question
again, the next turn of a conversation) reuses that prefix's KV state, says how many
prompt tokens it reused, and answers exactly what a from-scratch computation answers.
With MLXHUB_INFERENCE_PROMPT_CACHE_GB=0 nothing is reused."""

from __future__ import annotations

import pytest
from inference_util import register

from inference_svc import metrics
from inference_svc.server import InferenceOptions
from mlxhub.v1 import inference_pb2 as pb

QUESTION = "What is the capital of France?"


@pytest.fixture(params=[1.0, 0.0], ids=["cache-on", "cache-off"])
def inference_options(request):
    return InferenceOptions(memory_gb=4.0, keep_alive_s=60.0, max_running=4, max_queued=8, weights="float32",
                            prompt_cache_gb=request.param)


def ask(stub, *turns: str, max_tokens: int = 12) -> pb.GenerateResponse:
    roles = ("user", "assistant")
    messages = [pb.ChatMessage(role=roles[i % 2], content=text) for i, text in enumerate(turns)]
    return stub.Generate(pb.GenerateRequest(model="smollm2", messages=messages,
                                            sampling=pb.SamplingParams(max_tokens=max_tokens)))


def from_scratch(model_dir, *turns: str, max_tokens: int = 12) -> str:
    """Greedy mlx-lm generation on a fresh KV cache: what the service must answer."""
    from mlx_lm import generate

    from inference_svc.loader import FLOAT32, load

    loaded = load(str(model_dir), "", FLOAT32)
    roles = ("user", "assistant")
    prompt = loaded.tokenizer.apply_chat_template([{"role": roles[i % 2], "content": t} for i, t in enumerate(turns)],
                                                  add_generation_prompt=True)
    return generate(loaded.model, loaded.tokenizer, prompt, max_tokens=max_tokens)


def test_a_shared_prefix_is_reused_and_answers_the_same(inference_stub, registry_stub, smollm2, inference_options):
    register(registry_stub, "smollm2", smollm2)
    on = inference_options.prompt_cache_gb > 0
    reused = metrics.CACHED_PROMPT_TOKENS.labels("smollm2/versions/1")
    before = reused._value.get()

    first = ask(inference_stub, QUESTION)
    assert "Paris" in first.text and first.usage.cached_prompt_tokens == 0  # nothing cached yet

    again = ask(inference_stub, QUESTION)
    assert again.text == first.text
    assert again.usage.cached_prompt_tokens == (first.usage.prompt_tokens - 1 if on else 0)

    turns = (QUESTION, first.text, "And what is the capital of Italy?")
    follow_up = ask(inference_stub, *turns)
    if on:  # the first turn's prompt and answer were computed already
        assert first.usage.prompt_tokens <= follow_up.usage.cached_prompt_tokens < follow_up.usage.prompt_tokens
    else:
        assert follow_up.usage.cached_prompt_tokens == 0
    assert follow_up.text == from_scratch(smollm2, *turns)
    assert reused._value.get() - before == again.usage.cached_prompt_tokens + follow_up.usage.cached_prompt_tokens



def test_a_prompt_that_continues_an_answer_reuses_all_but_its_last_token(inference_stub, registry_stub, smollm2,
                                                                         inference_options):
    """A raw prompt's completion continues its text, leading space and all; a prompt that is an
    earlier prompt plus its completion (a client asking to go on) finds that whole sequence
    cached, and only its last token is computed again, for the first logits."""
    from mlx_lm import stream_generate

    from inference_svc.loader import FLOAT32, load

    register(registry_stub, "smollm2", smollm2)
    opening = "The capital of France is"
    first = inference_stub.Generate(pb.GenerateRequest(model="smollm2", prompt=opening,
                                                       sampling=pb.SamplingParams(max_tokens=8)))
    assert first.text.startswith(" Paris")  # not "isParis"
    going_on = inference_stub.Generate(pb.GenerateRequest(model="smollm2", prompt=opening + first.text,
                                                          sampling=pb.SamplingParams(max_tokens=8)))
    on = inference_options.prompt_cache_gb > 0
    assert going_on.usage.prompt_tokens == first.usage.prompt_tokens + 8
    assert going_on.usage.cached_prompt_tokens == (going_on.usage.prompt_tokens - 1 if on else 0)
    loaded = load(str(smollm2), "", FLOAT32)
    tokens = [r.token for r in stream_generate(loaded.model, loaded.tokenizer, opening + first.text, max_tokens=8)]
    assert going_on.text == loaded.tokenizer.decode(tokens)
