"""How the CLI prints: a Rich table, or canonical protobuf JSON with --json; errors go to stderr
as plain text. Also the small value parsers and formatters every command group shares."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print canonical protobuf JSON.")]
OrderOpt = Annotated[str, typer.Option(help='Sort: name, create_time or update_time, optionally followed by " desc".')]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `message` on stderr (as is, no markup) and return the exit to raise."""
    err_console.print(message, markup=False, soft_wrap=True)
    return typer.Exit(code)


def emit(message: Message, as_json: bool, render: Callable[[Message], object]) -> None:
    if as_json:
        typer.echo(json_format.MessageToJson(message))
    else:
        console.print(render(message))


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


def enum_name(enum, value: int, prefix: str) -> str:
    return enum.Name(value).removeprefix(prefix).lower()


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
