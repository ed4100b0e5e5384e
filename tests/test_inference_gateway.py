"""Generation through the gateway: the generic JSON routes from the proto annotations
(unary, NDJSON, SSE) and the OpenAI-compatible API, driven by the official `openai` client."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from inference_util import register

from gateway.server import running

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def base_url(inference, registry_stub, smollm2, tiny_model, settings):
    register(registry_stub, "smollm2", smollm2, alias="default")
    register(registry_stub, "tiny", tiny_model)
    with running(settings) as url:
        yield url


def test_generic_routes_unary_ndjson_and_sse(base_url):
    with httpx.Client(base_url=base_url, timeout=120) as http:
        body = {"model": "smollm2@default", "messages": QUESTION, "sampling": {"maxTokens": 12}}
        unary = http.post("/v1/generate", json=body)
        assert unary.status_code == 200 and "Paris" in unary.json()["text"]
        assert unary.json()["modelVersion"] == "smollm2/versions/1"

        lines = [json.loads(line) for line in http.post("/v1/generate:stream", json=body).text.splitlines()]
        assert "Paris" in "".join(line["result"].get("text", "") for line in lines)
        assert lines[-1]["result"]["finishReason"] in ("FINISH_REASON_STOP", "FINISH_REASON_LENGTH")
        assert lines[-1]["result"]["usage"]["completionTokens"] > 0

        sse = http.post("/v1/generate:stream", json={"model": "tiny", "prompt": "hi", "sampling": {"maxTokens": 5}},
                        headers={"Accept": "text/event-stream"})
        assert sse.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(chunk.removeprefix("data: ")) for chunk in sse.text.split("\n\n") if chunk]
        assert events[-1]["usage"]["completionTokens"] == 5 and events[-1]["modelVersion"] == "tiny/versions/1"

        missing = http.post("/v1/generate", json={"model": "nobody", "prompt": "hi"})
        assert missing.status_code == 404 and missing.json()["code"] == 5
        bad = http.post("/v1/generate", json={"model": "tiny", "prompt": "hi", "sampling": {"topP": 2}})
        assert bad.status_code == 400 and bad.json()["details"][0]["fieldViolations"][0]["field"] == "sampling.top_p"


def test_openai_client_chat_completions_stream_and_not(base_url):
    client = openai.OpenAI(base_url=f"{base_url}/openai/v1", api_key="unused", max_retries=0)
    answer = client.chat.completions.create(model="smollm2@default", messages=QUESTION, temperature=0, max_tokens=12)
    assert "Paris" in answer.choices[0].message.content and answer.model == "smollm2/versions/1"
    assert answer.usage.completion_tokens > 0 and answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage.prompt_tokens_details.cached_tokens == 0  # nothing to reuse yet

    chunks = list(client.chat.completions.create(model="smollm2", messages=QUESTION, temperature=0, max_tokens=12,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "Paris" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens > 0
    usage = chunks[-1].usage  # the same prompt again: all but its last token come from the prompt cache
    assert usage.prompt_tokens_details.cached_tokens == usage.prompt_tokens - 1

    text = client.completions.create(model="tiny", prompt="hello", max_tokens=4, temperature=0)
    assert text.usage.completion_tokens == 4 and text.choices[0].finish_reason == "length"

    ids = [m.id for m in client.models.list()]
    assert {"smollm2", "smollm2@default", "tiny"} <= set(ids)


def test_openai_errors_have_openai_shape(base_url):
    client = openai.OpenAI(base_url=f"{base_url}/openai/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nobody", messages=QUESTION)
    assert caught.value.body["type"] == "not_found_error"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="tiny", messages=QUESTION, temperature=-1)
    assert caught.value.body["param"] == "temperature"
