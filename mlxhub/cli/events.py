"""`mlx-hub events`: the global event log in order (the audit trail), once or following."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from google.protobuf import json_format
from rich.table import Table

from mlxhub.cli import rpc
from mlxhub.cli.output import console, parse_time, when
from mlxhub.v1 import common_pb2
from mlxhub.v1 import registry_pb2 as pb

EVENT_COLUMNS = ("position", "time", "aggregate", "type", "principal", "data")


def event_row(event: common_pb2.Event) -> list[str]:
    data = json.dumps(json_format.MessageToDict(event.data), separators=(",", ":")) if event.HasField("data") else ""
    return [str(event.position), when(event.time), event.aggregate, event.type, event.metadata.principal, data]


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
        for response in rpc.stream("ReadEvents", request):
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
