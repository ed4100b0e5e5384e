"""End to end, as a curl user sees it: HTTP/JSON through the gateway to the REAL
registry (event store in the embedded PostgreSQL, NATS publisher running).

Nothing here is faked: every request goes httpx -> uvicorn gateway -> gRPC
registry -> eventsourcing/PostgreSQL and back.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from gateway.server import running
from mlxhub.config import load_settings
from registry_svc.server import RegistryServer

BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
RESOURCE_INFO = "type.googleapis.com/google.rpc.ResourceInfo"
OK, INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, ABORTED, UNAUTHENTICATED = 0, 3, 5, 6, 10, 16


@pytest.fixture
def base_url(registry, settings):
    with running(settings) as url:
        yield url


@pytest.fixture
def client(base_url):
    with httpx.Client(base_url=base_url, timeout=15) as http:
        yield http


def detail(body: dict, type_url: str) -> dict:
    found = [d for d in body.get("details", []) if d.get("@type") == type_url]
    assert found, f"no {type_url} detail in {body}"
    return found[0]


def assert_error(response: httpx.Response, http_status: int, code: int) -> dict:
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return body


def ndjson(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [line for line in response.text.split("\n") if line]
    return [json.loads(line) for line in lines]


def events_of(lines: list[dict]) -> list[dict]:
    for line in lines:
        assert set(line) == {"result"}, line  # no {"error": ...} line, nothing else
        assert set(line["result"]) == {"event"}, line
    return [line["result"]["event"] for line in lines]


def create(client: httpx.Client, name: str, **fields) -> dict:
    response = client.post("/v1/models", json={"name": name, **fields})
    assert response.status_code == 200, response.text
    return response.json()["model"]


# ----- models ------------------------------------------------------------------------------


def test_model_lifecycle_and_errors(client):
    created = create(client, "demo", baseModel="x", tags={"a": "b"})
    assert created["name"] == "demo"
    assert created["baseModel"] == "x"
    assert created["tags"] == {"a": "b"}
    assert created["etag"] == "1"
    assert created["createdBy"] == "anonymous"
    assert created["createTime"].endswith("Z")
    create(client, "other")

    listed = client.get("/v1/models")
    assert listed.status_code == 200
    assert [m["name"] for m in listed.json()["models"]] == ["demo", "other"]
    paged = client.get("/v1/models", params={"pageSize": 1}).json()
    assert [m["name"] for m in paged["models"]] == ["demo"]
    rest = client.get("/v1/models", params={"pageSize": 1, "pageToken": paged["nextPageToken"]}).json()
    assert [m["name"] for m in rest["models"]] == ["other"]

    got = client.get("/v1/models/demo")
    assert got.status_code == 200
    assert got.json()["model"] == created

    patched = client.patch(
        "/v1/models/demo", params={"updateMask": "description"}, json={"description": "first", "etag": "1"}
    )
    assert patched.status_code == 200, patched.text
    model = patched.json()["model"]
    assert model["description"] == "first"
    assert model["etag"] == "2"
    assert model["baseModel"] == "x"  # not in the mask: untouched
    # Only masked fields are read: a baseModel in the body is ignored.
    masked = client.patch(
        "/v1/models/demo", params={"updateMask": "description"}, json={"description": "second", "baseModel": "y"}
    )
    assert masked.status_code == 200, masked.text
    assert masked.json()["model"]["baseModel"] == "x"
    assert client.get("/v1/models/demo").json()["model"]["description"] == "second"

    stale = client.patch(
        "/v1/models/demo", params={"updateMask": "description"}, json={"description": "late", "etag": "1"}
    )
    body = assert_error(stale, 409, ABORTED)
    assert detail(body, RESOURCE_INFO)["resourceName"] == "demo"
    assert client.get("/v1/models/demo").json()["model"]["description"] == "second"

    duplicate = client.post("/v1/models", json={"name": "demo", "baseModel": "z"})
    body = assert_error(duplicate, 409, ALREADY_EXISTS)
    assert detail(body, RESOURCE_INFO)["resourceName"] == "demo"
    assert client.get("/v1/models/demo").json()["model"]["baseModel"] == "x"

    missing = client.get("/v1/models/nope")
    body = assert_error(missing, 404, NOT_FOUND)
    info = detail(body, RESOURCE_INFO)
    assert (info["resourceType"], info["resourceName"]) == ("model", "nope")

    invalid = client.post("/v1/models", json={"name": "Bad_Name!"})
    body = assert_error(invalid, 400, INVALID_ARGUMENT)
    violations = detail(body, BAD_REQUEST)["fieldViolations"]
    assert [v["field"] for v in violations] == ["name"]
    assert "Bad_Name!" in violations[0]["description"]
    assert [m["name"] for m in client.get("/v1/models").json()["models"]] == ["demo", "other"]


# ----- datasets ----------------------------------------------------------------------------


def test_datasets(client, hub_home: Path, chat_dataset: Path, tmp_path: Path):
    registered = client.post("/v1/datasets", json={"name": "chat", "path": "chat.jsonl", "description": "qa"})
    assert registered.status_code == 200, registered.text
    dataset = registered.json()["dataset"]
    assert dataset["path"] == str(chat_dataset.resolve())
    assert dataset["sha256"] == hashlib.sha256(chat_dataset.read_bytes()).hexdigest()
    assert dataset["sizeBytes"] == str(chat_dataset.stat().st_size)
    assert dataset["recordCount"] == "2"
    assert dataset["format"] == "DATASET_FORMAT_CHAT"

    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"text": "secret"}\n')
    body = assert_error(client.post("/v1/datasets", json={"name": "out", "path": str(outside)}), 400, INVALID_ARGUMENT)
    assert [v["field"] for v in detail(body, BAD_REQUEST)["fieldViolations"]] == ["path"]
    assert "outside the data roots" in body["message"]

    (hub_home / "datasets" / "link.jsonl").symlink_to(outside)
    body = assert_error(client.post("/v1/datasets", json={"name": "link", "path": "link.jsonl"}), 400, INVALID_ARGUMENT)
    assert str(outside) in body["message"]  # says where the link really goes

    dotdot = client.post("/v1/datasets", json={"name": "dotdot", "path": "../../outside.jsonl"})
    assert_error(dotdot, 400, INVALID_ARGUMENT)

    missing = client.post("/v1/datasets", json={"name": "gone", "path": "gone.jsonl"})
    assert_error(missing, 404, NOT_FOUND)

    (hub_home / "datasets" / "bad.jsonl").write_text('{"text": "a"}\n{"text": "b"}\n{"text": \n{"text": "d"}\n')
    body = assert_error(client.post("/v1/datasets", json={"name": "bad", "path": "bad.jsonl"}), 400, INVALID_ARGUMENT)
    assert body["message"].startswith("line 3:"), body["message"]

    listed = client.get("/v1/datasets")
    assert listed.status_code == 200
    assert [d["name"] for d in listed.json()["datasets"]] == ["chat"]
    got = client.get("/v1/datasets/chat")
    assert got.status_code == 200
    assert got.json()["dataset"] == dataset
    assert_error(client.get("/v1/datasets/bad"), 404, NOT_FOUND)


# ----- versions, aliases, lineage, resolve -------------------------------------------------


def test_versions_aliases_lineage_and_resolve(client, model_dir: Path, chat_dataset: Path):
    create(client, "demo", baseModel="x")
    assert client.post("/v1/datasets", json={"name": "chat", "path": "chat.jsonl"}).status_code == 200

    first = client.post(
        "/v1/models/demo/versions", json={"artifactPath": str(model_dir), "lineage": {"dataset": "chat"}}
    )
    assert first.status_code == 200, first.text
    version = first.json()["version"]
    assert (version["model"], version["version"], version["kind"]) == ("demo", "1", "MODEL_VERSION_KIND_FULL")
    files = {f["path"]: f["sha256"] for f in version["files"]}
    assert files["config.json"] == hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest()
    assert set(files) == {"config.json", "model.safetensors", "tokenizer.json"}
    second = client.post("/v1/models/demo/versions", json={"artifactPath": str(model_dir)})
    assert second.status_code == 200, second.text
    assert second.json()["version"]["version"] == "2"

    versions = client.get("/v1/models/demo/versions")
    assert versions.status_code == 200
    assert [v["version"] for v in versions.json()["versions"]] == ["1", "2"]

    aliased = client.put("/v1/models/demo/aliases/prod", json={"version": 1})
    assert aliased.status_code == 200, aliased.text
    assert aliased.json()["model"]["aliases"] == {"prod": "1"}
    assert aliased.json()["model"]["latestVersion"] == "2"

    lineage = client.get("/v1/models/demo/versions/1/lineage")
    assert lineage.status_code == 200, lineage.text
    sha = hashlib.sha256(chat_dataset.read_bytes()).hexdigest()
    assert lineage.json()["lineage"]["dataset"] == "chat"
    assert lineage.json()["lineage"]["datasetSha256"] == sha
    assert lineage.json()["dataset"]["sha256"] == sha
    assert "dataset" not in client.get("/v1/models/demo/versions/2/lineage").json()["lineage"]

    by_alias = client.get("/v1/models:resolve", params={"reference": "demo@prod"})
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["version"]["version"] == "1"
    assert by_alias.json()["version"]["aliases"] == ["prod"]
    assert client.get("/v1/models:resolve", params={"reference": "demo"}).json()["version"]["version"] == "2"
    unknown_alias = client.get("/v1/models:resolve", params={"reference": "demo@canary"})
    assert_error(unknown_alias, 404, NOT_FOUND)
    assert_error(client.put("/v1/models/demo/aliases/prod", json={"version": 9}), 404, NOT_FOUND)
    assert_error(client.get("/v1/models/demo/versions/9/lineage"), 404, NOT_FOUND)


# ----- the event log -----------------------------------------------------------------------


def _populate(client: httpx.Client, model_dir: Path) -> None:
    create(client, "demo", baseModel="x")
    assert client.post("/v1/datasets", json={"name": "chat", "path": "chat.jsonl"}).status_code == 200
    create(client, "other")
    for _ in range(2):
        assert client.post("/v1/models/demo/versions", json={"artifactPath": str(model_dir)}).status_code == 200
    assert client.put("/v1/models/demo/aliases/prod", json={"version": 1}).status_code == 200
    assert client.put("/v1/models/demo/aliases/prod", json={"version": 2}).status_code == 200


def test_events_as_ndjson_and_sse_with_filters(client, model_dir: Path, chat_dataset: Path):
    _populate(client, model_dir)

    events = events_of(ndjson(client.get("/v1/events")))
    assert [e["type"] for e in events] == [
        "ModelRegistered", "DatasetRegistered", "ModelRegistered",
        "ModelVersionCreated", "ModelVersionCreated", "AliasMoved", "AliasMoved",
    ]  # fmt: skip
    positions = [int(e["position"]) for e in events]
    assert positions == sorted(set(positions)) and positions[0] >= 1
    assert [e["aggregate"] for e in events[:3]] == ["model/demo", "dataset/chat", "model/other"]
    assert events[0]["data"]["base_model"] == "x"
    assert all(e["metadata"]["principal"] == "anonymous" and e["metadata"]["requestId"] for e in events)

    moves = events_of(ndjson(client.get("/v1/events", params={"eventTypes": "AliasMoved"})))
    assert [(e["type"], e["data"]["version"]) for e in moves] == [("AliasMoved", 1), ("AliasMoved", 2)]
    demo = events_of(ndjson(client.get("/v1/events", params={"aggregate": "model/demo"})))
    assert len(demo) == 5
    assert {e["aggregate"] for e in demo} == {"model/demo"}
    after = events_of(ndjson(client.get("/v1/events", params={"afterPosition": positions[4], "limit": 1})))
    assert [int(e["position"]) for e in after] == [positions[5]]
    assert_error(client.get("/v1/events", params={"eventTypes": "NoSuchEvent"}), 400, INVALID_ARGUMENT)

    sse = client.get("/v1/events", params={"aggregate": "model/other"}, headers={"Accept": "text/event-stream"})
    assert sse.status_code == 200
    assert sse.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in sse.text.split("\n\n") if frame.strip()]
    assert all(frame.startswith("data: ") and "\n" not in frame for frame in frames), frames
    sse_events = [json.loads(frame.removeprefix("data: "))["event"] for frame in frames]
    assert [(e["type"], e["aggregate"]) for e in sse_events] == [("ModelRegistered", "model/other")]
    assert sse_events[0]["position"] == events[2]["position"]


def test_follow_stream_receives_events_recorded_after_it_started(client, base_url):
    create(client, "before")
    last = int(events_of(ndjson(client.get("/v1/events")))[-1]["position"])
    received: queue.Queue = queue.Queue()
    caught_up = threading.Event()

    def follow() -> None:
        try:
            with (
                httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as http,
                http.stream("GET", "/v1/events", params={"follow": "true"}) as response,
            ):
                received.put(("status", response.status_code))
                for line in response.iter_lines():
                    if not line:
                        continue
                    event = json.loads(line)["result"]["event"]
                    received.put(("event", event))
                    if int(event["position"]) >= last:
                        caught_up.set()
                    if event["aggregate"] == "model/after":
                        return  # leaving the with-blocks closes the stream
        except Exception as error:  # noqa: BLE001  (reported to the test through the queue)
            received.put(("error", repr(error)))
        finally:
            caught_up.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert caught_up.wait(15), "the follow stream never delivered the stored events"
    create(client, "after")
    thread.join(15)
    assert not thread.is_alive(), "the follow stream did not deliver the new event"
    items = []
    while not received.empty():
        items.append(received.get())
    assert items[0] == ("status", 200)
    assert not [item for item in items if item[0] == "error"], items
    events = [payload for kind, payload in items if kind == "event"]
    assert [e["aggregate"] for e in events] == ["model/before", "model/after"]
    assert int(events[1]["position"]) > last
    assert events[1]["type"] == "ModelRegistered"
    # The gateway and registry are still healthy after the client went away mid-stream.
    assert client.get("/v1/models/after").status_code == 200


# ----- auth --------------------------------------------------------------------------------


def test_api_keys_and_principal(hub_env):
    settings = load_settings({**hub_env, "MLXHUB_API_KEYS": "alice=k1,bob=k2"})
    server = RegistryServer(settings).start()
    try:
        with running(settings) as url, httpx.Client(base_url=url, timeout=15) as http:
            body = assert_error(http.post("/v1/models", json={"name": "demo"}), 401, UNAUTHENTICATED)
            assert "missing API key" in body["message"]
            assert http.get("/v1/models").status_code == 401
            assert http.get("/v1/events").status_code == 401
            wrong = http.get("/v1/models", headers={"Authorization": "Bearer nope"})
            assert_error(wrong, 401, UNAUTHENTICATED)
            assert wrong.headers["www-authenticate"] == "Bearer"

            alice = {"Authorization": "Bearer k1"}
            created = http.post("/v1/models", json={"name": "demo"}, headers=alice)
            assert created.status_code == 200, created.text
            assert created.json()["model"]["createdBy"] == "alice"
            bob = {"Authorization": "Bearer k2", "X-Request-Id": "req-42"}
            updated = http.patch("/v1/models/demo", json={"description": "by bob"}, headers=bob)
            assert updated.status_code == 200, updated.text
            assert updated.json()["model"]["createdBy"] == "alice"

            events = events_of(ndjson(http.get("/v1/events", headers=alice)))
            assert [(e["type"], e["metadata"]["principal"]) for e in events] == [
                ("ModelRegistered", "alice"), ("ModelUpdated", "bob"),
            ]  # fmt: skip
            assert events[1]["metadata"]["requestId"] == "req-42"
            # Nothing was written by the rejected calls.
            assert [m["name"] for m in http.get("/v1/models", headers=alice).json()["models"]] == ["demo"]
    finally:
        server.stop(grace=1)


# ----- concurrency -------------------------------------------------------------------------

WRITERS = 8


def _at_once(base_url: str, send) -> list[httpx.Response]:
    """Run `send(client, i)` in WRITERS threads released together; return the responses in order."""
    barrier = threading.Barrier(WRITERS)
    results: list[httpx.Response | BaseException | None] = [None] * WRITERS

    def work(i: int) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            http.get("/healthz")  # connect before the race starts
            barrier.wait(10)
            try:
                results[i] = send(http, i)
            except BaseException as error:  # noqa: BLE001
                results[i] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(r, httpx.Response) for r in results), results
    return results  # type: ignore[return-value]


def test_concurrent_creates_of_one_name_have_one_winner(client, base_url):
    responses = _at_once(base_url, lambda http, i: http.post("/v1/models", json={"name": "race", "baseModel": f"b{i}"}))
    assert Counter(r.status_code for r in responses) == {200: 1, 409: WRITERS - 1}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {ALREADY_EXISTS}
    winner = next(r.json()["model"] for r in responses if r.status_code == 200)
    assert client.get("/v1/models/race").json()["model"]["baseModel"] == winner["baseModel"]
    events = events_of(ndjson(client.get("/v1/events", params={"aggregate": "model/race"})))
    assert [e["type"] for e in events] == ["ModelRegistered"]


def test_concurrent_updates_with_one_etag_have_one_winner(client, base_url):
    etag = create(client, "contested")["etag"]
    responses = _at_once(
        base_url,
        lambda http, i: http.patch(
            "/v1/models/contested", params={"updateMask": "description"}, json={"description": f"d{i}", "etag": etag}
        ),
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 409: WRITERS - 1}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {ABORTED}
    winner = next(r.json()["model"] for r in responses if r.status_code == 200)
    current = client.get("/v1/models/contested").json()["model"]
    assert (current["description"], current["etag"]) == (winner["description"], str(int(etag) + 1))
    events = events_of(ndjson(client.get("/v1/events", params={"aggregate": "model/contested"})))
    assert [e["type"] for e in events] == ["ModelRegistered", "ModelUpdated"]


def test_gateway_metrics_and_one_trace_across_gateway_and_registry(registry, settings, finished_spans):
    """A curl request yields gateway HTTP metrics, registry RPC metrics, and one trace that
    spans the gateway and the registry, whose id lands in the event the request caused."""
    with running(settings) as base, httpx.Client(base_url=base) as client:
        assert client.post("/v1/models", json={"name": "traced"}).status_code == 200
        assert client.get("/v1/models/absent").status_code == 404
        metrics = client.get("/metrics").text
        event = json.loads(client.get("/v1/events").text.splitlines()[-1])["result"]["event"]
    assert 'mlxhub_http_requests_total{method="POST",route="/mlxhub.v1.RegistryService/CreateModel",status="200"}' in metrics
    assert 'route="/mlxhub.v1.RegistryService/GetModel",status="404"' in metrics
    assert 'mlxhub_rpc_requests_total{code="NOT_FOUND",method="GetModel",service="registry"}' in metrics
    trace_id = event["metadata"]["traceId"]
    in_trace = {span.name for span in finished_spans() if format(span.context.trace_id, "032x") == trace_id}
    assert "POST /v1/models" in in_trace  # the gateway's server span
    assert "/mlxhub.v1.RegistryService/CreateModel" in in_trace  # the registry's server span, same trace


def test_deep_health_reports_each_dependency_with_latency(settings, hub_env):
    from mlxhub.config import load_settings
    from mlxhub.embedded import free_port

    with running(settings) as base:
        healthy = httpx.get(f"{base}/health/deep").json()
    assert healthy["status"] == "ok"
    assert {c["name"] for c in healthy["checks"]} == {"postgres", "nats", "followers", "mlflow", "model_store", "memory"}
    assert all(c["ok"] and c["latencyMs"] >= 0 for c in healthy["checks"])
    broken = load_settings({**hub_env, "MLXHUB_NATS_URL": f"nats://127.0.0.1:{free_port()}"})
    with running(broken) as base:
        response = httpx.get(f"{base}/health/deep")
    assert response.status_code == 503
    failed = [c["name"] for c in response.json()["checks"] if not c["ok"]]
    assert failed == ["nats"]
