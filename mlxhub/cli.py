"""`mlx-hub`: the command line for the hub. Each command is one registry RPC
through `call` (connect, call, turn a gRPC error into `error: ...` and exit 1)
and a renderer (a Rich table, or canonical protobuf JSON with --json)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table

from mlxhub.client import connect, format_error
from mlxhub.config import ConfigError, load_settings
from mlxhub.v1 import common_pb2
from mlxhub.v1 import registry_pb2 as pb

app = typer.Typer(no_args_is_help=True, add_completion=False, help="MLX Hub: register, fine-tune, serve and audit LLMs.")
models_app = typer.Typer(no_args_is_help=True, help="Models, versions, aliases and lineage.")
datasets_app = typer.Typer(no_args_is_help=True, help="Datasets (JSONL files under a data root).")
app.add_typer(models_app, name="models")
app.add_typer(datasets_app, name="datasets")

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print canonical protobuf JSON.")]
RPC_TIMEOUT = 60.0


# -- the one generic path: call an RPC, handle its error, render its answer ----------
def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(message, markup=False, soft_wrap=True)
    return typer.Exit(code)


def call(method: str, request: Message, *, stream: bool = False):
    """Call a registry RPC; on error print `error: ...` and exit 1."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise fail(f"error: {exc}") from None
    address = settings.address("registry")
    rpc = getattr(connect(settings), method)
    try:
        if not stream:
            return rpc(request, timeout=RPC_TIMEOUT)
        return _checked_stream(rpc(request), address)
    except grpc.RpcError as exc:
        raise fail(format_error(exc, address)) from None


def _checked_stream(responses, address: str):
    try:
        yield from responses
    except grpc.RpcError as exc:
        raise fail(format_error(exc, address)) from None


def emit(message: Message, as_json: bool, render: Callable[[Message], object]) -> None:
    if as_json:
        typer.echo(json_format.MessageToJson(message))
    else:
        console.print(render(message))


def call_all(method: str, request: Message, field: str) -> Message:
    """Follow `next_page_token` to the end; return one response holding every item."""
    merged = None
    while True:
        page = call(method, request)
        if merged is None:
            merged = page
        else:
            getattr(merged, field).extend(getattr(page, field))
        if not page.next_page_token:
            merged.next_page_token = ""
            return merged
        request.page_token = page.next_page_token


# -- formatting helpers --------------------------------------------------------------
def when(ts: Timestamp) -> str:
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pairs(mapping) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(mapping.items()))


def details(title: str, rows: list[tuple[str, object]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in rows:
        table.add_row(key, str(value))
    return table


def parse_tags(values: list[str] | None) -> dict[str, str]:
    tags = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = value
    return tags


def parse_time(value: str, option: str) -> Timestamp:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO time such as 2025-01-31T12:00:00Z", param_hint=option) from None
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


OrderOpt = Annotated[str, typer.Option(help='Sort: name, create_time or update_time, optionally followed by " desc".')]


def enum_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


# -- renderers -----------------------------------------------------------------------
def model_rows(model: pb.Model) -> Table:
    return details(
        f"model {model.name}",
        [
            ("name", model.name),
            ("base model", model.base_model),
            ("description", model.description),
            ("tags", pairs(model.tags)),
            ("latest version", model.latest_version),
            ("aliases", pairs(model.aliases)),
            ("created", f"{when(model.create_time)} by {model.created_by}"),
            ("updated", when(model.update_time)),
            ("etag", model.etag),
        ],
    )


def models_table(models) -> Table:
    table = Table(title="models")
    for column in ("name", "base model", "latest", "aliases", "description", "tags"):
        table.add_column(column, overflow="fold")
    for m in models:
        table.add_row(m.name, m.base_model, str(m.latest_version), pairs(m.aliases), m.description, pairs(m.tags))
    return table


def version_rows(version: pb.ModelVersion) -> Table:
    return details(
        f"{version.model}/versions/{version.version}",
        [
            ("model", version.model),
            ("version", version.version),
            ("kind", enum_name(pb.ModelVersionKind, version.kind, "MODEL_VERSION_KIND_")),
            ("status", enum_name(pb.ModelVersionStatus, version.status, "MODEL_VERSION_STATUS_")),
            ("artifact path", version.artifact_path),
            ("files", "\n".join(f"{f.path}  {f.size_bytes} B  sha256 {f.sha256}" for f in version.files)),
            ("aliases", ", ".join(version.aliases)),
            ("base version", version.base_version),
            ("metrics", pairs(version.metrics)),
            ("description", version.description),
            ("created", f"{when(version.create_time)} by {version.created_by}"),
        ],
    )


def versions_table(versions) -> Table:
    table = Table(title="versions")
    for column in ("version", "kind", "status", "aliases", "files", "created", "description"):
        table.add_column(column, overflow="fold")
    for v in versions:
        table.add_row(
            str(v.version),
            enum_name(pb.ModelVersionKind, v.kind, "MODEL_VERSION_KIND_"),
            enum_name(pb.ModelVersionStatus, v.status, "MODEL_VERSION_STATUS_"),
            ", ".join(v.aliases),
            str(len(v.files)),
            when(v.create_time),
            v.description,
        )
    return table


def dataset_rows(d: pb.Dataset) -> Table:
    return details(
        f"dataset {d.name}",
        [
            ("name", d.name),
            ("path", d.path),
            ("format", enum_name(pb.DatasetFormat, d.format, "DATASET_FORMAT_")),
            ("records", d.record_count),
            ("size", f"{d.size_bytes} B"),
            ("sha256", d.sha256),
            ("description", d.description),
            ("created", f"{when(d.create_time)} by {d.created_by}"),
        ],
    )


def datasets_table(datasets) -> Table:
    table = Table(title="datasets")
    for column in ("name", "format", "records", "size", "sha256", "path"):
        table.add_column(column, overflow="fold")
    for d in datasets:
        fmt = enum_name(pb.DatasetFormat, d.format, "DATASET_FORMAT_")
        table.add_row(d.name, fmt, str(d.record_count), f"{d.size_bytes} B", d.sha256[:12], d.path)
    return table


def lineage_rows(lineage: common_pb2.Lineage, title: str) -> Table:
    params = json.dumps(json_format.MessageToDict(lineage.parameters)) if lineage.HasField("parameters") else ""
    rows = [
        ("source", lineage.source),
        ("base model", lineage.base_model),
        ("parent version", lineage.parent_version),
        ("dataset", f"{lineage.dataset} (sha256 {lineage.dataset_sha256})" if lineage.dataset else ""),
        ("parameters", params),
        ("seed", lineage.seed or ""),
        ("libraries", pairs(lineage.library_versions)),
        ("code commit", lineage.code_commit),
        ("training job", lineage.training_job),
        ("mlflow run", lineage.mlflow_run_id),
        ("source uri", lineage.source_uri),
        ("source sha256", lineage.source_sha256),
        ("files", "\n".join(f"{f.path}  sha256 {f.sha256}" for f in lineage.files)),
        ("created", f"{when(lineage.create_time)} by {lineage.created_by}"),
    ]
    return details(title, [(k, v) for k, v in rows if v not in ("", None)])


def event_row(event: pb.Event) -> list[str]:
    data = json.dumps(json_format.MessageToDict(event.data), separators=(",", ":")) if event.HasField("data") else ""
    return [str(event.position), when(event.time), event.aggregate, event.type, event.metadata.principal, data]


EVENT_COLUMNS = ("position", "time", "aggregate", "type", "principal", "data")


def events_table(rows: list[list[str]]) -> Table:
    """Every column but data keeps its full width; data gets what is left (if any), cut with an ellipsis."""
    widths = [max(len(column), *(len(r[i]) for r in rows)) for i, column in enumerate(EVENT_COLUMNS)]
    room = console.width - sum(widths[:-1]) - 3 * len(EVENT_COLUMNS) - 1
    columns = EVENT_COLUMNS if room >= 12 else EVENT_COLUMNS[:-1]  # too narrow: use --json for the data
    table = Table(title="events")
    for column, width in zip(columns, widths, strict=False):
        limit = room if column == "data" else width
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=min(width, limit), max_width=limit)
    for row in rows:
        table.add_row(*row[: len(columns)])
    return table


# -- commands ------------------------------------------------------------------------
@app.command()
def up() -> None:
    """Run the whole local stack (PostgreSQL, NATS, services, gateway) in the foreground."""
    from mlxhub import stack

    raise typer.Exit(stack.main())


@models_app.command("create")
def models_create(
    name: str,
    base_model: Annotated[str, typer.Option(help="Base model: a hub reference or e.g. a Hugging Face repo id.")] = "",
    description: str = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a new model."""
    request = pb.CreateModelRequest(name=name, base_model=base_model, description=description, tags=parse_tags(tag))
    emit(call("CreateModel", request).model, as_json, model_rows)


@models_app.command("list")
def models_list(
    query: Annotated[str, typer.Option(help="Only models whose name, description or base model contains this.")] = "",
    base_model: Annotated[str, typer.Option(help="Only models with exactly this base model.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="KEY or KEY=VALUE, repeatable: only models with every one.")] = None,
    order_by: OrderOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """List the models (every one, or those matching the filters)."""
    request = pb.ListModelsRequest(query=query, base_model=base_model, tags=tag or [], order_by=order_by)
    emit(call_all("ListModels", request, "models"), as_json, lambda r: models_table(r.models))


@models_app.command("show")
def models_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one model."""
    emit(call("GetModel", pb.GetModelRequest(name=name)).model, as_json, model_rows)


@models_app.command("update")
def models_update(
    name: str,
    description: Annotated[str | None, typer.Option()] = None,
    base_model: Annotated[str | None, typer.Option()] = None,
    tag: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable; replaces all tags.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a model's description, base model or tags (only the options given)."""
    model, paths = pb.Model(), []
    if description is not None:
        model.description = description
        paths.append("description")
    if base_model is not None:
        model.base_model = base_model
        paths.append("base_model")
    if tag is not None:
        model.tags.update(parse_tags(tag))
        paths.append("tags")
    if not paths:
        raise typer.BadParameter("give at least one of --description, --base-model, --tag")
    request = pb.UpdateModelRequest(name=name, model=model)
    request.update_mask.paths.extend(paths)
    emit(call("UpdateModel", request).model, as_json, model_rows)


@models_app.command("versions")
def models_versions(name: str, as_json: JsonOpt = False) -> None:
    """List a model's versions."""
    response = call_all("ListModelVersions", pb.ListModelVersionsRequest(name=name), "versions")
    emit(response, as_json, lambda r: versions_table(r.versions))


@models_app.command("register-version")
def models_register_version(
    name: str,
    path: Annotated[Path, typer.Argument(help="An mlx-lm model directory or adapter directory.")],
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a new version of NAME from a model directory."""
    request = pb.CreateModelVersionRequest(name=name, artifact_path=str(path.expanduser().resolve()), description=description)
    emit(call("CreateModelVersion", request).version, as_json, version_rows)


@models_app.command("alias")
def models_alias(name: str, alias: str, version: int, as_json: JsonOpt = False) -> None:
    """Point ALIAS of NAME at VERSION."""
    response = call("SetAlias", pb.SetAliasRequest(name=name, alias=alias, version=version))
    if as_json:
        emit(response, True, str)
        return
    was = f" (was {response.previous_version})" if response.previous_version else " (new alias)"
    console.print(f"{name}@{alias} -> version {version}{was}")


@models_app.command("alias-history")
def models_alias_history(
    name: str,
    alias: str,
    at: Annotated[str | None, typer.Option(help="ISO time: also say which version the alias pointed to then.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every move of an alias, and optionally where it pointed at a given time."""
    request = pb.GetAliasHistoryRequest(name=name, alias=alias)
    if at is not None:
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            raise typer.BadParameter(f"{at!r} is not an ISO time such as 2025-01-31T12:00:00Z", param_hint="--at") from None
        request.at_time.FromDatetime(moment.astimezone(UTC))

    def render(response: pb.GetAliasHistoryResponse) -> Table:
        table = Table(title=f"{name}@{alias}")
        for column in ("position", "time", "version", "previous", "principal"):
            table.add_column(column)
        for m in response.moves:
            table.add_row(str(m.position), when(m.move_time), str(m.version), str(m.previous_version or ""), m.principal)
        if at is not None:
            table.caption = f"at {at}: version {response.version_at_time or 'none (alias did not exist)'}"
        return table

    emit(call("GetAliasHistory", request), as_json, render)


@models_app.command("lineage")
def models_lineage(name: str, version: int, as_json: JsonOpt = False) -> None:
    """Where a version came from: base model, dataset, parameters, code, ancestors."""

    def render(response: pb.GetLineageResponse):
        from rich.console import Group

        parts = [lineage_rows(response.lineage, f"lineage of {name}/versions/{version}")]
        parts += [lineage_rows(a, f"ancestor {a.model}/versions/{a.version}") for a in response.ancestors]
        if response.HasField("dataset"):
            parts.append(dataset_rows(response.dataset))
        return Group(*parts)

    emit(call("GetLineage", pb.GetLineageRequest(name=name, version=version)), as_json, render)


@models_app.command("resolve")
def models_resolve(reference: str, as_json: JsonOpt = False) -> None:
    """Resolve NAME, NAME@ALIAS or NAME/versions/N to one version."""
    response = call("ResolveModelReference", pb.ResolveModelReferenceRequest(reference=reference))
    if as_json:
        emit(response, True, str)
        return
    console.print(version_rows(response.version))
    if response.HasField("base_version"):
        console.print(version_rows(response.base_version))


@datasets_app.command("register")
def datasets_register(
    name: str,
    path: Annotated[Path, typer.Argument(help="A JSONL file under a data root (e.g. $MLXHUB_HOME/datasets).")],
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a JSONL dataset; the registry computes its checksum, size and format."""
    request = pb.RegisterDatasetRequest(name=name, path=str(path.expanduser().resolve()), description=description)
    emit(call("RegisterDataset", request).dataset, as_json, dataset_rows)


@datasets_app.command("list")
def datasets_list(
    query: Annotated[str, typer.Option(help="Only datasets whose name, description or path contains this.")] = "",
    order_by: OrderOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """List the datasets (every one, or those matching --query)."""
    request = pb.ListDatasetsRequest(query=query, order_by=order_by)
    emit(call_all("ListDatasets", request, "datasets"), as_json, lambda r: datasets_table(r.datasets))


@datasets_app.command("preview")
def datasets_preview(
    name: str,
    limit: Annotated[int, typer.Option(help="Records to show: 1 to 100 (0: 20).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset's first records, one JSON object per line."""
    response = call("PreviewDataset", pb.PreviewDatasetRequest(name=name, limit=limit))
    if as_json:
        typer.echo(json_format.MessageToJson(response))
        return
    for record in response.records:
        typer.echo(json.dumps(json_format.MessageToDict(record), ensure_ascii=False))
    if response.truncated:
        err_console.print(f"(first {len(response.records)} of {response.record_count} records; long values cut)")


@datasets_app.command("versions")
def datasets_versions(name: str, as_json: JsonOpt = False) -> None:
    """The model versions trained on a dataset, newest first."""
    response = call_all("ListDatasetVersions", pb.ListDatasetVersionsRequest(name=name), "versions")

    def render(r: pb.ListDatasetVersionsResponse) -> Table:
        table = Table(title=f"versions trained on {name}")
        for column in ("version", "kind", "created", "by"):
            table.add_column(column, overflow="fold")
        for v in r.versions:
            table.add_row(f"{v.model}/versions/{v.version}", enum_name(pb.ModelVersionKind, v.kind, "MODEL_VERSION_KIND_"),
                          when(v.create_time), v.created_by)
        return table

    emit(response, as_json, render)


@app.command()
def whoami(as_json: JsonOpt = False) -> None:
    """Who the registry takes you for (your API key's principal)."""
    response = call("WhoAmI", pb.WhoAmIRequest())
    emit(response, as_json, lambda r: f"{r.principal}" + ("" if r.auth_enabled else " (the hub has no API keys)"))


@app.command()
def stats(as_json: JsonOpt = False) -> None:
    """How many models, versions, datasets and aliases the registry holds."""
    response = call("GetRegistryStats", pb.GetRegistryStatsRequest())
    emit(response, as_json, lambda r: details("registry", [
        ("models", r.model_count), ("versions", r.version_count), ("datasets", r.dataset_count),
        ("aliases", r.alias_count), ("last event", r.last_event_position),
    ]))


@datasets_app.command("show")
def datasets_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one dataset."""
    emit(call("GetDataset", pb.GetDatasetRequest(name=name)).dataset, as_json, dataset_rows)


@app.command()
def events(
    after: Annotated[int, typer.Option(help="Start after this position.")] = 0,
    aggregate: Annotated[str, typer.Option(help='Only this aggregate, e.g. "model/demo".')] = "",
    aggregate_type: Annotated[list[str] | None, typer.Option(help='Only these aggregate types ("Model", ...).')] = None,
    type: Annotated[list[str] | None, typer.Option("--type", help='Only these event types ("AliasMoved", ...).')] = None,
    follow: Annotated[bool, typer.Option(help="Keep printing new events as they are recorded.")] = False,
    limit: Annotated[int, typer.Option(help="Stop after this many events (0: no limit).")] = 0,
    principal: Annotated[str, typer.Option(help="Only events recorded for this principal.")] = "",
    since: Annotated[str | None, typer.Option(help="ISO time: only events at or after it.")] = None,
    until: Annotated[str | None, typer.Option(help="ISO time: only events before it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One canonical JSON event per line.")] = False,
) -> None:
    """Read the global event log in order (the audit trail)."""
    if after < 0 or limit < 0:
        raise typer.BadParameter("--after and --limit must be 0 or more")
    request = pb.ReadEventsRequest(
        after_position=after,
        aggregate=aggregate,
        aggregate_types=aggregate_type or [],
        event_types=type or [],
        follow=follow,
        limit=limit,
        principal=principal,
    )
    if since is not None:
        request.start_time.CopyFrom(parse_time(since, "--since"))
    if until is not None:
        request.end_time.CopyFrom(parse_time(until, "--until"))
    rows: list[list[str]] = []
    try:
        for response in call("ReadEvents", request, stream=True):
            if as_json:
                typer.echo(json_format.MessageToJson(response.event, indent=None))
            elif follow:
                console.print("  ".join(event_row(response.event)), markup=False, soft_wrap=True)
            else:
                rows.append(event_row(response.event))
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:  # on a mid-stream error, still show the events that arrived before it
        if rows:
            console.print(events_table(rows))
    if not as_json and not follow and not rows:
        console.print("no events")


# `train`, `jobs` and `models import` live in their own modules, which import the helpers above.
from mlxhub.commands import training

training.register(app)

from mlxhub.commands import generate, models_import

models_import.register(models_app)
generate.register(app)

from mlxhub.commands import status

status.register(app)
