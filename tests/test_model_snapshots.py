"""A model read from a snapshot is the model: snapshots (every 50 events) store its state as JSON,
whose keys are text, and its versions are keyed by number. Before Model.Snapshot, every model past
50 events answered "has no version 3 (latest is 9)" to SetAlias and failed UpdateModel."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from eventsourcing.domain import Snapshot

from mlxhub.v1 import registry_pb2 as pb
from registry_svc.domain import Model, model_id

VERSIONS = 55  # past the registry's snapshotting interval of 50 events


def add_versions(app, name: str, count: int) -> None:
    for number in range(1, count + 1):
        model = app.get_model(name)
        model.create_version(version=number, artifact_path=f"/models/{name}/{number}", kind="FULL", files=[],
                             metrics={"loss": 1.0 / number}, description="", lineage={}, base_version="",
                             idempotency_key=f"key-{number}", create_time=datetime.now(UTC))
        app.save(model)


def test_a_model_past_its_snapshot_keeps_its_versions_by_number(registry, registry_stub):
    app = registry.app
    registry_stub.CreateModel(pb.CreateModelRequest(name="busy", base_model="base"))
    add_versions(app, "busy", VERSIONS)
    assert list(app.snapshots.get(model_id("busy"))), "no snapshot was taken: the test reads no snapshot"

    model = app.get_model("busy")
    assert sorted(model.versions) == list(range(1, VERSIONS + 1))
    assert model.latest_version == VERSIONS and model.version_keys["key-3"] == 3
    assert model.versions[3]["create_time"].tzinfo is not None  # nested values decoded as before

    # The calls that failed on such a model
    moved = registry_stub.SetAlias(pb.SetAliasRequest(name="busy", alias="prod", version=3))
    assert moved.model.aliases["prod"] == 3 and moved.previous_version == 0
    got = registry_stub.GetModelVersion(pb.GetModelVersionRequest(name="busy", version=3))
    assert got.version.artifact_path == "/models/busy/3" and "prod" in got.version.aliases
    resolved = registry_stub.ResolveModelReference(pb.ResolveModelReferenceRequest(reference="busy@prod"))
    assert resolved.version.version == 3
    updated = registry_stub.UpdateModel(pb.UpdateModelRequest(
        name="busy", model=pb.Model(description="still busy"), update_mask={"paths": ["description"]}))
    assert updated.model.description == "still busy"
    with pytest.raises(grpc.RpcError) as missing:
        registry_stub.SetAlias(pb.SetAliasRequest(name="busy", alias="prod", version=VERSIONS + 1))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND and f"latest is {VERSIONS}" in missing.value.details()


def test_a_snapshot_taken_by_the_librarys_own_class_is_upcast(registry, registry_stub):
    """Databases hold snapshots taken before Model.Snapshot existed (the library's class, no class version)."""
    app = registry.app
    registry_stub.CreateModel(pb.CreateModelRequest(name="older", base_model="base"))
    add_versions(app, "older", 3)
    model = app.get_model("older")
    old = Snapshot.take(model)
    del old.state["class_version"]  # as Model (class version 1) was snapshotted; stored, its keys turn to text
    app.snapshots.put([old])

    again = app.get_model("older")
    assert isinstance(again, Model) and sorted(again.versions) == [1, 2, 3]
    assert registry_stub.SetAlias(pb.SetAliasRequest(name="older", alias="prod", version=2)).model.aliases["prod"] == 2
