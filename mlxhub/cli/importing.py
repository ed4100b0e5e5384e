"""`mlx-hub models import`: a GGUF file or an mlx-lm directory becomes a registered version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, emit, fail
from mlxhub.cli.versions import version_rows
from mlxhub.gguf import GGUFError
from mlxhub.importer import import_model


def models_import(
    source: Annotated[Path, typer.Argument(help="A GGUF file (llama; Q4_0/Q4_1/Q8_0/F16/F32) or an mlx-lm directory.")],
    name: Annotated[str, typer.Option("--name", help="Model to add the version to (created if missing).")],
    alias: Annotated[str, typer.Option(help="Point this alias at the new version.")] = "",
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Import a model: convert a GGUF into $MLXHUB_HOME/models/NAME/<id> and register it."""
    registry = rpc.connect()
    try:
        with registry.errors():
            version = import_model(registry.stub, registry.settings.models_dir, source, name, alias, description)
    except GGUFError as exc:
        raise fail(f"error: {exc}") from None
    emit(version, as_json, version_rows)
