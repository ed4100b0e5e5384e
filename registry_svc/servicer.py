"""gRPC adapter: proto requests in, application commands and queries, proto
responses out. Errors raised as `HubError` become rich gRPC statuses."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from mlxhub import bounds, paging
from mlxhub.auth import principal_of
from mlxhub.commit_signal import listening_for_commits
from mlxhub.errors import InvalidArgument, NotFound, handlers
from mlxhub.names import version_name
from mlxhub.stored_events import read_rows
from mlxhub.timestamps import parse_rfc3339, rfc3339, to_datetime, to_timestamp
from mlxhub.v1 import common_pb2, registry_pb2, registry_pb2_grpc
from registry_svc.application import RegistryApplication
from registry_svc.domain import UPDATABLE_MODEL_FIELDS, Dataset, Model
from registry_svc.event_log import EventFilter, NameBook, encode_page, encode_response, preserialized
from registry_svc.preview import checked_path, read_preview
from registry_svc.read_model import DATASET_ORDERS, MODEL_ORDERS, RegistryReadModel

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 50
# The lineage fields the registry sets itself (OUTPUT_ONLY in common.proto); a caller's values are dropped.
LINEAGE_OUTPUT_ONLY = tuple(f.name for f in common_pb2.Lineage.DESCRIPTOR.fields if bounds.is_output_only(f))
MAX_PAGE_SIZE = 1000
EVENT_PAGE = 1000  # stored events read per query by ReadEvents
PAGE_GROWTH = 8  # a limited ReadEvents' next page, over its last, while its filters pass events over
FOLLOW_CHECK_S = 0.25  # how often a quiet following ReadEvents checks that its client is still there
DEFAULT_PREVIEW_RECORDS = 20


def page(page_size: int, page_token: str) -> tuple[Any, int]:
    """Keyset pagination: the token is the last key of the previous page."""
    size = paging.page_size(page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if not page_token:
        return None, size
    return paging.decode_token(page_token, required=("after",))["after"], size


def next_token(rows: list[dict[str, Any]], size: int, key: str) -> str:
    if len(rows) < size:
        return ""
    return paging.encode_token({"after": rows[-1][key]})


def _key_ok(key: str, value: Any) -> bool:
    if key == "version":
        return isinstance(value, int)
    if not isinstance(value, str):
        return False
    if key.endswith("_time"):
        try:
            parse_rfc3339(value)
        except ValueError:
            return False
    return True


def keyset_page(page_size: int, page_token: str, selection: Any, keys: tuple[str, ...]) -> tuple[list[Any] | None, int]:
    """Keyset pagination for filtered, sorted lists: the token holds the last row's sort key and a
    fingerprint of the filters and order, so a token is only accepted for the list it came from."""
    _, size = page(page_size, "")
    if not page_token:
        return None, size
    token = paging.decode_token(page_token, required=("after",))
    after, fingerprint = token["after"], token.get("q")
    if isinstance(after, str) and fingerprint is None:  # a token from before lists took filters
        after, fingerprint = [after], paging.fingerprint(selection) if selection == LEGACY_SELECTION else ""
    if fingerprint != paging.fingerprint(selection):
        raise InvalidArgument(
            "page_token was made for other filters or another order_by; send the same filters and order_by as the"
            " request that returned it, or leave page_token empty to start again", field="page_token",
        )
    if not isinstance(after, list) or len(after) != len(keys) or not all(map(_key_ok, keys, after)):
        raise paging.invalid_token()
    return after, size


def keyset_token(rows: list[dict[str, Any]], size: int, keys: tuple[str, ...], selection: Any) -> str:
    if len(rows) < size:
        return ""
    last = [rfc3339(rows[-1][k]) if isinstance(rows[-1][k], datetime) else rows[-1][k] for k in keys]
    return paging.encode_token({"after": last, "q": paging.fingerprint(selection)})


def sort_keys(order: tuple[str, bool]) -> tuple[str, ...]:
    return ("name",) if order[0] == "name" else (order[0], "name")


# What a page token of the unfiltered, name-ordered lists held before lists took filters: {"after": name}.
LEGACY_SELECTION = {"order_by": "name"}


def model_message(model: Model | dict[str, Any]) -> registry_pb2.Model:
    if isinstance(model, Model):
        fields = {
            "name": model.name,
            "base_model": model.base_model,
            "description": model.description,
            "tags": model.tags,
            "latest_version": model.latest_version,
            "aliases": model.aliases,
            "etag": str(model.version),
            "created_by": model.created_by,
            "create_time": model.created_on,
            "update_time": model.modified_on,
        }
    else:
        fields = model
    return registry_pb2.Model(
        name=fields["name"],
        base_model=fields["base_model"],
        description=fields["description"],
        tags=fields["tags"],
        latest_version=fields["latest_version"],
        aliases=fields["aliases"],
        etag=fields["etag"],
        created_by=fields["created_by"],
        create_time=to_timestamp(fields["create_time"]),
        update_time=to_timestamp(fields["update_time"]),
    )


def lineage_message(lineage: dict[str, Any], create_time: Any) -> common_pb2.Lineage:
    message = json_format.ParseDict(lineage, common_pb2.Lineage(), ignore_unknown_fields=True)
    message.create_time.CopyFrom(to_timestamp(create_time))
    return message


def version_message(model: str, version: dict[str, Any], aliases: dict[str, int]) -> registry_pb2.ModelVersion:
    return registry_pb2.ModelVersion(
        model=model,
        version=version["version"],
        artifact_path=version["artifact_path"],
        files=[common_pb2.ArtifactFile(**f) for f in version["files"]],
        metrics=version["metrics"],
        status=registry_pb2.ModelVersionStatus.Value(f"MODEL_VERSION_STATUS_{version['status']}"),
        kind=registry_pb2.ModelVersionKind.Value(f"MODEL_VERSION_KIND_{version['kind']}"),
        description=version["description"],
        aliases=sorted(a for a, v in aliases.items() if v == version["version"]),
        create_time=to_timestamp(version["create_time"]),
        created_by=version["created_by"],
        base_version=version["base_version"],
    )


def dataset_message(dataset: Dataset | dict[str, Any]) -> registry_pb2.Dataset:
    if isinstance(dataset, Dataset):
        fields = {k: getattr(dataset, k) for k in
                  ("name", "path", "sha256", "size_bytes", "record_count", "format", "description", "created_by")}
        fields["create_time"] = dataset.created_on
    else:
        fields = dict(dataset)
    return registry_pb2.Dataset(
        name=fields["name"],
        path=fields["path"],
        sha256=fields["sha256"],
        size_bytes=fields["size_bytes"],
        record_count=fields["record_count"],
        format=registry_pb2.DatasetFormat.Value(f"DATASET_FORMAT_{fields['format']}"),
        description=fields["description"],
        created_by=fields["created_by"],
        create_time=to_timestamp(fields["create_time"]),
    )


rpc, rpc_stream = handlers("registry")


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self, app: RegistryApplication, read_model: RegistryReadModel, api_keys: dict[str, str],
                 event_names: NameBook | None = None) -> None:
        self.app = app
        self.read_model = read_model
        self.api_keys = api_keys
        # Shared by every ReadEvents (names never change), and with the publisher where the server gives it
        self.event_names = event_names or NameBook(app)

    # ----- models -------------------------------------------------------------------------

    @rpc
    def CreateModel(self, request, context):
        model = self.app.create_model(
            request.name, request.base_model, request.description, dict(request.tags), request.idempotency_key,
        )
        return registry_pb2.CreateModelResponse(model=model_message(model))

    @rpc
    def GetModel(self, request, context):
        return registry_pb2.GetModelResponse(model=model_message(self.app.get_model(request.name)))

    @rpc
    def ListModels(self, request, context):
        order_by = request.order_by or "name"
        if order_by not in MODEL_ORDERS:
            raise InvalidArgument(f"order_by {order_by!r} is not one of: {', '.join(MODEL_ORDERS)}", field="order_by")
        tags = sorted(set(request.tags))
        for tag in tags:
            if not tag.partition("=")[0]:
                raise InvalidArgument(f"tags: {tag!r} has no key; give \"key\" or \"key=value\"", field="tags")
        selection = {"order_by": order_by}
        if request.query or request.base_model or tags:
            selection.update(query=request.query, base_model=request.base_model, tags=tags)
        keys = sort_keys(MODEL_ORDERS[order_by])
        after, size = keyset_page(request.page_size, request.page_token, selection, keys)
        rows, total = self.read_model.list_models(after, size, request.query, request.base_model, tags, order_by)
        return registry_pb2.ListModelsResponse(
            models=[model_message(row) for row in rows],
            next_page_token=keyset_token(rows, size, keys, selection),
            total_size=total,
        )

    @rpc
    def UpdateModel(self, request, context):
        paths = list(request.update_mask.paths)
        if not paths:
            paths = [f for f in UPDATABLE_MODEL_FIELDS if getattr(request.model, f)]
        if not paths:
            raise InvalidArgument(
                f"nothing to update; set update_mask to some of {', '.join(UPDATABLE_MODEL_FIELDS)}", field="update_mask"
            )
        if request.model.name and request.model.name != request.name:
            raise InvalidArgument("model.name differs from the name in the path; models cannot be renamed", field="model.name")
        changes = {}
        for path in paths:
            if path not in UPDATABLE_MODEL_FIELDS:
                raise InvalidArgument(
                    f"cannot update {path!r}; updatable fields: {', '.join(UPDATABLE_MODEL_FIELDS)}", field="update_mask"
                )
            value = getattr(request.model, path)
            changes[path] = dict(value) if path == "tags" else value
        model = self.app.update_model(request.name, changes, request.model.etag)
        return registry_pb2.UpdateModelResponse(model=model_message(model))

    # ----- versions -----------------------------------------------------------------------

    @rpc
    def CreateModelVersion(self, request, context):
        try:
            lineage = json_format.MessageToDict(request.lineage, preserving_proto_field_name=True)
        except json_format.SerializeToJsonError as exc:  # a NaN or Infinity in lineage.parameters
            raise InvalidArgument(f"lineage is not valid ({exc}); give finite numbers", field="lineage") from None
        for generated in LINEAGE_OUTPUT_ONLY:
            lineage.pop(generated, None)
        model, version = self.app.create_version(
            request.name, request.artifact_path, request.description, dict(request.metrics), lineage,
            request.idempotency_key,
        )
        return registry_pb2.CreateModelVersionResponse(version=version_message(model.name, version, model.aliases))

    @rpc
    def GetModelVersion(self, request, context):
        model, version = self.app.get_version(request.name, request.version)
        return registry_pb2.GetModelVersionResponse(version=version_message(model.name, version, model.aliases))

    @rpc
    def ListModelVersions(self, request, context):
        self.app.get_model(request.name)
        after, size = page(request.page_size, request.page_token)
        rows = self.read_model.list_versions(request.name, after or 0, size)
        return registry_pb2.ListModelVersionsResponse(
            versions=[version_message(row["model"], row, row["aliases"]) for row in rows],
            next_page_token=next_token(rows, size, "version"),
        )

    @rpc
    def SetAlias(self, request, context):
        model, previous = self.app.set_alias(request.name, request.alias, request.version)
        return registry_pb2.SetAliasResponse(model=model_message(model), previous_version=previous)

    @rpc
    def GetAliasHistory(self, request, context):
        model = self.app.get_model(request.name)
        moves = self.read_model.alias_moves(model.name, request.alias)
        if not moves and request.alias not in model.aliases:
            raise NotFound(
                f"model {model.name!r} has no alias {request.alias!r}", resource_type="alias",
                resource_name=f"{model.name}@{request.alias}",
            )
        response = registry_pb2.GetAliasHistoryResponse(
            moves=[
                registry_pb2.AliasMove(
                    version=m["version"], previous_version=m["previous_version"], move_time=to_timestamp(m["move_time"]),
                    principal=m["principal"], position=m["position"],
                )
                for m in moves
            ]
        )
        if request.HasField("at_time"):
            response.version_at_time = self.read_model.alias_at(model.name, request.alias, to_datetime(request.at_time))
        return response

    @rpc
    def ResolveModelReference(self, request, context):
        model, version = self.app.resolve(request.reference)
        response = registry_pb2.ResolveModelReferenceResponse(version=version_message(model.name, version, model.aliases))
        if version["base_version"]:
            base_model, base = self.app.resolve(version["base_version"])
            response.base_version.CopyFrom(version_message(base_model.name, base, base_model.aliases))
        return response

    @rpc
    def GetLineage(self, request, context):
        model, version = self.app.get_version(request.name, request.version)
        response = registry_pb2.GetLineageResponse(lineage=lineage_message(version["lineage"], version["create_time"]))
        parent, seen = version["lineage"].get("parent_version"), {version_name(model.name, version["version"])}
        while parent and parent not in seen:
            seen.add(parent)
            _parent_model, parent_version = self.app.resolve(parent)
            response.ancestors.append(lineage_message(parent_version["lineage"], parent_version["create_time"]))
            parent = parent_version["lineage"].get("parent_version")
        if version["lineage"].get("dataset"):
            response.dataset.CopyFrom(dataset_message(self.app.get_dataset(version["lineage"]["dataset"])))
        return response

    # ----- datasets -----------------------------------------------------------------------

    @rpc
    def RegisterDataset(self, request, context):
        dataset = self.app.register_dataset(
            request.name, request.path, request.description, request.idempotency_key
        )
        return registry_pb2.RegisterDatasetResponse(dataset=dataset_message(dataset))

    @rpc
    def GetDataset(self, request, context):
        return registry_pb2.GetDatasetResponse(dataset=dataset_message(self.app.get_dataset(request.name)))

    @rpc
    def ListDatasets(self, request, context):
        order_by = request.order_by or "name"
        if order_by not in DATASET_ORDERS:
            raise InvalidArgument(f"order_by {order_by!r} is not one of: {', '.join(DATASET_ORDERS)}", field="order_by")
        selection = {"order_by": order_by}
        if request.query:
            selection["query"] = request.query
        keys = sort_keys(DATASET_ORDERS[order_by])
        after, size = keyset_page(request.page_size, request.page_token, selection, keys)
        rows, total = self.read_model.list_datasets(after, size, request.query, order_by)
        return registry_pb2.ListDatasetsResponse(
            datasets=[dataset_message(row) for row in rows],
            next_page_token=keyset_token(rows, size, keys, selection),
            total_size=total,
        )

    @rpc
    def PreviewDataset(self, request, context):
        if not 0 <= request.limit <= 100:
            raise InvalidArgument(f"limit must be 0 to 100 (0 means {DEFAULT_PREVIEW_RECORDS}), got {request.limit}",
                                  field="limit")
        dataset = self.app.get_dataset(request.name)
        path = checked_path(dataset.name, dataset.path, self.app.data_roots)
        preview = read_preview(path, request.limit or DEFAULT_PREVIEW_RECORDS)
        response = registry_pb2.PreviewDatasetResponse(
            truncated=preview.truncated,
            record_count=dataset.record_count,
            format=registry_pb2.DatasetFormat.Value(f"DATASET_FORMAT_{dataset.format}"),
        )
        for record in preview.records:
            response.records.add().update(record)
        return response

    @rpc
    def ListDatasetVersions(self, request, context):
        dataset = self.app.get_dataset(request.name)
        selection = {"dataset": dataset.name}
        keys = ("create_time", "model", "version")
        after, size = keyset_page(request.page_size, request.page_token, selection, keys)
        rows, total = self.read_model.list_dataset_versions(dataset.name, after, size)
        return registry_pb2.ListDatasetVersionsResponse(
            versions=[version_message(row["model"], row, row["aliases"]) for row in rows],
            next_page_token=keyset_token(rows, size, keys, selection),
            total_size=total,
        )

    # ----- overview -----------------------------------------------------------------------

    @rpc
    def GetRegistryStats(self, request, context):
        return registry_pb2.GetRegistryStatsResponse(
            **self.read_model.stats(), last_event_position=self.app.recorder.max_notification_id() or 0
        )

    @rpc
    def WhoAmI(self, request, context):
        return registry_pb2.WhoAmIResponse(
            principal=principal_of(context.invocation_metadata(), self.api_keys), auth_enabled=bool(self.api_keys)
        )

    # ----- audit --------------------------------------------------------------------------

    @rpc_stream
    def ReadEvents(self, request, context) -> Iterator[Message]:
        """ReadEventsResponse messages, each sent as the bytes `encode_response` wrote (`preserialized`)."""
        selection = EventFilter(request)
        batched = request.batch_size > 0
        per_message = request.batch_size if batched else 1
        sent = 0
        for page in self._event_pages(request, selection, context):
            most = request.limit - sent if request.limit else 0
            encoded, ended = encode_page(self.app.mapper, page, selection, self.event_names, most)
            sent += len(encoded)
            # What this page matched, sent now: a message never waits for more events.
            for start in range(0, len(encoded), per_message):
                yield preserialized(encode_response(encoded[start : start + per_message], batched))
            if ended or (request.limit and sent >= request.limit):
                return

    def _event_pages(self, request, selection: EventFilter, context) -> Iterator[list[Any]]:
        """Stored events from the position on, a page at a time; with follow, then live ones as they
        are committed (each commit wakes the wait; the client's presence is checked between waits).
        Each page is read by the calling thread after the last was sent: reading the next one ahead
        on another thread cost more in handing the GIL back and forth than it saved (replays 8%
        slower with the registry in the bench's process, 5% as its own process)."""
        if selection.matches_nothing:
            if request.follow:  # nothing will ever match: hold the stream open until the client leaves
                done = threading.Event()
                if context.add_callback(done.set):
                    done.wait()
            return
        position = request.after_position
        # A read with a limit starts with a page of that many events (growing only while filters pass
        # events over): a look at 20 events reads 20 rows, not a page of 1,000.
        size = min(request.limit, EVENT_PAGE) if request.limit else EVENT_PAGE
        with contextlib.ExitStack() as listening:
            wait_for_commit = None
            while context.is_active():
                batch = read_rows(self.app.recorder, position, size, selection.topics)
                if batch:
                    position = batch[-1][0]
                    size = min(size * PAGE_GROWTH, EVENT_PAGE)
                    yield batch
                    continue
                if not request.follow or selection.ended(datetime.now(UTC)):
                    return
                if wait_for_commit is None:  # listen before the next read, so no commit falls between them
                    wait_for_commit = listening.enter_context(listening_for_commits(self.app.recorder))
                    continue
                wait_for_commit(FOLLOW_CHECK_S)
