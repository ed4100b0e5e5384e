"""Log-probabilities through the gateway's OpenAI routes, read by the official `openai` client: chat
(`logprobs`, `top_logprobs`) and completions (`logprobs`: the number of alternatives), whole and streamed,
in OpenAI's shapes; the same numbers either way; OpenAI's bounds refused by name (real SmolLM2)."""

from __future__ import annotations

import openai
import pytest
from inference_util import register

from gateway.server import running

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def client(inference, registry_stub, smollm2, settings):
    register(registry_stub, "smollm2", smollm2)
    with running(settings) as url:
        yield openai.OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0, timeout=300)


def test_chat_and_completions_answer_logprobs_in_openai_shape(client):
    whole = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=8, temperature=0,
                                           logprobs=True, top_logprobs=3)
    content = whole.choices[0].logprobs.content
    assert len(content) == whole.usage.completion_tokens or len(content) == whole.usage.completion_tokens - 1  # EOS
    assert "".join(c.token for c in content) == whole.choices[0].message.content
    for entry in content:
        alternatives = [t.logprob for t in entry.top_logprobs]
        assert len(alternatives) == 3 and all(v <= 0 for v in alternatives)
        assert alternatives == sorted(alternatives, reverse=True)
        assert entry.top_logprobs[0].token == entry.token  # greedy: the chosen token is the most likely
        assert bytes(entry.bytes).decode() == entry.token

    streamed = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=8, temperature=0,
                                              logprobs=True, top_logprobs=3, stream=True)
    pieces = [e for chunk in streamed if chunk.choices and chunk.choices[0].logprobs
              for e in chunk.choices[0].logprobs.content]
    assert [(e.token, round(e.logprob, 5)) for e in pieces] == [(e.token, round(e.logprob, 5)) for e in content]

    plain = client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=4, temperature=0)
    assert plain.choices[0].logprobs is None

    prompt = "The capital of France is"
    text = client.completions.create(model="smollm2", prompt=prompt, max_tokens=6, temperature=0, logprobs=2)
    logprobs = text.choices[0].logprobs
    assert "".join(logprobs.tokens) == text.choices[0].text and len(logprobs.token_logprobs) == 6
    assert logprobs.text_offset[0] == len(prompt) and all(len(top) == 2 for top in logprobs.top_logprobs)
    assert all(max(top.values()) == pytest.approx(lp) for top, lp in zip(logprobs.top_logprobs, logprobs.token_logprobs))
    streamed = client.completions.create(model="smollm2", prompt=prompt, max_tokens=6, temperature=0, logprobs=2,
                                         stream=True)
    tokens = [t for chunk in streamed if chunk.choices and chunk.choices[0].logprobs
              for t in chunk.choices[0].logprobs.tokens]
    assert tokens == logprobs.tokens


def test_openai_bounds_of_logprobs_are_refused_by_name(client):
    cases = [({"logprobs": True, "top_logprobs": 21}, "top_logprobs"), ({"top_logprobs": 2}, "top_logprobs"),
             ({"logprobs": "yes"}, "logprobs")]
    for arguments, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=2, **arguments)
        assert caught.value.body["param"] == param, (arguments, caught.value.body)
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="smollm2", prompt="hi", max_tokens=2, logprobs=21)
    assert caught.value.body["param"] == "logprobs" and "20" in caught.value.body["message"]
