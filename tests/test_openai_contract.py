"""The /openai/v1 routes keep OpenAI's contract, as the official `openai` client sees it,
against the REAL registry and inference services: errors in OpenAI's shape (404 and 405
included) naming the request's own fields, models.retrieve, OpenAI's bounds, and the
fields the hub does not implement yet refused by name instead of silently ignored."""

from __future__ import annotations

import httpx
import openai
import pytest
from inference_util import register

from gateway.server import running

HELLO = [{"role": "user", "content": "hi"}]


def openai_client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0)


def assert_openai_error(response: httpx.Response, status: int, kind: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    assert error["type"] == kind, error
    return error


@pytest.fixture
def registry_url(registry, settings):
    with running(settings) as url:
        yield url


@pytest.fixture
def tiny_url(inference, registry_stub, tiny_model, settings):
    register(registry_stub, "tiny", tiny_model, alias="prod")
    with running(settings) as url:
        yield url


def test_unknown_routes_and_wrong_methods_answer_in_openai_shape(registry_url):
    client = openai_client(registry_url)
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="tiny", input="hi")  # a route the hub does not have
    assert caught.value.body["type"] == "not_found_error" and "/openai/v1/embeddings" in caught.value.body["message"]

    with httpx.Client(base_url=registry_url) as http:
        wrong = http.delete("/openai/v1/models")
        error = assert_openai_error(wrong, 405, "invalid_request_error")
        assert "DELETE" in error["message"] and "GET" in error["message"]
        assert "GET" in wrong.headers["allow"]
        assert_openai_error(http.get("/openai/v1/chat/completions"), 405, "invalid_request_error")
        assert_openai_error(http.get("/openai/v1"), 404, "not_found_error")


def test_models_retrieve_by_every_id_that_models_list_or_answers_give(tiny_url):
    client = openai_client(tiny_url)
    listed = {m.id for m in client.models.list()}
    assert {"tiny", "tiny@prod"} <= listed
    for ident in [*listed, "tiny/versions/1"]:
        model = client.models.retrieve(ident)
        assert (model.id, model.object, model.owned_by) == (ident, "model", "anonymous")
        assert model.created > 0
    for missing in ["nobody", "tiny@staging", "tiny/versions/9", "Not A Name"]:
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve(missing)
        assert caught.value.body["type"] == "not_found_error", missing


def test_errors_name_the_request_field_not_the_proto_path(tiny_url):
    client = openai_client(tiny_url)
    cases = [
        ({"temperature": 3}, "temperature"),  # OpenAI's range is [0, 2]
        ({"temperature": -1}, "temperature"),
        ({"top_p": 2}, "top_p"),  # checked by the inference service as sampling.top_p
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 2**31}, "max_tokens"),  # beyond int32: was a 500
        ({"max_completion_tokens": 0}, "max_completion_tokens"),
        ({"seed": 2**63}, "seed"),  # beyond int64: was a 500
        ({"seed": -(2**63) - 1}, "seed"),
    ]
    for arguments, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny", messages=HELLO, **arguments)
        assert caught.value.body["param"] == param, (arguments, caught.value.body)
        assert "sampling." not in caught.value.body["message"], caught.value.body
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny", prompt="hi", max_tokens=2**40)
    assert caught.value.body["param"] == "max_tokens"


NOT_IMPLEMENTED = {
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "tool_choice": "auto",
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "response_format": {"type": "json_object"},
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"42": 5},
}


def test_fields_not_implemented_yet_are_refused_by_name(tiny_url):
    client = openai_client(tiny_url)
    with pytest.raises(openai.BadRequestError) as caught:  # asked for JSON: must not get prose and a 200
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=2,
                                       response_format={"type": "json_object"})
    assert caught.value.body["param"] == "response_format" and "not implemented" in caught.value.body["message"]

    for name, value in NOT_IMPLEMENTED.items():
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=2, extra_body={name: value})
        assert caught.value.body["param"] == name, caught.value.body

    parts = [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, "image_url"),
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "input_audio"),
    ]
    for part, kind in parts:
        message = {"role": "user", "content": [{"type": "text", "text": "what is this?"}, part]}
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="tiny", messages=[message], max_tokens=2)
        assert caught.value.body["param"] == "messages[0].content[1].type" and kind in caught.value.body["message"]

    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny", prompt="hi", max_tokens=2, logprobs=2)
    assert caught.value.body["param"] == "logprobs"


def test_defaults_of_those_fields_still_generate(tiny_url):
    """Clients that send the default value of a field the hub lacks ask for nothing it cannot do."""
    client = openai_client(tiny_url)
    answer = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}], max_tokens=2,
        temperature=2, tool_choice="none", response_format={"type": "text"}, logprobs=False, seed=2**63 - 1,
    )
    assert answer.usage.completion_tokens == 2 and answer.model == "tiny/versions/1"
