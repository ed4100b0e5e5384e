"""Tool-call arguments decoded under each function's parameters schema, through the gateway with the
official `openai` client, on the real demo model (SmolLM2-135M-Instruct) given a chat template in the
Hermes/Qwen tool-call format (`<tool_call>{"name": ..., "arguments": ...}</tool_call>`; its own template
has no tool format). A model this small writes no reliable calls on its own: every argument below
parses and validates only because the grammar allows nothing else. (A call the model starts on its
own under `auto` is tested on a tiny model that does: tests/test_tool_calls.py; the other formats whose
arguments are JSON, Mistral's and Kimi K2's: tests/test_tool_formats.py.)"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import jsonschema
import openai
import pytest
from inference_util import HERMES_TOOL_TEMPLATE, register, with_chat_template

from gateway.server import running


def function(name: str, parameters: dict, strict: bool | None = None) -> dict:
    tool = {"type": "function", "function": {"name": name, "description": f"{name} (see the parameters)",
                                             "parameters": parameters}}
    if strict is not None:
        tool["function"]["strict"] = strict
    return tool


WEATHER = function("get_weather", {  # an enum, a required field, a bounded string
    "type": "object", "additionalProperties": False, "required": ["city", "unit"],
    "properties": {"city": {"type": "string", "maxLength": 20}, "unit": {"enum": ["celsius", "fahrenheit"]}}},
    strict=True)
BOOKING = function("book_table", {  # a nested object, an integer range, an optional field
    "type": "object", "additionalProperties": False, "required": ["guest", "people"],
    "properties": {
        "guest": {"type": "object", "additionalProperties": False, "required": ["name"],
                  "properties": {"name": {"type": "string", "maxLength": 16},
                                 "phone": {"type": "string", "pattern": "^[0-9]{6,10}$"}}},
        "people": {"type": "integer", "minimum": 1, "maximum": 12},
        "outside": {"type": "boolean"}}})
SHOPPING = function("add_items", {  # an array of objects, bounded
    "type": "object", "additionalProperties": False, "required": ["items"],
    "properties": {"items": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
        "type": "object", "additionalProperties": False, "required": ["item", "count"],
        "properties": {"item": {"type": "string", "maxLength": 12}, "count": {"type": "integer", "minimum": 1,
                                                                             "maximum": 9}}}}}}, strict=False)
TOOLS = [WEATHER, BOOKING, SHOPPING]
ASKS = {"get_weather": "What is the weather in Lyon?", "book_table": "Book a table for 4, name Ada.",
        "add_items": "Add two apples and a loaf of bread to my list."}


def schema_of(name: str) -> dict:
    return next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)


def ask(name: str) -> list[dict]:
    return [{"role": "user", "content": ASKS[name]}]


@pytest.fixture(scope="module")
def hermes_smollm2(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model's weights and tokenizer with a Hermes/Qwen tool-call chat template."""
    return with_chat_template(smollm2, tmp_path_factory.mktemp("hermes") / "model", HERMES_TOOL_TEMPLATE)


@pytest.fixture
def client(inference, registry_stub, hermes_smollm2, settings):
    register(registry_stub, "caller", hermes_smollm2)
    with running(settings) as url:
        yield openai.OpenAI(base_url=f"{url}/openai/v1", api_key="unused", max_retries=0, timeout=300)


def test_forced_calls_parse_and_validate_against_their_schemas(client):
    for tool in TOOLS:
        name = tool["function"]["name"]
        for sampling in ({"temperature": 0}, {"temperature": 1.0, "seed": 7}):
            answer = client.chat.completions.create(
                model="caller", messages=ask(name), tools=TOOLS, max_tokens=80,
                tool_choice={"type": "function", "function": {"name": name}}, **sampling)
            choice = answer.choices[0]
            assert choice.finish_reason == "tool_calls", choice
            (call,) = choice.message.tool_calls
            assert call.function.name == name
            jsonschema.validate(json.loads(call.function.arguments), schema_of(name))

    # `required` with several tools: the model picks one, and its arguments match that one's schema.
    answer = client.chat.completions.create(model="caller", messages=ask("add_items"), tools=TOOLS, max_tokens=80,
                                            tool_choice="required", temperature=0)
    calls = answer.choices[0].message.tool_calls
    assert calls and answer.choices[0].finish_reason == "tool_calls"
    for call in calls:
        jsonschema.validate(json.loads(call.function.arguments), schema_of(call.function.name))


def test_streamed_arguments_are_the_whole_arguments_in_pieces(client):
    forced = {"type": "function", "function": {"name": "book_table"}}
    whole = client.chat.completions.create(model="caller", messages=ask("book_table"), tools=TOOLS, temperature=0,
                                           max_tokens=80, tool_choice=forced)
    (expected,) = whole.choices[0].message.tool_calls
    chunks = list(client.chat.completions.create(model="caller", messages=ask("book_table"), tools=TOOLS,
                                                 temperature=0, max_tokens=80, tool_choice=forced, stream=True))
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    first, rest = deltas[0], deltas[1:]
    assert first.function.name == "book_table" and first.id.startswith("call_") and first.function.arguments == ""
    assert len(rest) > 2, rest  # in pieces as the tokens arrive, not once the call has closed
    assert all(d.index == 0 and d.id is None and d.function.name is None for d in rest)
    streamed = "".join(d.function.arguments for d in rest)
    assert streamed == expected.function.arguments
    jsonschema.validate(json.loads(streamed), schema_of("book_table"))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_schema_the_engine_cannot_compile_is_a_400_naming_the_function(client):
    bad = function("lookup", {"type": "object", "properties": {"q": {"type": "string", "not": {"const": "x"}}}})
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="caller", messages=ask("get_weather"), tools=[WEATHER, bad],
                                       max_tokens=5)
    body = caught.value.body
    assert body["param"] == "tools[1].function.parameters", body
    assert "'lookup'" in body["message"] and "not" in body["message"], body
    assert body["type"] == "invalid_request_error" and body["code"] == "invalid_argument"


def test_a_free_row_keeps_its_greedy_output_beside_constrained_calls(client):
    free = {"model": "caller", "messages": [{"role": "user", "content": "Tell me about the sea."}], "temperature": 0,
            "max_tokens": 48}
    alone = client.chat.completions.create(**free).choices[0].message.content
    results: dict[str, str] = {}

    def call(name: str) -> None:
        answer = client.chat.completions.create(
            model="caller", messages=ask(name), tools=TOOLS, max_tokens=80, temperature=0,
            tool_choice={"type": "function", "function": {"name": name}})
        results[name] = answer.choices[0].message.tool_calls[0].function.arguments

    callers = [threading.Thread(target=call, args=(name,)) for name in ("book_table", "add_items")]
    for thread in callers:
        thread.start()
    beside = client.chat.completions.create(**free).choices[0].message.content
    for thread in callers:
        thread.join()
    assert beside == alone
    for name, arguments in results.items():
        jsonschema.validate(json.loads(arguments), schema_of(name))
    assert len(results) == 2
