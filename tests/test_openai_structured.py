"""Structured outputs through the gateway's OpenAI routes, read by the official `openai` client:
`response_format` json_schema (strict) and json_object on chat, whole and streamed, and on completions;
a schema the decoder cannot honour is a 400 in OpenAI's shape naming the schema and its part (real SmolLM2)."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
from inference_util import register

from gateway.server import running

PERSON = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string", "maxLength": 16},
                         "age": {"type": "integer", "minimum": 0, "maximum": 120}}}
FORMAT = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
ASK = [{"role": "user", "content": "Describe a person as JSON."}]


@pytest.fixture
def client(inference, registry_stub, smollm2, settings):
    register(registry_stub, "smollm2", smollm2)
    with running(settings) as url:
        yield openai.OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0, timeout=300)


def test_response_format_gives_json_that_matches(client):
    whole = client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=60, response_format=FORMAT)
    jsonschema.validate(json.loads(whole.choices[0].message.content), PERSON)
    assert whole.choices[0].finish_reason == "stop"

    streamed = client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=60, response_format=FORMAT,
                                              temperature=0.9, seed=4, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    jsonschema.validate(json.loads(text), PERSON)

    anything = client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=80,
                                              response_format={"type": "json_object"})
    content = anything.choices[0].message.content  # any object: it may outgrow the budget
    assert isinstance(json.loads(content), dict) if anything.choices[0].finish_reason == "stop" else content[0] == "{"

    completion = client.completions.create(model="smollm2", prompt="A person as JSON:", max_tokens=60,
                                           extra_body={"response_format": FORMAT})
    jsonschema.validate(json.loads(completion.choices[0].text), PERSON)


def test_a_schema_the_decoder_cannot_honour_is_a_400_naming_it(client):
    unsupported = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "not": {}}}}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=5, response_format=unsupported)
    body = caught.value.body
    assert body["param"] == "response_format.json_schema.schema" and "not" in body["message"], body
    assert body["type"] == "invalid_request_error" and body["code"] == "invalid_argument"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=5,
                                       response_format={"type": "json_schema"})
    assert caught.value.body["param"] == "response_format", caught.value.body
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=5, response_format={"type": "xml"})
    assert caught.value.body["param"] == "response_format.type", caught.value.body
