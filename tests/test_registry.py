"""The registry through its gRPC API, on a real PostgreSQL and NATS."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from mlxhub.v1 import common_pb2
from mlxhub.v1 import registry_pb2 as pb


def error_of(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        result = call(*args, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)
    return info.value


def field_violations(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


def events(stub, **kwargs) -> list[common_pb2.Event]:
    return [r.event for r in stub.ReadEvents(pb.ReadEventsRequest(**kwargs))]


def test_create_get_and_list_models_with_pages(registry_stub):
    for name in ("gamma", "alpha", "beta"):
        registry_stub.CreateModel(pb.CreateModelRequest(name=name, base_model="smollm2", tags={"team": "nlp"}))
    got = registry_stub.GetModel(pb.GetModelRequest(name="alpha")).model
    assert (got.name, got.base_model, dict(got.tags), got.etag) == ("alpha", "smollm2", {"team": "nlp"}, "1")
    first = registry_stub.ListModels(pb.ListModelsRequest(page_size=2))
    assert [m.name for m in first.models] == ["alpha", "beta"] and first.next_page_token
    second = registry_stub.ListModels(pb.ListModelsRequest(page_size=2, page_token=first.next_page_token))
    assert [m.name for m in second.models] == ["gamma"] and not second.next_page_token
    bad = error_of(registry_stub.ListModels, pb.ListModelsRequest(page_token="garbage"))
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(bad)


@pytest.mark.parametrize("name", ["", "UPPER", "-dash", "a" * 65, "sp ace", "trailing-"])
def test_invalid_names_are_rejected_and_change_nothing(registry_stub, name):
    error = error_of(registry_stub.CreateModel, pb.CreateModelRequest(name=name))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(error) == ["name"]
    assert "lower-case" in error.details() or "empty" in error.details()
    assert events(registry_stub) == []


def test_duplicate_name_conflicts_but_idempotency_key_returns_the_first(registry_stub):
    first = registry_stub.CreateModel(pb.CreateModelRequest(name="m", idempotency_key="k1")).model
    again = registry_stub.CreateModel(pb.CreateModelRequest(name="m", idempotency_key="k1")).model
    assert again.create_time == first.create_time
    error = error_of(registry_stub.CreateModel, pb.CreateModelRequest(name="m"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert len(events(registry_stub)) == 1


def test_concurrent_creates_of_one_name_have_exactly_one_winner(registry_stub):
    def create(_):
        try:
            registry_stub.CreateModel(pb.CreateModelRequest(name="race"))
            return "ok"
        except grpc.RpcError as exc:
            return exc.code()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    assert results.count("ok") == 1
    assert results.count(grpc.StatusCode.ALREADY_EXISTS) == 7
    assert [e.type for e in events(registry_stub)] == ["ModelRegistered"]


def test_update_with_field_mask_etag_and_noop(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m", description="old", tags={"a": "1"}))
    updated = registry_stub.UpdateModel(
        pb.UpdateModelRequest(
            name="m",
            model=pb.Model(description="new", base_model="ignored"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        )
    ).model
    assert (updated.description, updated.base_model, updated.etag) == ("new", "", "2")
    stale = error_of(
        registry_stub.UpdateModel,
        pb.UpdateModelRequest(name="m", model=pb.Model(description="x", etag="1"), update_mask={"paths": ["description"]}),
    )
    assert stale.code() == grpc.StatusCode.ABORTED and "etag" in stale.details()
    registry_stub.UpdateModel(pb.UpdateModelRequest(name="m", model=pb.Model(description="new"), update_mask={"paths": ["description"]}))
    bad_field = error_of(registry_stub.UpdateModel, pb.UpdateModelRequest(name="m", update_mask={"paths": ["name"]}))
    assert bad_field.code() == grpc.StatusCode.INVALID_ARGUMENT and "update_mask" in field_violations(bad_field)
    missing = error_of(registry_stub.UpdateModel, pb.UpdateModelRequest(name="nope", model=pb.Model(description="x")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND
    assert [e.type for e in events(registry_stub)] == ["ModelRegistered", "ModelUpdated"]  # the no-op made no event


def test_concurrent_updates_with_one_etag_have_one_winner(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))

    def update(i):
        try:
            registry_stub.UpdateModel(
                pb.UpdateModelRequest(name="m", model=pb.Model(description=f"d{i}", etag="1"), update_mask={"paths": ["description"]})
            )
            return "ok"
        except grpc.RpcError as exc:
            return exc.code()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(update, range(8)))
    assert results.count("ok") == 1 and results.count(grpc.StatusCode.ABORTED) == 7


def test_versions_are_monotonic_under_concurrency_and_hash_every_file(registry_stub, model_dir):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    with ThreadPoolExecutor(6) as pool:
        created = list(pool.map(
            lambda i: registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir))).version.version,
            range(6),
        ))
    assert sorted(created) == [1, 2, 3, 4, 5, 6]
    version = registry_stub.GetModelVersion(pb.GetModelVersionRequest(name="m", version=3)).version
    assert sorted(f.path for f in version.files) == ["config.json", "model.safetensors", "tokenizer.json"]
    import hashlib

    assert {f.path: f.sha256 for f in version.files}["config.json"] == hashlib.sha256((model_dir / "config.json").read_bytes()).hexdigest()
    listed = registry_stub.ListModelVersions(pb.ListModelVersionsRequest(name="m", page_size=4))
    assert [v.version for v in listed.versions] == [1, 2, 3, 4] and listed.next_page_token
    assert registry_stub.GetModel(pb.GetModelRequest(name="m")).model.latest_version == 6
    assert error_of(registry_stub.GetModelVersion, pb.GetModelVersionRequest(name="m", version=9)).code() == grpc.StatusCode.NOT_FOUND


def test_version_idempotency_key(registry_stub, model_dir):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    request = pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir), idempotency_key="upload-1")
    assert registry_stub.CreateModelVersion(request).version.version == 1
    assert registry_stub.CreateModelVersion(request).version.version == 1
    assert registry_stub.GetModel(pb.GetModelRequest(name="m")).model.latest_version == 1


def test_bad_artifact_directories(registry_stub, tmp_path, model_dir):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = {
        "": grpc.StatusCode.INVALID_ARGUMENT,
        "relative/dir": grpc.StatusCode.INVALID_ARGUMENT,
        str(tmp_path / "missing"): grpc.StatusCode.NOT_FOUND,
        str(empty): grpc.StatusCode.INVALID_ARGUMENT,
    }
    for path, code in cases.items():
        error = error_of(registry_stub.CreateModelVersion, pb.CreateModelVersionRequest(name="m", artifact_path=path))
        assert error.code() == code, path
        assert "artifact_path" in field_violations(error)
    (model_dir / "model.safetensors").unlink()
    no_weights = error_of(registry_stub.CreateModelVersion, pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir)))
    assert "safetensors" in no_weights.details()
    assert [e.type for e in events(registry_stub)] == ["ModelRegistered"]


def test_adapter_versions_need_a_full_parent(registry_stub, model_dir, tmp_path):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir)))
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text('{"fine_tune_type": "lora"}')
    (adapter / "adapters.safetensors").write_bytes(b"weights")
    orphan = error_of(registry_stub.CreateModelVersion, pb.CreateModelVersionRequest(name="m", artifact_path=str(adapter)))
    assert orphan.code() == grpc.StatusCode.INVALID_ARGUMENT and "lineage.parent_version" in field_violations(orphan)
    made = registry_stub.CreateModelVersion(
        pb.CreateModelVersionRequest(name="m", artifact_path=str(adapter), lineage=common_pb2.Lineage(parent_version="m"))
    ).version
    assert made.kind == pb.MODEL_VERSION_KIND_ADAPTER and made.base_version == "m/versions/1"
    resolved = registry_stub.ResolveModelReference(pb.ResolveModelReferenceRequest(reference="m/versions/2"))
    assert resolved.version.version == 2 and resolved.base_version.version == 1


def test_aliases_resolve_move_and_keep_history(registry_stub, model_dir):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    for _ in range(2):
        registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir)))
    assert registry_stub.SetAlias(pb.SetAliasRequest(name="m", alias="prod", version=1)).previous_version == 0
    between = datetime.now(UTC)
    time.sleep(0.05)
    moved = registry_stub.SetAlias(pb.SetAliasRequest(name="m", alias="prod", version=2))
    assert moved.previous_version == 1 and moved.model.aliases["prod"] == 2
    resolve = lambda ref: registry_stub.ResolveModelReference(pb.ResolveModelReferenceRequest(reference=ref)).version.version
    assert (resolve("m@prod"), resolve("m"), resolve("m/versions/1"), resolve("m@latest")) == (2, 2, 1, 2)
    at = timestamp_pb2.Timestamp()
    at.FromDatetime(between)
    history = registry_stub.GetAliasHistory(pb.GetAliasHistoryRequest(name="m", alias="prod", at_time=at))
    assert [(m.previous_version, m.version) for m in history.moves] == [(0, 1), (1, 2)]
    assert history.version_at_time == 1
    assert history.moves[0].position < history.moves[1].position
    assert registry_stub.GetModelVersion(pb.GetModelVersionRequest(name="m", version=2)).version.aliases == ["prod"]
    for request, code in [
        (pb.SetAliasRequest(name="m", alias="latest", version=1), grpc.StatusCode.INVALID_ARGUMENT),
        (pb.SetAliasRequest(name="m", alias="prod", version=7), grpc.StatusCode.NOT_FOUND),
        (pb.SetAliasRequest(name="nope", alias="prod", version=1), grpc.StatusCode.NOT_FOUND),
    ]:
        assert error_of(registry_stub.SetAlias, request).code() == code
    for ref, code in [("m@staging", grpc.StatusCode.NOT_FOUND), ("M@@x", grpc.StatusCode.INVALID_ARGUMENT)]:
        assert error_of(registry_stub.ResolveModelReference, pb.ResolveModelReferenceRequest(reference=ref)).code() == code


def test_datasets_are_hashed_counted_and_typed(registry_stub, hub_home, chat_dataset):
    import hashlib

    made = registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path="chat.jsonl")).dataset
    assert made.sha256 == hashlib.sha256(chat_dataset.read_bytes()).hexdigest()
    assert (made.record_count, made.format, made.size_bytes) == (2, pb.DATASET_FORMAT_CHAT, chat_dataset.stat().st_size)
    (hub_home / "datasets" / "c.jsonl").write_text('{"prompt": "a", "completion": "b"}\n')
    (hub_home / "datasets" / "t.jsonl").write_text('{"text": "hello"}\n{"text": "world"}\n')
    assert registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="c", path="c.jsonl")).dataset.format == pb.DATASET_FORMAT_COMPLETIONS
    assert registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="t", path=str(hub_home / "datasets" / "t.jsonl"))).dataset.format == pb.DATASET_FORMAT_TEXT
    assert [d.name for d in registry_stub.ListDatasets(pb.ListDatasetsRequest()).datasets] == ["c", "chat", "t"]
    assert error_of(registry_stub.RegisterDataset, pb.RegisterDatasetRequest(name="chat", path="c.jsonl")).code() == grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"text": "a"}\n{"text": "b"\n', "line 2"),
        ('{"text": "a"}\n\n{"text": "b"}\n', "line 2"),
        ('{"text": "a"}\n{"prompt": "p", "completion": "c"}\n', "line 2"),
        ('{"messages": []}\n', "line 1"),
        ('[1, 2]\n', "line 1"),
        ('{"other": 1}\n', "line 1"),
        ("", "no records"),
        ('\xff\xfe garbage\n', "line 1"),
    ],
)
def test_malformed_datasets_name_the_first_bad_line(registry_stub, hub_home, content, needle):
    (hub_home / "datasets" / "bad.jsonl").write_text(content, encoding="latin-1")
    error = error_of(registry_stub.RegisterDataset, pb.RegisterDatasetRequest(name="bad", path="bad.jsonl"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in error.details()
    assert events(registry_stub) == []


def test_dataset_paths_must_stay_under_the_data_roots(registry_stub, hub_home, tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"text": "x"}\n')
    (hub_home / "datasets" / "escape.jsonl").symlink_to(outside)
    (hub_home / "datasets" / "dir").mkdir()
    for path, code in [
        (str(outside), grpc.StatusCode.INVALID_ARGUMENT),
        ("escape.jsonl", grpc.StatusCode.INVALID_ARGUMENT),
        ("../../outside.jsonl", grpc.StatusCode.INVALID_ARGUMENT),
        ("missing.jsonl", grpc.StatusCode.NOT_FOUND),
        ("dir", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        error = error_of(registry_stub.RegisterDataset, pb.RegisterDatasetRequest(name="d", path=path))
        assert error.code() == code, path
        assert field_violations(error) == ["path"], path
    assert events(registry_stub) == []


def test_lineage_names_dataset_checksum_parameters_and_parents(registry_stub, model_dir, chat_dataset):
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="chat", path=str(chat_dataset)))
    registry_stub.CreateModel(pb.CreateModelRequest(name="m", base_model="smollm2"))
    registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir)))
    lineage = common_pb2.Lineage(parent_version="m/versions/1", dataset="chat", seed=7, base_model="smollm2")
    lineage.parameters.update({"rank": 8, "learning_rate": 1e-5})
    registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir), lineage=lineage))
    got = registry_stub.GetLineage(pb.GetLineageRequest(name="m", version=2))
    assert got.lineage.dataset_sha256 == got.dataset.sha256 != ""
    assert (got.lineage.model, got.lineage.version, got.lineage.seed) == ("m", 2, 7)
    assert dict(got.lineage.parameters)["rank"] == 8
    assert [a.version for a in got.ancestors] == [1]
    assert len(got.lineage.files) == 3
    wrong = common_pb2.Lineage(dataset="chat", dataset_sha256="0" * 64)
    error = error_of(registry_stub.CreateModelVersion, pb.CreateModelVersionRequest(name="m", artifact_path=str(model_dir), lineage=wrong))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "lineage.dataset_sha256" in field_violations(error)
    unknown = error_of(registry_stub.CreateModelVersion, pb.CreateModelVersionRequest(
        name="m", artifact_path=str(model_dir), lineage=common_pb2.Lineage(dataset="nope")))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


def test_read_events_in_order_with_filters_and_metadata(registry_stub, model_dir):
    registry_stub.CreateModel(pb.CreateModelRequest(name="a"), metadata=[("x-request-id", "req-42")])
    registry_stub.CreateModel(pb.CreateModelRequest(name="b"))
    registry_stub.CreateModelVersion(pb.CreateModelVersionRequest(name="a", artifact_path=str(model_dir)))
    registry_stub.SetAlias(pb.SetAliasRequest(name="a", alias="prod", version=1))
    log = events(registry_stub)
    assert [e.type for e in log] == ["ModelRegistered", "ModelRegistered", "ModelVersionCreated", "AliasMoved"]
    assert [e.position for e in log] == sorted(e.position for e in log)
    assert log[0].metadata.request_id == "req-42" and log[0].metadata.principal == "anonymous"
    assert log[0].aggregate == "model/a" and log[2].aggregate == "model/a" and log[2].aggregate_version == 2
    assert dict(log[3].data) == {"alias": "prod", "version": 1, "previous_version": 0}
    assert [e.type for e in events(registry_stub, aggregate="model/a")] == ["ModelRegistered", "ModelVersionCreated", "AliasMoved"]
    assert [e.aggregate for e in events(registry_stub, event_types=["ModelRegistered"])] == ["model/a", "model/b"]
    assert [e.position for e in events(registry_stub, after_position=log[1].position)] == [log[2].position, log[3].position]
    assert len(events(registry_stub, limit=2)) == 2
    for bad in ({"event_types": ["Nope"]}, {"aggregate": "thing/x"}, {"aggregate_types": ["Job"]}, {"after_position": -1}):
        assert error_of(registry_stub.ReadEvents, pb.ReadEventsRequest(**bad)).code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_repeated_request_id_counts_by_its_first_value(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="a"), metadata=[("x-request-id", "first"),
                                                                         ("x-request-id", "second")])
    assert events(registry_stub)[0].metadata.request_id == "first"


def test_follow_streams_new_events_live_and_stops_on_cancel(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="before"))
    stream = registry_stub.ReadEvents(pb.ReadEventsRequest(follow=True))
    received = []

    def consume():
        try:
            for response in stream:
                received.append(response.event.aggregate)
        except grpc.RpcError as exc:
            received.append(exc.code())

    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(0.3)
    registry_stub.CreateModel(pb.CreateModelRequest(name="after"))
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert received[:2] == ["model/before", "model/after"]
    stream.cancel()
    reader.join(5)
    assert not reader.is_alive()
    assert received[-1] == grpc.StatusCode.CANCELLED


def test_filters_that_match_no_event_class_return_no_events(registry_stub, chat_dataset):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m"))
    registry_stub.RegisterDataset(pb.RegisterDatasetRequest(name="d", path=str(chat_dataset)))
    assert len(events(registry_stub)) == 2
    assert events(registry_stub, event_types=["DatasetRegistered"], aggregate_types=["Model"]) == []
    assert [e.type for e in events(registry_stub, event_types=["DatasetRegistered"], aggregate_types=["Dataset"])] == [
        "DatasetRegistered"
    ]
    # Following such a filter sends nothing, now or later, and ends when the client leaves.
    stream = registry_stub.ReadEvents(
        pb.ReadEventsRequest(follow=True, event_types=["DatasetRegistered"], aggregate_types=["Model"])
    )
    received = []

    def consume():
        try:
            received.extend(response.event for response in stream)
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.CANCELLED

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    registry_stub.CreateModel(pb.CreateModelRequest(name="later"))
    time.sleep(0.5)
    assert received == []
    stream.cancel()
    reader.join(5)
    assert not reader.is_alive()


def test_auth_needs_a_key_and_records_the_principal(hub_env):
    from mlxhub.config import load_settings
    from mlxhub.v1 import registry_pb2_grpc
    from registry_svc.server import RegistryServer

    server = RegistryServer(load_settings({**hub_env, "MLXHUB_API_KEYS": "alice=k1,bob=k2"})).start()
    try:
        stub = registry_pb2_grpc.RegistryServiceStub(grpc.insecure_channel(server.address))
        for metadata in ([], [("authorization", "Bearer wrong")], [("authorization", "k1")]):
            error = error_of(stub.CreateModel, pb.CreateModelRequest(name="m"), metadata=metadata)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in error.details()
        assert error_of(stub.ReadEvents, pb.ReadEventsRequest()).code() == grpc.StatusCode.UNAUTHENTICATED
        made = stub.CreateModel(pb.CreateModelRequest(name="m"), metadata=[("authorization", "Bearer k2")]).model
        assert made.created_by == "bob"
        log = [r.event for r in stub.ReadEvents(pb.ReadEventsRequest(), metadata=[("authorization", "Bearer k1")])]
        assert [e.metadata.principal for e in log] == ["bob"]
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(grpc.insecure_channel(server.address))
        assert health.Check(health_pb2.HealthCheckRequest(service="mlxhub.v1.RegistryService")).status == health_pb2.HealthCheckResponse.SERVING
    finally:
        server.stop(grace=1)


def test_oversized_requests_are_refused(registry_stub):
    error = error_of(registry_stub.CreateModel, pb.CreateModelRequest(name="m", description="x" * (5 * 1024 * 1024)))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    long_text = error_of(registry_stub.CreateModel, pb.CreateModelRequest(name="m", description="x" * 5000))
    assert long_text.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(long_text) == ["description"]


def test_event_payloads_are_json(registry_stub):
    registry_stub.CreateModel(pb.CreateModelRequest(name="m", tags={"k": "v"}))
    from mlxhub.events import payload_of

    decoded = json.loads(payload_of(events(registry_stub)[0]))
    assert decoded["type"] == "ModelRegistered" and decoded["data"]["tags"] == {"k": "v"}


def test_rpc_metrics_count_by_code_and_trace_ids_reach_event_metadata(registry_stub):
    from prometheus_client import REGISTRY

    def count(method, code):
        return REGISTRY.get_sample_value(
            "mlxhub_rpc_requests_total", {"service": "registry", "method": method, "code": code}
        ) or 0.0

    before_missing, before_ok = count("GetModel", "NOT_FOUND"), count("CreateModel", "OK")
    error_of(registry_stub.GetModel, pb.GetModelRequest(name="absent"))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    registry_stub.CreateModel(
        pb.CreateModelRequest(name="traced"), metadata=[("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01")]
    )
    assert count("GetModel", "NOT_FOUND") == before_missing + 1
    assert count("CreateModel", "OK") == before_ok + 1
    assert events(registry_stub)[-1].metadata.trace_id == trace_id
    assert REGISTRY.get_sample_value("mlxhub_projection_lag_events", {"application": "registry"}) == 0
