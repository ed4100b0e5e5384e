"""`mlx-hub datasets register|list|preview|versions|show`: JSONL datasets under a data root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, OrderOpt, details, emit, enum_name, err_console, when
from mlxhub.v1 import registry_pb2 as pb

app = typer.Typer(no_args_is_help=True, help="Datasets (JSONL files under a data root).")


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


@app.command("register")
def datasets_register(
    name: str,
    path: Annotated[Path, typer.Argument(help="A JSONL file under a data root (e.g. $MLXHUB_HOME/datasets).")],
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a JSONL dataset; the registry computes its checksum, size and format."""
    request = pb.RegisterDatasetRequest(name=name, path=str(path.expanduser().resolve()), description=description)
    emit(rpc.call("RegisterDataset", request).dataset, as_json, dataset_rows)


@app.command("list")
def datasets_list(
    query: Annotated[str, typer.Option(help="Only datasets whose name, description or path contains this.")] = "",
    order_by: OrderOpt = "",
    as_json: JsonOpt = False,
) -> None:
    """List the datasets (every one, or those matching --query)."""
    request = pb.ListDatasetsRequest(query=query, order_by=order_by)
    emit(rpc.call_all("ListDatasets", request, "datasets"), as_json, lambda r: datasets_table(r.datasets))


@app.command("preview")
def datasets_preview(
    name: str,
    limit: Annotated[int, typer.Option(help="Records to show: 1 to 100 (0: 20).")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Show a dataset's first records, one JSON object per line."""
    response = rpc.call("PreviewDataset", pb.PreviewDatasetRequest(name=name, limit=limit))
    if as_json:
        typer.echo(json_format.MessageToJson(response))
        return
    for record in response.records:
        typer.echo(json.dumps(json_format.MessageToDict(record), ensure_ascii=False))
    if response.truncated:
        err_console.print(f"(first {len(response.records)} of {response.record_count} records; long values cut)")


@app.command("versions")
def datasets_versions(name: str, as_json: JsonOpt = False) -> None:
    """The model versions trained on a dataset, newest first."""
    response = rpc.call_all("ListDatasetVersions", pb.ListDatasetVersionsRequest(name=name), "versions")

    def render(r: pb.ListDatasetVersionsResponse) -> Table:
        table = Table(title=f"versions trained on {name}")
        for column in ("version", "kind", "created", "by"):
            table.add_column(column, overflow="fold")
        for v in r.versions:
            table.add_row(f"{v.model}/versions/{v.version}", enum_name(pb.ModelVersionKind, v.kind, "MODEL_VERSION_KIND_"),
                          when(v.create_time), v.created_by)
        return table

    emit(response, as_json, render)


@app.command("show")
def datasets_show(name: str, as_json: JsonOpt = False) -> None:
    """Show one dataset."""
    emit(rpc.call("GetDataset", pb.GetDatasetRequest(name=name)).dataset, as_json, dataset_rows)
