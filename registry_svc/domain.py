"""Registry aggregates: models (with their versions and aliases) and datasets.

Aggregate ids are uuid5 of the resource name, so two concurrent creations of
the same name collide on (id, version 1) in the event store and exactly one
wins: name uniqueness holds without a lock. Names never change, so the name
itself is the index. Every event carries `meta` (principal, request id, trace id) from the
call's audit context (mlxhub.audit), unless given (a `meta` argument: seeding, imports); the
methods that record who did it read their event's own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Snapshot, event

from mlxhub.audit import HubAggregate, Meta

NAMESPACE = UUID("6f1e0c1e-6a43-4c1b-9f55-0d4b1a7e2c11")

UPDATABLE_MODEL_FIELDS = ("base_model", "description", "tags")


def model_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"model/{name}")


def dataset_id(name: str) -> UUID:
    return uuid5(NAMESPACE, f"dataset/{name}")


def numbered(versions: dict[Any, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """`versions` keyed by number again: a snapshot is stored as JSON, whose keys are text."""
    return {int(number): version for number, version in versions.items()}


class Model(HubAggregate):
    """A registered model: its description, its numbered versions and its aliases.

    Snapshots (every 50 events, `RegistryApplication`) store its state as JSON, which turns the
    version numbers keying `versions` into text; a model read from one gets them back as numbers
    (without this, every model past 50 events lost its versions to lookups by number)."""

    class_version = 2  # snapshots taken before Model.Snapshot (the library's own class) are upcast

    class Snapshot(Snapshot):
        def mutate(self, _: None) -> Model:
            model = super().mutate(_)
            model.versions = numbered(model.versions)
            return model

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        state["versions"] = numbered(state["versions"])

    @staticmethod
    def create_id(name: str) -> UUID:
        return model_id(name)

    @event("ModelRegistered")
    def __init__(
        self,
        name: str,
        base_model: str,
        description: str,
        tags: dict[str, str],
        idempotency_key: str,
        meta: Meta | None = None,
    ) -> None:
        self.name = name
        self.base_model = base_model
        self.description = description
        self.tags = dict(tags)
        self.idempotency_key = idempotency_key
        self.created_by = (meta or {}).get("principal", "")
        self.versions: dict[int, dict[str, Any]] = {}
        self.aliases: dict[str, int] = {}
        self.version_keys: dict[str, int] = {}

    @event("ModelUpdated")
    def update(self, changes: dict[str, Any], meta: Meta | None = None) -> None:
        for field, value in changes.items():
            setattr(self, field, dict(value) if field == "tags" else value)

    @property
    def latest_version(self) -> int:
        return max(self.versions, default=0)

    @event("ModelVersionCreated")
    def create_version(
        self,
        version: int,
        artifact_path: str,
        kind: str,
        files: list[dict[str, Any]],
        metrics: dict[str, float],
        description: str,
        lineage: dict[str, Any],
        base_version: str,
        idempotency_key: str,
        create_time: datetime,
        meta: Meta | None = None,
    ) -> None:
        self.versions[version] = {
            "create_time": create_time,
            "version": version,
            "artifact_path": artifact_path,
            "kind": kind,
            "files": files,
            "metrics": metrics,
            "description": description,
            "lineage": lineage,
            "base_version": base_version,
            "status": "READY",
            "created_by": (meta or {}).get("principal", ""),
        }
        if idempotency_key:
            self.version_keys[idempotency_key] = version

    @event("AliasMoved")
    def move_alias(self, alias: str, version: int, previous_version: int, meta: Meta | None = None) -> None:
        self.aliases[alias] = version


class Dataset(HubAggregate):
    """A registered JSONL dataset: where it lies and what it contained when registered."""

    @staticmethod
    def create_id(name: str) -> UUID:
        return dataset_id(name)

    @event("DatasetRegistered")
    def __init__(
        self,
        name: str,
        path: str,
        sha256: str,
        size_bytes: int,
        record_count: int,
        format: str,
        description: str,
        idempotency_key: str,
        meta: Meta | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.record_count = record_count
        self.format = format
        self.description = description
        self.idempotency_key = idempotency_key
        self.created_by = (meta or {}).get("principal", "")


AGGREGATE_TYPES = {"Model": Model, "Dataset": Dataset}


def aggregate_label(aggregate_type: str, name: str) -> str:
    """Public handle of an aggregate in the event log: `model/<name>` or `dataset/<name>`."""
    return f"{aggregate_type.lower()}/{name}"
