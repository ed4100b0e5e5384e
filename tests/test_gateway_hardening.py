"""Bad input at the gateway's edge, through the REAL registry: bodies that are not JSON
objects or nest without end, request ids smuggled in as Grpc-Metadata-*, and which
routes stay open when API keys are set. Every bad input is a 4xx naming the problem, never a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from gateway.server import running
from mlxhub.config import load_settings
from mlxhub.embedded import free_port

INVALID_ARGUMENT = 3
NOT_OBJECTS = [b"null", b"5", b"true", b"1.5", b'"ab"', b"[]", b'[{"name": "x"}]']


@pytest.fixture
def client(registry, settings):
    with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
        yield http


def assert_invalid(response: httpx.Response, *phrases: str) -> dict:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == INVALID_ARGUMENT, body
    assert all(phrase in body["message"] for phrase in phrases), body["message"]
    return body


def nested(depth: int) -> bytes:
    return b'{"name": "deep", "tags": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=lambda b: b.decode())
def test_a_body_that_is_not_a_json_object_is_400_on_every_route_with_a_body(client, body):
    headers = {"content-type": "application/json"}
    assert client.post("/v1/models", json={"name": "demo"}).status_code == 200
    for method, url in [("POST", "/v1/models"), ("PATCH", "/v1/models/demo"), ("POST", "/v1/datasets"),
                        ("PUT", "/v1/models/demo/aliases/prod")]:
        response = client.request(method, url, content=body, headers=headers)
        assert_invalid(response, "the body must be a JSON object", "not ")
    # Nothing was written: PATCH null did not clear the model, `[]` did not create an empty one.
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["demo"]
    events = [json.loads(line)["result"]["event"]["type"] for line in client.get("/v1/events").text.splitlines()]
    assert events == ["ModelRegistered"]


def test_a_number_too_long_to_convert_is_400(client):
    assert_invalid(client.post("/v1/models", content=b'{"name": "x", "tags": {"a": ' + b"1" * 5000 + b"}}"), "JSON")


def test_a_json_string_body_is_not_read_character_by_character(client):
    body = assert_invalid(client.post("/v1/models", content=b'"abc"'), "not a string")
    assert "unknown field" not in body["message"]


@pytest.mark.parametrize("depth", [40, 5000, 100_000])
def test_deep_nesting_is_400_not_a_recursion_error(client, depth):
    assert_invalid(client.post("/v1/models", content=nested(depth)), "levels deep")


def test_openai_routes_parse_bodies_the_same_way(client):
    for body in [b'"hi"', b"null", b"[]", nested(5000)]:
        response = client.post("/openai/v1/chat/completions", content=body)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert "JSON object" in error["message"] or "levels deep" in error["message"], error


def test_a_sane_body_still_works_near_the_depth_limit(client):
    response = client.post("/v1/models", json={"name": "shallow", "tags": {"a": "b"}})
    assert response.status_code == 200, response.text


def test_grpc_metadata_cannot_replace_the_checked_request_id(client):
    headers = {"X-Request-Id": "req-checked", "Grpc-Metadata-X-Request-Id": "req-forged"}
    response = client.post("/v1/models", json={"name": "demo"}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "req-checked"
    [line] = client.get("/v1/events").text.splitlines()
    assert json.loads(line)["result"]["event"]["metadata"]["requestId"] == "req-checked"

    # Without an X-Request-Id the gateway's own id is the one recorded, still not the header's.
    response = client.post("/v1/models", json={"name": "other"}, headers={"Grpc-Metadata-X-Request-Id": "forged"})
    last = json.loads(client.get("/v1/events").text.splitlines()[-1])["result"]["event"]
    assert last["metadata"]["requestId"] == response.headers["x-request-id"] != "forged"

    # A repeated X-Request-Id: the first one counts, as for Authorization.
    response = client.post("/v1/models", json={"name": "third"}, headers=[("X-Request-Id", "req-first"),
                                                                         ("X-Request-Id", "req-second")])
    last = json.loads(client.get("/v1/events").text.splitlines()[-1])["result"]["event"]
    assert response.headers["x-request-id"] == last["metadata"]["requestId"] == "req-first"


def test_with_api_keys_only_healthz_is_open_on_the_gateway_port(registry, hub_env):
    settings = load_settings({**hub_env, "MLXHUB_API_KEYS": "alice=alice-key"})
    with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
        assert http.get("/healthz").status_code == 200
        for path in ["/metrics", "/readyz", "/health/deep", "/openapi.json", "/v1/models", "/openai/v1/models"]:
            assert http.get(path).status_code == 401, path
        scraped = http.get("/metrics", headers={"Authorization": "Bearer alice-key"})
        assert scraped.status_code == 200 and "mlxhub_http_requests_total" in scraped.text


def test_prometheus_scrapes_the_gateway_metrics_port_without_a_key(hub_env, tmp_path):
    """`python -m gateway` as deployed: its own metrics port (MLXHUB_GATEWAY_METRICS_ADDR), like every service's."""
    metrics = f"127.0.0.1:{free_port()}"
    env = {**os.environ, **hub_env, "MLXHUB_API_KEYS": "alice=alice-key", "MLXHUB_GATEWAY_METRICS_ADDR": metrics}
    gateway = f"http://{hub_env['MLXHUB_GATEWAY_ADDR']}"
    log_path = tmp_path / "gateway.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "gateway"], env=env, stdout=log, stderr=subprocess.STDOUT)

    def get(url: str) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            try:
                return httpx.get(url, timeout=5)
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)

    try:
        assert get(f"{gateway}/healthz").status_code == 200
        assert get(f"{gateway}/metrics").status_code == 401
        scraped = get(f"http://{metrics}/metrics")
        assert scraped.status_code == 200 and "mlxhub_http_requests_total" in scraped.text
    finally:
        process.terminate()
        process.wait(30)
