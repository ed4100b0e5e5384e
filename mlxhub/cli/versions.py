"""`mlx-hub models versions|register-version`: a model's versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, details, emit, enum_name, pairs, when
from mlxhub.v1 import registry_pb2 as pb


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


def models_versions(name: str, as_json: JsonOpt = False) -> None:
    """List a model's versions."""
    response = rpc.call_all("ListModelVersions", pb.ListModelVersionsRequest(name=name), "versions")
    emit(response, as_json, lambda r: versions_table(r.versions))


def models_register_version(
    name: str,
    path: Annotated[Path, typer.Argument(help="An mlx-lm model directory or adapter directory.")],
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Register a new version of NAME from a model directory."""
    request = pb.CreateModelVersionRequest(name=name, artifact_path=str(path.expanduser().resolve()), description=description)
    emit(rpc.call("CreateModelVersion", request).version, as_json, version_rows)
