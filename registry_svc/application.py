"""The registry's commands and queries (the service layer), on an event-sourced
eventsourcing `Application`. gRPC and proto stay outside: this module speaks
in aggregates, plain values and `HubError`s; who and why come from the audit context."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from mlxhub import audit, bounds
from mlxhub.errors import Aborted, AlreadyExists, InvalidArgument, NotFound
from mlxhub.eventstore import HubApplication
from mlxhub.names import RESERVED_ALIASES, ModelReference, name_problem, parse_reference, version_name
from mlxhub.v1 import registry_pb2
from mlxhub.validation import check_line, check_numbers, check_values
from mlxhub.validation import check_text as check_controls
from registry_svc.domain import Dataset, Model, dataset_id, model_id
from registry_svc.files import inspect_dataset, inspect_model_dir, resolve_under_roots

# The limits are declared in proto/mlxhub/v1/registry.proto (`(mlxhub.v1.bounds)`); read here
# for the checks below, which also guard callers that do not come through gRPC.
_TAG_BOUNDS = bounds.of(registry_pb2.CreateModelRequest, "tags")
MAX_TEXT = bounds.of(registry_pb2.CreateModelRequest, "description").max_length
MAX_TAGS = _TAG_BOUNDS.max_items
MAX_TAG_KEY = _TAG_BOUNDS.keys.max_length
MAX_TAG_VALUE = _TAG_BOUNDS.items.max_length
VERSION_CREATE_ATTEMPTS = 8


def check_name(value: str, field: str, what: str) -> None:
    problem = name_problem(value, what)
    if problem:
        raise InvalidArgument(problem, field=field)


def check_text(value: str, field: str, multiline: bool = True) -> None:
    """Bounded text without control characters (free text may hold tabs and line breaks)."""
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{field} is {len(value)} characters long; the limit is {MAX_TEXT}", field=field)
    (check_controls if multiline else check_line)(value, field)


def check_tags(tags: dict[str, str]) -> None:
    if len(tags) > MAX_TAGS:
        raise InvalidArgument(f"{len(tags)} tags given; the limit is {MAX_TAGS}", field="tags")
    for key, value in tags.items():
        if not key or len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
            raise InvalidArgument(
                f"tag {key!r}: keys need 1-{MAX_TAG_KEY} characters and values at most {MAX_TAG_VALUE}",
                field=f"tags[{key}]"
            )
        check_line(key, f"tags[{key!r}] key")
        check_line(value, f"tags[{key}]")


class RegistryApplication(HubApplication):
    name = "registry"
    snapshotting_intervals = {Model: 50}  # noqa: RUF012  (the library's class attribute)

    def __init__(self, env: dict[str, str] | None = None, data_roots: tuple = ()) -> None:
        super().__init__(env)
        self.data_roots = tuple(data_roots)

    # ----- models -------------------------------------------------------------------------

    def get_model(self, name: str) -> Model:
        check_name(name, "name", "model name")
        try:
            return self.repository.get(model_id(name))
        except AggregateNotFoundError:
            raise NotFound(
                f"model {name!r} not found; create it first (POST /v1/models)",
                resource_type="model",
                resource_name=name,
            ) from None

    def create_model(
        self, name: str, base_model: str, description: str, tags: dict[str, str], idempotency_key: str
    ) -> Model:
        check_name(name, "name", "model name")
        check_text(base_model, "base_model", multiline=False)
        check_text(description, "description")
        check_tags(tags)
        check_line(idempotency_key, "idempotency_key")
        model = Model(
            name=name,
            base_model=base_model,
            description=description,
            tags=dict(tags),
            idempotency_key=idempotency_key,
        )
        try:
            self.save(model)
        except IntegrityError:
            existing = self.repository.get(model.id)
            if idempotency_key and existing.idempotency_key == idempotency_key:
                return existing
            raise AlreadyExists(
                f"model {name!r} already exists; pick another name or update it with PATCH /v1/models/{name}",
                resource_type="model",
                resource_name=name,
            ) from None
        return model

    def update_model(self, name: str, changes: dict[str, Any], etag: str) -> Model:
        """Change some of `UPDATABLE_MODEL_FIELDS` (the caller picks them: the update mask)."""
        for field in ("base_model", "description"):
            if field in changes:
                check_text(changes[field], field, multiline=field == "description")
        if "tags" in changes:
            check_tags(changes["tags"])
        model = self.get_model(name)
        if etag and etag != str(model.version):
            raise Aborted(
                f"model {name!r} changed since etag {etag} (now {model.version}); fetch it again and retry",
                resource_type="model",
                resource_name=name,
            )
        effective = {k: v for k, v in changes.items() if getattr(model, k) != v}
        if not effective:
            return model
        model.update(changes=effective)
        try:
            self.save(model)
        except IntegrityError:
            raise Aborted(
                f"model {name!r} was changed concurrently; fetch it again and retry",
                resource_type="model",
                resource_name=name,
            ) from None
        return model

    # ----- versions -----------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> tuple[Model, dict[str, Any]]:
        model = self.get_model(name)
        if version <= 0:
            raise InvalidArgument(f"version must be a positive integer, got {version}", field="version")
        if version not in model.versions:
            raise NotFound(
                f"model {name!r} has no version {version} (latest is {model.latest_version})",
                resource_type="model_version",
                resource_name=version_name(name, version),
            )
        return model, model.versions[version]

    def resolve(self, reference: ModelReference | str) -> tuple[Model, dict[str, Any]]:
        """Resolve `name`, `name@alias` or `name/versions/N` to one version."""
        if isinstance(reference, str):
            try:
                reference = parse_reference(reference)
            except ValueError as exc:
                raise InvalidArgument(str(exc), field="reference") from None
        model = self.get_model(reference.name)
        if reference.version:
            return self.get_version(reference.name, reference.version)
        if reference.alias:
            if reference.alias not in model.aliases:
                known = ", ".join(sorted(model.aliases)) or "none"
                raise NotFound(
                    f"model {reference.name!r} has no alias {reference.alias!r} (aliases: {known})",
                    resource_type="alias",
                    resource_name=str(reference),
                )
            return model, model.versions[model.aliases[reference.alias]]
        if not model.versions:
            raise NotFound(
                f"model {reference.name!r} has no versions yet; register one first",
                resource_type="model_version",
                resource_name=str(reference),
            )
        return model, model.versions[model.latest_version]

    def create_version(
        self,
        name: str,
        artifact_path: str,
        description: str,
        metrics: dict[str, float],
        lineage: dict[str, Any],
        idempotency_key: str,
    ) -> tuple[Model, dict[str, Any]]:
        check_text(description, "description")
        check_text(artifact_path, "artifact_path", multiline=False)
        check_numbers(metrics, "metrics")
        check_values(lineage, "lineage")
        check_line(idempotency_key, "idempotency_key")
        model = self.get_model(name)
        if idempotency_key in model.version_keys:
            return model, model.versions[model.version_keys[idempotency_key]]
        info = inspect_model_dir(artifact_path)
        lineage = dict(lineage)
        base_version = ""
        parent = lineage.get("parent_version", "")
        if parent:
            parent_model, parent_version = self.resolve_field(parent, "lineage.parent_version")
            lineage["parent_version"] = version_name(parent_model.name, parent_version["version"])
            if info.kind == "ADAPTER":
                if parent_version["kind"] != "FULL":
                    raise InvalidArgument(
                        f"lineage.parent_version {parent!r} is an adapter; an adapter applies to a full model version",
                        field="lineage.parent_version",
                    )
                base_version = lineage["parent_version"]
        elif info.kind == "ADAPTER":
            raise InvalidArgument(
                "adapter versions need lineage.parent_version naming the full model version they apply to",
                field="lineage.parent_version",
            )
        if lineage.get("dataset"):
            dataset = self.get_dataset(lineage["dataset"], field="lineage.dataset")
            given = lineage.get("dataset_sha256")
            if given and given != dataset.sha256:
                raise InvalidArgument(
                    f"lineage.dataset_sha256 {given} differs from dataset {dataset.name!r} as registered "
                    f"({dataset.sha256}); register the changed file as a new dataset",
                    field="lineage.dataset_sha256",
                )
            lineage["dataset_sha256"] = dataset.sha256
        lineage.setdefault("source", "registered")
        lineage["files"] = info.files
        for _ in range(VERSION_CREATE_ATTEMPTS):
            number = model.latest_version + 1
            lineage.update(model=name, version=number, created_by=audit.principal())
            model.create_version(
                version=number,
                artifact_path=str(info.path),
                kind=info.kind,
                files=info.files,
                metrics=dict(metrics),
                description=description,
                lineage=lineage,
                base_version=base_version,
                idempotency_key=idempotency_key,
                create_time=datetime.now(UTC),
            )
            try:
                self.save(model)
                return model, model.versions[number]
            except IntegrityError:
                model = self.get_model(name)  # another version landed first: take the next number
                if idempotency_key in model.version_keys:
                    return model, model.versions[model.version_keys[idempotency_key]]
        raise Aborted(f"model {name!r} is being changed by many writers at once; retry", resource_type="model")

    def resolve_field(self, reference: str, field: str) -> tuple[Model, dict[str, Any]]:
        try:
            return self.resolve(parse_reference(reference))
        except ValueError as exc:
            raise InvalidArgument(str(exc), field=field) from None

    def set_alias(self, name: str, alias: str, version: int) -> tuple[Model, int]:
        check_name(alias, "alias", "alias")
        if alias in RESERVED_ALIASES:
            raise InvalidArgument(f"alias {alias!r} is reserved (it always means the newest version)", field="alias")
        model, _ = self.get_version(name, version)
        previous = model.aliases.get(alias, 0)
        if previous == version:
            return model, previous
        model.move_alias(alias=alias, version=version, previous_version=previous)
        try:
            self.save(model)
        except IntegrityError:
            raise Aborted(
                f"model {name!r} was changed concurrently while moving {alias!r}; retry", resource_type="model"
            ) from None
        return model, previous

    # ----- datasets -----------------------------------------------------------------------

    def get_dataset(self, name: str, field: str = "name") -> Dataset:
        check_name(name, field, "dataset name")
        try:
            return self.repository.get(dataset_id(name))
        except AggregateNotFoundError:
            raise NotFound(
                f"dataset {name!r} not found; register it first (POST /v1/datasets)",
                resource_type="dataset",
                resource_name=name,
            ) from None

    def register_dataset(self, name: str, path: str, description: str, idempotency_key: str) -> Dataset:
        check_name(name, "name", "dataset name")
        check_text(description, "description")
        check_text(path, "path", multiline=False)
        check_line(idempotency_key, "idempotency_key")
        try:
            existing = self.repository.get(dataset_id(name))
        except AggregateNotFoundError:
            existing = None
        if existing is not None:
            if idempotency_key and existing.idempotency_key == idempotency_key:
                return existing
            raise AlreadyExists(
                f"dataset {name!r} already exists; register the new file under another name",
                resource_type="dataset",
                resource_name=name,
            )
        info = inspect_dataset(resolve_under_roots(path, self.data_roots))
        dataset = Dataset(
            name=name,
            path=str(info.path),
            sha256=info.sha256,
            size_bytes=info.size_bytes,
            record_count=info.record_count,
            format=info.format,
            description=description,
            idempotency_key=idempotency_key,
        )
        try:
            self.save(dataset)
        except IntegrityError:
            winner = self.repository.get(dataset.id)
            if idempotency_key and winner.idempotency_key == idempotency_key:
                return winner
            raise AlreadyExists(
                f"dataset {name!r} already exists", resource_type="dataset", resource_name=name
            ) from None
        return dataset
