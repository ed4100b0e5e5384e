"""Log-probabilities of the drawn tokens (`sampling.Recording`): a greedy request's are mlx-lm's own for the
same prompt, alone and in a batch; its top alternatives are sorted log-probabilities with the drawn token
first; and rows that do not ask still take the batch's lean step, which skips the log-softmax (real SmolLM2)."""

from __future__ import annotations

import mlx.core as mx
import pytest
from mlx_lm.generate import generate_step

from inference_svc.cache import ModelSpec
from inference_svc.decode import sampling
from inference_svc.decode.batching import can_skip_log_softmax
from inference_svc.decode.engine import Engine
from inference_svc.decode.generation import Chunk, Done, Request
from inference_svc.decode.sampling import Sampling
from inference_svc.loader import FLOAT32, load
from inference_svc.prompts import encode

GB = 1024**3
CHAT = [{"role": "user", "content": "What is the capital of France?"}]
OTHER = [{"role": "user", "content": "Name three colours."}]
TOKENS = 8


@pytest.fixture(scope="module")
def loaded(smollm2):
    return load(str(smollm2), "", FLOAT32)


@pytest.fixture(scope="module")
def engine(loaded):
    engine = Engine(lambda spec: loaded, 4 * GB, 60.0, max_running=4, max_queued=8,
                    tokenizer=lambda spec: loaded.tokenizer).start()
    yield engine
    engine.stop()


def mlx_lm_logprobs(loaded, chat) -> tuple[list[int], list[float]]:
    """mlx-lm's greedy tokens and their log-probabilities for `chat`."""
    prompt = encode(loaded.tokenizer, "smollm2/versions/1", chat, "")
    tokens, logprobs = [], []
    for token, probs in generate_step(mx.array(prompt), loaded.model, max_tokens=TOKENS):
        tokens.append(int(token))
        logprobs.append(probs[int(token)].item())
    return tokens, logprobs


def submit(engine, chat, top: int, streaming: bool = True):
    return engine.submit(Request(ModelSpec("smollm2/versions/1", "unused"), Sampling(max_tokens=TOKENS), chat,
                                 logprobs=top, streaming=streaming))


def records(generation) -> tuple[list[int], list[sampling.TokenLogprob]]:
    ids, logprobs = [], []
    while True:
        event = generation.events.get(timeout=120)
        if isinstance(event, Done):
            return (ids, logprobs) if generation.request.streaming else ([], generation.collected_logprobs)
        assert isinstance(event, Chunk), event
        ids += event.token_ids
        logprobs += event.logprobs
        assert len(event.logprobs) == len(event.token_ids)


def check(expected, got: list[sampling.TokenLogprob], top: int) -> None:
    tokens, logprobs = expected  # an end-of-sequence token ends the answer and carries no text: not sent
    assert [r.token for r in got] == tokens[:len(got)] and len(got) >= len(tokens) - 1
    for record, want in zip(got, logprobs, strict=False):
        assert abs(record.logprob - want) < 1e-4
        assert len(record.top) == top
        values = [lp for _, lp in record.top]
        assert all(v <= 0 for v in values) and values == sorted(values, reverse=True)
        if top:
            assert record.top[0][0] == record.token and abs(record.top[0][1] - record.logprob) < 1e-6


def test_greedy_logprobs_are_mlx_lm_s_alone_and_in_a_batch(engine, loaded):
    expected, other = mlx_lm_logprobs(loaded, CHAT), mlx_lm_logprobs(loaded, OTHER)
    _, alone = records(submit(engine, CHAT, 5))
    check(expected, alone, 5)
    first, second, third = submit(engine, CHAT, 20), submit(engine, OTHER, 0), submit(engine, CHAT, 3, streaming=False)
    check(expected, records(first)[1], 20)
    check(other, records(second)[1], 0)
    check(expected, records(third)[1], 3)


def test_rows_that_do_not_ask_keep_the_lean_step():
    plain, asking = sampling.make_sampler(Sampling()), sampling.Recording(sampling.greedy, 2)
    assert can_skip_log_softmax([plain, sampling.Guarded(asking)], [[], []])  # each row normalizes only itself
    logits = mx.array([[1.0, 3.0, 2.0, -1.0]])
    token = asking(logits)
    record = asking.take()
    assert token.item() == record.token == 1
    expected = (logits - mx.logsumexp(logits, axis=-1, keepdims=True))[0]
    assert record.top == ((1, pytest.approx(expected[1].item())), (2, pytest.approx(expected[2].item())))
    assert asking.take() is None
