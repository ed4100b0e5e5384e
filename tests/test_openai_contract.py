"""The /openai/v1 routes keep OpenAI's contract, as the official `openai` client sees it,
against the REAL registry and inference services: errors in OpenAI's shape (404 and 405
included) naming the request's own fields, models.retrieve, OpenAI's bounds, and the
fields the hub does not implement yet refused by name instead of silently ignored; and the typed
shapes behind those routes on their own."""

from __future__ import annotations

import json

import grpc
import httpx
import openai
import pytest
from inference_util import register

from gateway.errors import GatewayError
from gateway.openai import ChatAnswers, TextAnswers, parse, sampling, sse
from gateway.openai_models import ChatCompletionRequest, CompletionRequest
from gateway.server import running
from mlxhub.v1 import inference_pb2 as pb

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
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "logit_bias": {"42": 5},
}


def test_fields_not_implemented_yet_are_refused_by_name(tiny_url):
    client = openai_client(tiny_url)
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


def test_defaults_of_those_fields_still_generate(tiny_url):
    """Clients that send the default value of a field the hub lacks ask for nothing it cannot do."""
    client = openai_client(tiny_url)
    answer = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}], max_tokens=2,
        temperature=2, tool_choice="none", response_format={"type": "text"}, logprobs=False, seed=2**63 - 1,
    )
    assert answer.usage.completion_tokens == 2 and answer.model == "tiny/versions/1"


# The shapes themselves, without servers: what the routes above send and refuse, field by field.


def refused(shape, body: dict) -> tuple[str, str]:
    with pytest.raises(GatewayError) as caught:
        parse(shape, body)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.field, str(caught.value)


def test_requests_are_refused_naming_the_fields_path():
    chat = {"model": "tiny", "messages": HELLO}
    cases = [
        ({"messages": HELLO}, "model", "model is required"),
        ({**chat, "stream": 1}, "stream", "stream must be a boolean"),  # JSON's types: no coercion
        ({**chat, "max_tokens": "5"}, "max_tokens", "must be an integer"),
        ({**chat, "temperature": float("nan")}, "temperature", "finite"),
        ({**chat, "stop": ["\n", 5]}, "stop[1]", "stop[1] must be a string"),
        ({**chat, "stop": 5}, "stop", "a string or a list of strings"),
        ({**chat, "n": 2}, "n", "n=1"),
        ({**chat, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "boolean"),
        ({"model": "tiny", "messages": []}, "messages", "non-empty list"),
        ({"model": "tiny", "messages": [{"role": "user"}]}, "messages[0].content", "not null"),
        ({"model": "tiny", "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
         "messages[0].content[0].text", "must be a string"),
    ]
    for body, field, words in cases:
        assert refused(ChatCompletionRequest, body)[0] == field, body
        assert words in refused(ChatCompletionRequest, body)[1], body
    assert refused(CompletionRequest, {"model": "tiny", "prompt": ["one", "two"]})[0] == "prompt"


def test_unknown_fields_are_ignored_and_known_ones_mean_what_openai_says():
    chat = parse(ChatCompletionRequest, {
        "model": "tiny", "user": "someone", "metadata": {"a": "b"}, "max_completion_tokens": 3, "max_tokens": 9,
        "stop": "\n", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "developer", "content": [{"type": "text", "text": "be "}, {"type": "text", "text": "brief"}],
                      "name": "ops"}],
    })  # fmt: skip
    assert (chat.messages[0].hub_role, chat.messages[0].text) == ("system", "be brief")
    params = sampling(chat)
    assert (params.max_tokens, list(params.stop), params.temperature, params.has_seed) == (3, ["\n"], 1.0, False)
    assert chat.stream and chat.include_usage
    assert parse(CompletionRequest, {"model": "tiny", "prompt": ["only one"]}).prompt == "only one"


def test_stream_chunks_keep_openais_frames():
    token = pb.GenerateStreamResponse(text=" Paris", model_version="tiny/versions/1")
    final = pb.GenerateStreamResponse(text=".", model_version="tiny/versions/1", finish_reason=pb.FINISH_REASON_LENGTH,
                                      usage=pb.Usage(prompt_tokens=5, completion_tokens=2, cached_prompt_tokens=4))

    def frame(shape) -> dict:
        event = sse(shape)
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        return json.loads(event.removeprefix(b"data: "))

    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7, "model": "tiny/versions/1"}
    assert frame(ChatAnswers.chunk("chatcmpl-1", 7, token, None, True)) == {
        **head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": " Paris"}, "finish_reason": None,
                          "logprobs": None}]}
    assert frame(ChatAnswers.chunk("chatcmpl-1", 7, final, "length", False)) == {
        **head, "choices": [{"index": 0, "delta": {"content": "."}, "finish_reason": "length", "logprobs": None}]}
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4}}
    assert frame(ChatAnswers.usage_chunk("chatcmpl-1", 7, final)) == {**head, "choices": [], "usage": usage}
    assert frame(TextAnswers.chunk("cmpl-1", 7, token, None, True)) == {
        "id": "cmpl-1", "object": "text_completion", "created": 7, "model": "tiny/versions/1",
        "choices": [{"index": 0, "text": " Paris", "finish_reason": None, "logprobs": None}]}
