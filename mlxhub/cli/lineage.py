"""`mlx-hub models lineage|resolve`: which version a reference means, and where a version came from."""

from __future__ import annotations

import json

from google.protobuf import json_format
from rich.console import Group
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.datasets import dataset_rows
from mlxhub.cli.output import JsonOpt, console, details, emit, pairs, when
from mlxhub.cli.versions import version_rows
from mlxhub.v1 import common_pb2
from mlxhub.v1 import registry_pb2 as pb


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


def models_lineage(name: str, version: int, as_json: JsonOpt = False) -> None:
    """Where a version came from: base model, dataset, parameters, code, ancestors."""

    def render(response: pb.GetLineageResponse) -> Group:
        parts = [lineage_rows(response.lineage, f"lineage of {name}/versions/{version}")]
        parts += [lineage_rows(a, f"ancestor {a.model}/versions/{a.version}") for a in response.ancestors]
        if response.HasField("dataset"):
            parts.append(dataset_rows(response.dataset))
        return Group(*parts)

    emit(rpc.call("GetLineage", pb.GetLineageRequest(name=name, version=version)), as_json, render)


def models_resolve(reference: str, as_json: JsonOpt = False) -> None:
    """Resolve NAME, NAME@ALIAS or NAME/versions/N to one version."""
    response = rpc.call("ResolveModelReference", pb.ResolveModelReferenceRequest(reference=reference))
    if as_json:
        emit(response, True, str)
        return
    console.print(version_rows(response.version))
    if response.HasField("base_version"):
        console.print(version_rows(response.base_version))
