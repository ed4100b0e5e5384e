"""The gateway against a real in-process gRPC server, over real HTTP (uvicorn in a thread).

The fake registry below is only a stand-in upstream: it echoes what the gateway
sent and raises rich errors on demand, so these tests pin the transcoding,
error mapping, streaming and header rules, not registry behaviour.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
import httpx
import pytest
from google.api import annotations_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.errors import HTTP_STATUS_FROM_CODE
from gateway.routes import Binding, PathTemplate, RouteTable, load_bindings
from gateway.server import running
from gateway.transcode import build_request
from mlxhub.config import load_settings
from mlxhub.embedded import free_port
from mlxhub.errors import AlreadyExists, FailedPrecondition, HubError, NotFound, abort
from mlxhub.v1 import common_pb2, inference_pb2, registry_pb2, registry_pb2_grpc, trainer_pb2

SERVICES = ("mlxhub.v1.RegistryService", "mlxhub.v1.TrainerService", "mlxhub.v1.InferenceService")
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """Records each request and its metadata; behaviour is chosen by the request's fields."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, dict[str, str]]] = []
        self.call_ended = threading.Event()

    def _record(self, name: str, request, context) -> None:
        self.calls.append((name, request, dict(context.invocation_metadata())))

    def last(self, name: str):
        return next((request, metadata) for method, request, metadata in reversed(self.calls) if method == name)

    def GetModel(self, request, context):
        self._record("GetModel", request, context)
        if request.name == "slow":
            self._block_until_cancelled(context)
        if request.name == "missing":
            abort(context, NotFound("model 'missing' does not exist", resource_type="Model", resource_name="missing"))
        context.send_initial_metadata([("x-served-by", "fake-registry")])
        return registry_pb2.GetModelResponse(model=registry_pb2.Model(name=request.name, latest_version=3))

    def CreateModel(self, request, context):
        self._record("CreateModel", request, context)
        if request.name == "taken":
            abort(context, AlreadyExists("model 'taken' exists", resource_type="Model", resource_name="taken"))
        model = registry_pb2.Model(name=request.name, base_model=request.base_model, tags=request.tags)
        return registry_pb2.CreateModelResponse(model=model)

    def UpdateModel(self, request, context):
        self._record("UpdateModel", request, context)
        return registry_pb2.UpdateModelResponse(model=request.model)

    def ListModels(self, request, context):
        self._record("ListModels", request, context)
        models = [registry_pb2.Model(name=f"m{i}") for i in range(request.page_size)]
        return registry_pb2.ListModelsResponse(models=models, next_page_token="next")

    def GetModelVersion(self, request, context):
        version = registry_pb2.ModelVersion(model=request.name, version=request.version)
        return registry_pb2.GetModelVersionResponse(version=version)

    def GetAliasHistory(self, request, context):
        return registry_pb2.GetAliasHistoryResponse(version_at_time=request.at_time.seconds)

    def ResolveModelReference(self, request, context):
        return registry_pb2.ResolveModelReferenceResponse(version=registry_pb2.ModelVersion(model=request.reference))

    def GetDataset(self, request, context):
        """Fails with the status code named by the dataset name, e.g. `permission_denied`."""
        error = HubError(f"forced {request.name}", reason=f"FORCED_{request.name.upper()}")
        error.code = grpc.StatusCode[request.name.upper()]
        abort(context, error)

    def ReadEvents(self, request, context):
        self._record("ReadEvents", request, context)
        for position in range(1, request.limit + 1):
            yield registry_pb2.ReadEventsResponse(event=common_pb2.Event(position=position, type="ModelRegistered"))
        if request.aggregate == "fail":
            abort(context, FailedPrecondition("event log truncated", reason="LOG_TRUNCATED"))
        if request.follow:
            self._block_until_cancelled(context)

    def _block_until_cancelled(self, context) -> None:
        while context.is_active():
            time.sleep(0.01)
        self.call_ended.set()


@dataclass
class Upstream:
    address: str
    registry: FakeRegistry
    health: health.HealthServicer


@pytest.fixture(scope="module")
def upstream():
    registry, health_servicer = FakeRegistry(), health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(registry, server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for service in SERVICES:
        health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield Upstream(f"127.0.0.1:{port}", registry, health_servicer)
    server.stop(grace=0)


@pytest.fixture
def start_gateway(upstream, tmp_path):
    """Start a gateway (registry and inference -> the fake server, trainer -> nothing); return a client."""
    with contextlib.ExitStack() as stack:

        def start(**env: str) -> httpx.Client:
            settings = load_settings(
                {
                    "MLXHUB_HOME": str(tmp_path),
                    "MLXHUB_REGISTRY_ADDR": upstream.address,
                    "MLXHUB_INFERENCE_ADDR": upstream.address,  # has no InferenceService: UNIMPLEMENTED
                    "MLXHUB_TRAINER_ADDR": f"127.0.0.1:{free_port()}",  # nothing listens: UNAVAILABLE
                    "MLXHUB_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
                    "MLXHUB_MAX_REQUEST_BYTES": "2048",
                    **env,
                }
            )
            url = stack.enter_context(running(settings))
            return stack.enter_context(httpx.Client(base_url=url, timeout=10))

        yield start


@pytest.fixture
def client(start_gateway) -> httpx.Client:
    return start_gateway()


def assert_status(response: httpx.Response, http_status: int, code: grpc.StatusCode) -> dict:
    """The response is a google.rpc.Status JSON with this HTTP status and gRPC code."""
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == code.value[0]
    assert body["message"]
    assert isinstance(body["details"], list)
    return body


def detail(body: dict, type_name: str) -> dict:
    return next(d for d in body["details"] if d["@type"] == f"type.googleapis.com/google.rpc.{type_name}")


# --- routes and transcoding, without a server ---------------------------------------------------


def test_path_templates_compile_patterns_nested_fields_and_verbs():
    template = PathTemplate.compile("/v1/{name=models/*}/files/{file.path=**}:download")
    assert template.match("/v1/models/llama/files/a/b%20c.txt:download") == {
        "name": "models/llama",
        "file.path": "a/b c.txt",
    }
    assert template.match("/v1/datasets/llama/files/a:download") is None
    assert template.match("/v1/models/llama/files/a") is None
    assert template.openapi_path == "/v1/{name}/files/{file.path}:download"


def test_literal_and_verb_routes_win_over_variables():
    table = RouteTable(load_bindings())
    cases = {
        ("GET", "/v1/models:resolve"): "ResolveModelReference",
        ("GET", "/v1/models/llama"): "GetModel",
        ("GET", "/v1/training/jobs/j1:watch"): "WatchTrainingJob",
        ("GET", "/v1/training/jobs/j1"): "GetTrainingJob",
        ("POST", "/v1/training/jobs/j1:cancel"): "CancelTrainingJob",
        ("POST", "/v1/generate:stream"): "GenerateStream",
    }
    for (method, path), rpc in cases.items():
        assert table.match(method, path)[0].method.name == rpc, path


def test_nested_path_variable_with_pattern_and_body_field():
    method = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].methods_by_name["UpdateModel"]
    binding = Binding(method, "PATCH", PathTemplate.compile("/v2/{model.name=models/*}"), body="model")
    params = binding.template.match("/v2/models/llama")
    request = build_request(binding, params, [("updateMask", "description")], b'{"description": "d"}')
    assert request.model.name == "models/llama"  # the path overrides the body
    assert request.model.description == "d"
    assert list(request.update_mask.paths) == ["description"]


def test_query_parameters_convert_enums_repeated_and_scalars():
    table = RouteTable(load_bindings())
    jobs, _ = table.match("GET", "/v1/training/jobs")
    by_name = build_request(jobs, {}, [("state", "TRAINING_JOB_STATE_RUNNING"), ("page_size", "5")], b"")
    assert by_name.state == trainer_pb2.TRAINING_JOB_STATE_RUNNING and by_name.page_size == 5
    assert build_request(jobs, {}, [("state", "4")], b"").state == trainer_pb2.TRAINING_JOB_STATE_FAILED
    events, _ = table.match("GET", "/v1/events")
    query = [("eventTypes", "A"), ("event_types", "B"), ("follow", "true"), ("afterPosition", "9")]
    request = build_request(events, {}, query, b"")
    assert list(request.event_types) == ["A", "B"] and request.follow and request.after_position == 9


# --- unary calls over HTTP ------------------------------------------------------------------------


def test_get_transcodes_path_and_renders_canonical_json(client, upstream):
    response = client.get("/v1/models/llama")
    assert response.status_code == 200
    assert response.json() == {"model": {"name": "llama", "latestVersion": "3"}}
    assert upstream.registry.last("GetModel")[0].name == "llama"
    assert response.headers["grpc-metadata-x-served-by"] == "fake-registry"


def test_query_parameters_and_typed_path_variables(client):
    listed = client.get("/v1/models", params={"pageSize": 2}).json()
    assert listed == {"models": [{"name": "m0"}, {"name": "m1"}], "nextPageToken": "next"}
    assert client.get("/v1/models/llama/versions/7").json() == {"version": {"model": "llama", "version": "7"}}
    history = client.get("/v1/models/llama/aliases/prod/history", params={"atTime": "2024-01-01T00:00:00Z"})
    assert history.json() == {"versionAtTime": "1704067200"}
    resolved = client.get("/v1/models:resolve", params={"reference": "llama@prod"})
    assert resolved.json() == {"version": {"model": "llama@prod"}}


def test_post_whole_body_accepts_camel_and_proto_names(client, upstream):
    body = {"name": "llama", "baseModel": "hf/llama", "tags": {"team": "nlp"}, "idempotency_key": "k1"}
    response = client.post("/v1/models", json=body)
    assert response.status_code == 200
    assert response.json() == {"model": {"name": "llama", "baseModel": "hf/llama", "tags": {"team": "nlp"}}}
    request = upstream.registry.last("CreateModel")[0]
    assert (request.base_model, request.idempotency_key) == ("hf/llama", "k1")


def test_patch_body_field_with_update_mask(client, upstream):
    response = client.patch(
        "/v1/models/llama?updateMask=description,tags", json={"description": "new", "tags": {"t": "v"}}
    )
    assert response.status_code == 200
    request = upstream.registry.last("UpdateModel")[0]
    assert request.name == "llama"
    assert request.model.description == "new" and dict(request.model.tags) == {"t": "v"}
    assert list(request.update_mask.paths) == ["description", "tags"]


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("POST", "/v1/models", {"name": "x", "colour": "red"}, "colour"),
        ("PATCH", "/v1/models/x", {"description": "d", "colour": "red"}, "model.colour"),
    ],
)
def test_unknown_body_field_is_rejected_by_name(client, method, url, body, field):
    response = client.request(method, url, json=body)
    error = assert_status(response, 400, grpc.StatusCode.INVALID_ARGUMENT)
    assert "colour" in error["message"]
    assert detail(error, "BadRequest")["fieldViolations"][0]["field"] == field


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("/v1/models?pageSize=ten", ["pageSize", "int32"]),
        ("/v1/events?follow=maybe", ["follow", "bool"]),
        ("/v1/training/jobs?state=DONE", ["state", "TRAINING_JOB_STATE_SUCCEEDED"]),
        ("/v1/models?pageSize=1&pageSize=2", ["pageSize", "not repeated"]),
        ("/v1/models?colour=red", ["unknown query parameter", "colour"]),
        ("/v1/models/llama?name=other", ["name", "path"]),
    ],
)
def test_bad_query_parameters_are_400_naming_them(client, url, named):
    response = client.get(url)
    message = assert_status(response, 400, grpc.StatusCode.INVALID_ARGUMENT)["message"]
    assert all(part in message for part in named), message


def test_bad_bodies_are_400(client):
    assert (
        "not valid JSON"
        in assert_status(client.post("/v1/models", content=b"{"), 400, grpc.StatusCode.INVALID_ARGUMENT)["message"]
    )
    assert_status(client.post("/v1/models", json={"name": 3}), 400, grpc.StatusCode.INVALID_ARGUMENT)
    no_body = client.request("GET", "/v1/models/llama", content=b'{"name": "x"}')
    assert "takes no request body" in assert_status(no_body, 400, grpc.StatusCode.INVALID_ARGUMENT)["message"]


def test_unknown_route_and_wrong_method(client):
    assert_status(client.get("/v2/nothing"), 404, grpc.StatusCode.NOT_FOUND)
    assert_status(client.get("/v1/models/a/b/c/d/e"), 404, grpc.StatusCode.NOT_FOUND)
    wrong = assert_status(client.delete("/v1/models/llama"), 405, grpc.StatusCode.UNIMPLEMENTED)
    assert "GET, PATCH" in wrong["message"]


@pytest.mark.parametrize("size", [4096, None])
def test_oversized_body_is_413(client, size):
    payload = json.dumps({"name": "x", "description": "y" * 4096}).encode()
    # with Content-Length, and chunked (no length known up front)
    content = payload if size else iter([payload[:1000], payload[1000:]])
    response = client.post("/v1/models", content=content, headers={"content-type": "application/json"})
    assert_status(response, 413, grpc.StatusCode.RESOURCE_EXHAUSTED)


# --- errors ---------------------------------------------------------------------------------------


def test_status_table_is_grpc_gateways():
    assert {code.name: status for code, status in HTTP_STATUS_FROM_CODE.items()} == {
        "OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
        "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "UNAUTHENTICATED": 401,
        "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400,
        "UNIMPLEMENTED": 501, "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500,
    }  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [c for c in grpc.StatusCode if c not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED)],
    ids=lambda c: c.name,
)
def test_upstream_errors_keep_code_message_and_details(client, code):
    response = client.get(f"/v1/datasets/{code.name.lower()}")
    body = assert_status(response, HTTP_STATUS_FROM_CODE[code], code)
    assert body["message"] == f"forced {code.name.lower()}"
    assert detail(body, "ErrorInfo") == {
        "@type": ERROR_INFO,
        "reason": f"FORCED_{code.name}",
        "domain": "mlx-hub",
    }


def test_rich_details_pass_through(client):
    missing = assert_status(client.get("/v1/models/missing"), 404, grpc.StatusCode.NOT_FOUND)
    assert detail(missing, "ResourceInfo")["resourceName"] == "missing"
    taken = assert_status(client.post("/v1/models", json={"name": "taken"}), 409, grpc.StatusCode.ALREADY_EXISTS)
    assert detail(taken, "ErrorInfo")["reason"] == "ALREADY_EXISTS"


def test_unimplemented_and_unreachable_upstreams(client):
    assert_status(client.get("/v1/inference/info"), 501, grpc.StatusCode.UNIMPLEMENTED)
    assert_status(client.get("/v1/training/jobs/j1"), 503, grpc.StatusCode.UNAVAILABLE)


# --- streaming ------------------------------------------------------------------------------------


def test_ndjson_stream(client, upstream):
    response = client.get("/v1/events?limit=3&eventTypes=A&eventTypes=B")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["result"]["event"]["position"] for line in lines] == ["1", "2", "3"]
    assert list(upstream.registry.last("ReadEvents")[0].event_types) == ["A", "B"]


def test_ndjson_stream_error_mid_stream(client):
    lines = [json.loads(line) for line in client.get("/v1/events?limit=2&aggregate=fail").text.splitlines()]
    assert [next(iter(line)) for line in lines] == ["result", "result", "error"]
    error = lines[-1]["error"]
    assert error["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert error["message"] == "event log truncated"
    assert detail(error, "ErrorInfo")["reason"] == "LOG_TRUNCATED"


def test_sse_stream_with_error_event(client):
    response = client.get("/v1/events?limit=2&aggregate=fail", headers={"Accept": "text/event-stream"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.strip().split("\n\n")
    assert [json.loads(e.removeprefix("data: "))["event"]["position"] for e in events[:2]] == ["1", "2"]
    kind, data = events[2].split("\n")
    assert kind == "event: error"
    assert json.loads(data.removeprefix("data: "))["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]


def test_stream_failing_before_first_message_is_a_plain_error(client):
    body = assert_status(client.get("/v1/events?limit=0&aggregate=fail"), 400, grpc.StatusCode.FAILED_PRECONDITION)
    assert body["message"] == "event log truncated"


def test_client_disconnect_mid_stream_cancels_upstream(client, upstream):
    upstream.registry.call_ended.clear()
    with (
        httpx.Client(base_url=str(client.base_url), timeout=10) as own,
        own.stream("GET", "/v1/events?limit=1&follow=true") as response,
    ):
        lines = response.iter_lines()  # keep a reference: dropping it would close the connection
        assert json.loads(next(lines))["result"]["event"]["position"] == "1"
        time.sleep(0.2)
        assert not upstream.registry.call_ended.is_set()  # still following while the client listens
    assert upstream.registry.call_ended.wait(5), "the upstream stream outlived the HTTP client"


@pytest.mark.parametrize("url", ["/v1/events?follow=true", "/v1/models/slow"], ids=["stream", "unary"])
def test_client_disconnect_before_any_answer_cancels_upstream(client, upstream, url):
    upstream.registry.call_ended.clear()
    with pytest.raises(httpx.ReadTimeout):  # nothing has come back, so no response either: the client gives up
        client.get(url, timeout=httpx.Timeout(10, read=0.3))
    assert upstream.registry.call_ended.wait(5), "the upstream stream outlived the HTTP client"


# --- headers, auth, operational endpoints -----------------------------------------------------------


def test_headers_are_forwarded_as_metadata(client, upstream):
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {
        "Authorization": "Bearer tok",
        "Grpc-Metadata-Foo": "bar",
        "X-Request-Id": "req-123",
        "Traceparent": traceparent,
        "X-Not-Forwarded": "1",
    }
    response = client.get("/v1/models/llama", headers=headers)
    metadata = upstream.registry.last("GetModel")[1]
    assert metadata["authorization"] == "Bearer tok"
    assert metadata["foo"] == "bar"
    # The caller's trace goes on; the span id is the caller's, or the gateway's own span's once a tracer is set.
    assert metadata["traceparent"].split("-")[1] == traceparent.split("-")[1]
    assert "x-not-forwarded" not in metadata
    assert metadata["x-request-id"] == "req-123" == response.headers["x-request-id"]

    generated = client.get("/v1/models/llama").headers["x-request-id"]
    assert generated and upstream.registry.last("GetModel")[1]["x-request-id"] == generated


def test_api_keys_are_required_when_configured(start_gateway, upstream):
    client = start_gateway(MLXHUB_API_KEYS="alice=s3cret")
    assert client.get("/healthz").status_code == 200
    missing = assert_status(client.get("/v1/models/llama"), 401, grpc.StatusCode.UNAUTHENTICATED)
    assert missing["message"].startswith("missing API key") and "Authorization: Bearer" in missing["message"]
    wrong = client.get("/v1/models/llama", headers={"Authorization": "Bearer nope"})
    assert assert_status(wrong, 401, grpc.StatusCode.UNAUTHENTICATED)["message"].startswith("wrong API key")
    assert_status(client.get("/openapi.json"), 401, grpc.StatusCode.UNAUTHENTICATED)

    upstream.registry.calls.clear()
    ok = client.get("/v1/models/llama", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert upstream.registry.last("GetModel")[1]["authorization"] == "Bearer s3cret"
    assert client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_healthz(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_checks_every_upstream(start_gateway, upstream):
    partial = start_gateway().get("/readyz")  # trainer points at nothing
    assert partial.status_code == 503
    assert partial.json()["notReady"] == ["mlxhub.v1.TrainerService"]

    whole = start_gateway(MLXHUB_TRAINER_ADDR=upstream.address)
    assert whole.get("/readyz").json() == {
        "status": "ok",
        "services": dict.fromkeys(sorted(SERVICES), "SERVING"),
        "notReady": [],
    }
    upstream.health.set("mlxhub.v1.InferenceService", health_pb2.HealthCheckResponse.NOT_SERVING)
    try:
        degraded = whole.get("/readyz")
        assert degraded.status_code == 503
        assert degraded.json()["notReady"] == ["mlxhub.v1.InferenceService"]
    finally:
        upstream.health.set("mlxhub.v1.InferenceService", health_pb2.HealthCheckResponse.SERVING)


def test_openapi_documents_every_http_rule(client):
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    expected = set()
    for file in (registry_pb2.DESCRIPTOR, trainer_pb2.DESCRIPTOR, inference_pb2.DESCRIPTOR):
        for service in file.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                expected.add((getattr(rule, verb), verb, method.name))
    documented = {
        (path, verb, operation["summary"])
        for path, operations in document["paths"].items()
        for verb, operation in operations.items()
    }
    assert documented == expected

    watch = document["paths"]["/v1/training/jobs/{id}:watch"]["get"]
    assert set(watch["responses"]["200"]["content"]) == {"application/x-ndjson", "text/event-stream"}
    list_jobs = document["paths"]["/v1/training/jobs"]["get"]
    assert {p["name"] for p in list_jobs["parameters"]} == {"state", "model", "pageSize", "pageToken"}
    schemas = document["components"]["schemas"]
    assert schemas["mlxhub.v1.TrainingJobState"]["enum"][2] == "TRAINING_JOB_STATE_RUNNING"
    assert schemas["mlxhub.v1.Model"]["properties"]["createTime"] == {"type": "string", "format": "date-time",
                                                                       "readOnly": True}
