"""Constrained decoding (`inference_svc.decode.constraints`, llguidance): 50 generations of the demo model
against schemas with objects, enums, arrays, nesting, required fields and string patterns all parse and
validate, decoded in one batch beside unconstrained greedy requests whose outputs stay what they are alone;
a schema the decoder cannot honour is refused naming its part (real SmolLM2)."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from inference_svc.cache import ModelSpec
from inference_svc.decode import constraints
from inference_svc.decode.engine import Engine
from inference_svc.decode.generation import Chunk, Done, Request
from inference_svc.decode.sampling import Sampling
from inference_svc.loader import FLOAT32, load
from mlxhub.errors import InvalidArgument

GB = 1024**3
NAME = {"type": "string", "maxLength": 16}
SCHEMAS = {
    "object": {"type": "object", "additionalProperties": False, "required": ["name", "age"],
               "properties": {"name": NAME, "age": {"type": "integer", "minimum": 0, "maximum": 120}}},
    "enum": {"type": "object", "additionalProperties": False, "required": ["colour", "sure"],
             "properties": {"colour": {"enum": ["red", "green", "blue"]}, "sure": {"type": "boolean"}}},
    "array": {"type": "object", "additionalProperties": False, "required": ["tags"],
              "properties": {"tags": {"type": "array", "items": {"type": "string", "maxLength": 10},
                                      "minItems": 1, "maxItems": 3}}},
    "nested": {"type": "object", "additionalProperties": False, "required": ["person"],
               "properties": {"person": {
                   "type": "object", "additionalProperties": False, "required": ["name", "address"],
                   "properties": {"name": NAME, "address": {
                       "type": "object", "additionalProperties": False, "required": ["city", "zip"],
                       "properties": {"city": NAME, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}}}}},
    "pattern": {"type": "object", "additionalProperties": False, "required": ["code", "valid"],
                "properties": {"code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{2}$"},
                               "valid": {"type": "boolean"}}},
}
PROMPTS = ["Describe a person as JSON.", "Give me a JSON answer.", "Reply with a JSON object about a city.",
           "Answer in JSON: what is your favourite colour?", "Tell me about a product code, as JSON."]
FREE = [[{"role": "user", "content": "Name three colours."}], [{"role": "user", "content": "What is a bicycle?"}]]


@pytest.fixture(scope="module")
def loaded(smollm2):
    return load(str(smollm2), "", FLOAT32)


@pytest.fixture(scope="module")
def engine(loaded):
    engine = Engine(lambda spec: loaded, 4 * GB, 60.0, max_running=8, max_queued=64,
                    tokenizer=lambda spec: loaded.tokenizer).start()
    yield engine
    engine.stop()


def submit(engine, chat, sampling: Sampling, constraint=None):
    return engine.submit(Request(ModelSpec("smollm2/versions/1", "unused"), sampling, chat, constraint=constraint))


def text_of(generation) -> tuple[str, Done]:
    parts = []
    while True:
        event = generation.events.get(timeout=600)
        if isinstance(event, Done):
            return "".join(parts), event
        assert isinstance(event, Chunk), event
        parts.append(event.text)


def test_fifty_constrained_generations_validate_beside_unchanged_free_ones(engine, loaded):
    free_alone = [text_of(submit(engine, chat, Sampling(max_tokens=30)))[0] for chat in FREE]
    asked = []
    for n in range(50):
        kind = list(SCHEMAS)[n % len(SCHEMAS)]
        chat = [{"role": "user", "content": PROMPTS[n % len(PROMPTS)]}]
        sampling = Sampling(max_tokens=120) if n < 10 else Sampling(temperature=0.8, seed=n, max_tokens=120)
        asked.append((kind, submit(engine, chat, sampling, constraints.json_schema(SCHEMAS[kind], loaded.tokenizer))))
        if n == 3:  # free greedy requests join the batch while constrained ones decode
            free = [submit(engine, chat, Sampling(max_tokens=30)) for chat in FREE]
    for kind, generation in asked:
        text, done = text_of(generation)
        assert done.finish_reason == "stop", (kind, text)
        jsonschema.validate(json.loads(text), SCHEMAS[kind])
    assert [text_of(g)[0] for g in free] == free_alone


def test_regular_expressions_and_grammars_constrain_too(engine, loaded):
    regex = constraints.constrain(constraints.Format(constraints.REGEX, r"[A-Z][a-z]+ is [0-9]{1,3}"), loaded.tokenizer)
    text, _ = text_of(submit(engine, [{"role": "user", "content": "How old is Bob?"}], Sampling(max_tokens=20), regex))
    assert re.fullmatch(r"[A-Z][a-z]+ is [0-9]{1,3}", text), text
    grammar = constraints.constrain(constraints.Format(constraints.GRAMMAR, 'start: "yes" | "no"'), loaded.tokenizer)
    text, _ = text_of(submit(engine, [{"role": "user", "content": "Is the sky blue?"}], Sampling(max_tokens=5), grammar))
    assert text in ("yes", "no")
    anything = constraints.constrain(constraints.Format(constraints.JSON_OBJECT), loaded.tokenizer)
    text, _ = text_of(submit(engine, [{"role": "user", "content": "Hello"}], Sampling(max_tokens=60), anything))
    assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize(("schema", "words"), [
    ({"type": "object", "not": {"required": ["a"]}}, "not"),
    ({"type": "string", "pattern": "(?<=a)b"}, "look-around"),
    ({"type": "object", "properties": {"a": {"$ref": "#/defs/missing"}}}, "/defs/missing"),
    ({"type": 5}, "type"),
    ("[1, 2", "not valid JSON"),
    ([1, 2], "JSON Schema object"),
])
def test_a_schema_the_decoder_cannot_honour_is_refused_naming_its_part(schema, words):
    source = schema if isinstance(schema, str) else json.dumps(schema)
    with pytest.raises(InvalidArgument, match=words) as caught:
        constraints.grammar_of(constraints.Format(constraints.JSON_SCHEMA, source, "response_format.json_schema"))
    assert caught.value.field == "response_format.json_schema"
    with pytest.raises(InvalidArgument, match="unclosed group"):
        constraints.grammar_of(constraints.Format(constraints.REGEX, "a(b"))
    with pytest.raises(InvalidArgument, match="unknown name"):
        constraints.grammar_of(constraints.Format(constraints.GRAMMAR, "start: foo"))
