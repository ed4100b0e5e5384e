"""`mlx-hub models alias|alias-history`: move an alias, and see where it pointed when."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.output import JsonOpt, console, emit, parse_time, when
from mlxhub.v1 import registry_pb2 as pb


def models_alias(name: str, alias: str, version: int, as_json: JsonOpt = False) -> None:
    """Point ALIAS of NAME at VERSION."""
    response = rpc.call("SetAlias", pb.SetAliasRequest(name=name, alias=alias, version=version))
    if as_json:
        emit(response, True, str)
        return
    was = f" (was {response.previous_version})" if response.previous_version else " (new alias)"
    console.print(f"{name}@{alias} -> version {version}{was}")


def models_alias_history(
    name: str,
    alias: str,
    at: Annotated[str | None, typer.Option(help="ISO time: also say which version the alias pointed to then.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every move of an alias, and optionally where it pointed at a given time."""
    request = pb.GetAliasHistoryRequest(name=name, alias=alias)
    if at is not None:
        request.at_time.CopyFrom(parse_time(at, "--at"))

    def render(response: pb.GetAliasHistoryResponse) -> Table:
        table = Table(title=f"{name}@{alias}")
        for column in ("position", "time", "version", "previous", "principal"):
            table.add_column(column)
        for m in response.moves:
            table.add_row(str(m.position), when(m.move_time), str(m.version), str(m.previous_version or ""), m.principal)
        if at is not None:
            table.caption = f"at {at}: version {response.version_at_time or 'none (alias did not exist)'}"
        return table

    emit(rpc.call("GetAliasHistory", request), as_json, render)
