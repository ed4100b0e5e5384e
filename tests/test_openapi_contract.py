"""The OpenAPI document declares the constraints the services enforce, from the same proto
options they check (mlxhub.bounds): required fields, read-only fields, name patterns, enums,
ranges, lengths and sizes. A value at a declared limit is accepted; one past it is a 400."""

from __future__ import annotations

import re

import httpx
import jsonschema
import pytest
from google.protobuf import descriptor_pool

from gateway.server import running
from mlxhub import bounds
from mlxhub.names import NAME_RE
from mlxhub.v1 import inference_pb2, registry_pb2, trainer_pb2


@pytest.fixture
def base_url(registry, settings):
    with running(settings) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as http:
        yield http


@pytest.fixture
def document(client):
    return client.get("/openapi.json").json()


def schema_of(document, message) -> dict:
    return document["components"]["schemas"][message.DESCRIPTOR.full_name]


def test_required_read_only_and_enums_are_declared(document):
    create = schema_of(document, registry_pb2.CreateModelRequest)
    assert create["required"] == ["name"] and create["additionalProperties"] is False
    job = schema_of(document, trainer_pb2.CreateTrainingJobRequest)
    assert set(job["required"]) == {"model", "dataset"}
    model = schema_of(document, registry_pb2.Model)["properties"]
    assert all(model[f].get("readOnly") for f in ("createTime", "updateTime", "latestVersion", "aliases", "createdBy"))
    assert not model["description"].get("readOnly") and not model["etag"].get("readOnly")
    fine_tune = document["components"]["schemas"]["mlxhub.v1.FineTuneType"]
    assert fine_tune["enum"] == ["FINE_TUNE_TYPE_UNSPECIFIED", "FINE_TUNE_TYPE_LORA", "FINE_TUNE_TYPE_DORA"]

    role = schema_of(document, inference_pb2.ChatMessage)["properties"]["role"]
    assert role["enum"] == ["system", "user", "assistant", "tool"] and role["minLength"] == 1
    job_id = document["paths"]["/v1/training/jobs/{id}"]["get"]["parameters"][0]["schema"]
    assert job_id["format"] == "uuid" and re.fullmatch(job_id["pattern"][1:-1], "0f8e5c1a-9d2b-4c3e-8f00-123456789abc")
    seed = schema_of(document, inference_pb2.SamplingParams)["properties"]["seed"]
    assert seed == {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"}

    resolve = document["paths"]["/v1/models:resolve"]["get"]["parameters"]
    assert [(p["name"], p["required"]) for p in resolve] == [("reference", True)]
    # A body that shares the request with the path: the path's field is neither in it nor required there.
    body = document["paths"]["/v1/models/{name}/versions"]["post"]["requestBody"]["content"]["application/json"]
    assert "name" not in body["schema"]["properties"] and body["schema"]["required"] == ["artifactPath"]


def test_bounds_in_the_document_are_the_declared_ones(document):
    config = schema_of(document, trainer_pb2.TrainingConfig)["properties"]
    rank = bounds.of(trainer_pb2.TrainingConfig, "rank")
    assert (config["rank"]["minimum"], config["rank"]["maximum"]) == (rank.minimum, rank.maximum) == (1, 1024)
    assert config["epochs"]["maximum"] == 1000 and config["batchSize"]["maximum"] == 1024
    assert config["dropout"]["minimum"] == 0 and config["dropout"]["exclusiveMaximum"] == 1
    assert config["learningRate"]["exclusiveMinimum"] == 0 and config["learningRate"]["maximum"] == 1
    sampling = schema_of(document, inference_pb2.SamplingParams)["properties"]
    assert sampling["stop"]["maxItems"] == 8 and sampling["stop"]["items"]["maxLength"] == 128
    assert sampling["topP"] == {"type": "number", "format": "double", "exclusiveMinimum": 0, "maximum": 1,
                                "description": "0 or omitted: the default."}
    tags = schema_of(document, registry_pb2.CreateModelRequest)["properties"]["tags"]
    line = {"type": "string", "pattern": r"^[^\x00-\x1f\x7f-\x9f]*$"}
    assert tags["maxProperties"] == 64 and tags["propertyNames"] == {**line, "minLength": 1, "maxLength": 128}
    assert tags["additionalProperties"] == {**line, "maxLength": 256}
    page_size = {p["name"]: p for p in document["paths"]["/v1/models"]["get"]["parameters"]}["pageSize"]
    assert page_size["schema"]["minimum"] == 0 and page_size["schema"]["maximum"] == 2**31 - 1


def test_every_declared_bound_reaches_the_document(document):
    """Walk every message the document describes: each bound a field declares is in its schema."""
    keywords = {"max_length": "maxLength", "min_length": "minLength", "max_items": None}
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        if not name.startswith("mlxhub.v1.") or "properties" not in schema:
            continue
        descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
        for field in descriptor.fields:
            b, prop = bounds.bounds(field), schema["properties"][field.json_name]
            if b.max_items:
                assert b.max_items == prop.get("maxItems", prop.get("maxProperties")), (name, field.name)
            element = prop.get("items", prop.get("additionalProperties"))
            for declared, target in ((b, prop), (b.items, element), (b.keys, prop.get("propertyNames"))):
                for option, keyword in keywords.items():
                    if keyword and getattr(declared, option):
                        assert target.get(keyword) == getattr(declared, option), (name, field.name, option)
            if b.HasField("maximum") and field.type != field.TYPE_INT64:
                assert b.maximum in (prop.get("maximum"), prop.get("exclusiveMaximum")), (name, field.name)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("name", ["demo", "a", "a.b_c-d", "x" * 64, "demo\n", "Demo", "-a", "a-", "x" * 65, "a b"])
def test_the_documented_name_pattern_is_the_name_rule(document, name):
    pattern = schema_of(document, registry_pb2.CreateModelRequest)["properties"]["name"]["pattern"]
    assert pattern.startswith("^") and pattern.endswith("$")
    # JSON Schema patterns are ECMA-262: there `$` is the true end, i.e. Python's fullmatch of the body.
    documented = re.fullmatch(pattern[1:-1], name) is not None
    assert documented == (NAME_RE.fullmatch(name) is not None)


def test_values_at_a_documented_limit_pass_and_past_it_are_400(client, document):
    props = schema_of(document, registry_pb2.CreateModelRequest)["properties"]
    limit, tags = props["description"]["maxLength"], props["tags"]["maxProperties"]
    ok = client.post("/v1/models", json={"name": "at-limit", "description": "d" * limit,
                                         "tags": {f"k{i}": "v" for i in range(tags)}})
    assert ok.status_code == 200, ok.text
    too_long = client.post("/v1/models", json={"name": "past", "description": "d" * (limit + 1)})
    assert too_long.status_code == 400 and f"the limit is {limit}" in too_long.json()["message"]
    assert too_long.json()["details"][0]["fieldViolations"][0]["field"] == "description"
    too_many = client.post("/v1/models", json={"name": "past", "tags": {f"k{i}": "v" for i in range(tags + 1)}})
    assert too_many.status_code == 400 and str(tags) in too_many.json()["message"]
    key_limit = props["tags"]["propertyNames"]["maxLength"]
    long_key = client.post("/v1/models", json={"name": "past", "tags": {"k" * (key_limit + 1): "v"}})
    assert long_key.status_code == 400 and str(key_limit) in long_key.json()["message"]
    negative = client.get("/v1/models", params={"pageSize": -1})
    assert negative.status_code == 400 and ">= 0" in negative.json()["message"]
    missing = client.get("/v1/models:resolve")
    assert missing.status_code == 400 and "reference is required" in missing.json()["message"]


def test_the_schemas_are_valid_json_schema(document):
    """OpenAPI 3.1 schemas are JSON Schema 2020-12: every pattern and keyword the bounds produce is valid there."""
    components = {"$defs": document["components"]["schemas"]}
    jsonschema.Draft202012Validator.check_schema(components)
    for schema in document["components"]["schemas"].values():
        for prop in schema.get("properties", {}).values():
            if "pattern" in prop:
                re.compile(prop["pattern"])  # ECMA-262 patterns here are also Python ones (no named groups)


@pytest.mark.parametrize(("field", "value", "stored"), [
    ("description", "two lines\n\tand a tab", True),
    ("description", "nul\x00", False),
    ("description", "bell\x07", False),
    ("baseModel", "org/model\n", False),
    ("baseModel", "org/model", True),
    ("idempotencyKey", "key\x1b", False),
])
def test_control_characters_follow_the_documented_pattern(client, document, field, value, stored):
    """Single-line fields refuse every control character, free text all but tab and line breaks:
    the document's pattern and the service agree on each value."""
    pattern = schema_of(document, registry_pb2.CreateModelRequest)["properties"][field]["pattern"]
    assert (re.fullmatch(pattern[1:-1], value) is not None) == stored
    answer = client.post("/v1/models", json={"name": "m", field: value})
    assert answer.status_code == (200 if stored else 400), answer.text
    if not stored:
        assert "control character" in answer.json()["message"]
