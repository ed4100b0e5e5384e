"""`mlx-hub up` (run the local stack in the foreground) and `mlx-hub status` (the health of every
component of a running hub)."""

from __future__ import annotations

import httpx
import typer
from rich.table import Table

from mlxhub import __version__, health
from mlxhub.cli import rpc
from mlxhub.cli.output import console
from mlxhub.client import auth_metadata
from mlxhub.stack import available_services

CHECK_TIMEOUT_S = 3.0


def up() -> None:
    """Run the whole local stack (PostgreSQL, NATS, services, gateway) in the foreground."""
    from mlxhub import stack

    raise typer.Exit(stack.main())


def grpc_state(address: str, service: str, metadata: list[tuple[str, str]]) -> str:
    """SERVING (or the status the service reports), else DOWN with the failed call's code."""
    answer = health.probe(address, service, CHECK_TIMEOUT_S, metadata)
    return answer.status if answer.answered else f"DOWN ({answer.status})"


def status() -> None:
    """Health of every service and of the hub's dependencies (via the gateway's deep check)."""
    settings = rpc.settings()
    metadata = auth_metadata(settings)
    table = Table(title=f"MLX Hub {__version__}")
    for column in ("component", "address", "health", "detail"):
        table.add_column(column)
    healthy = True
    for name, _package, kind in available_services():
        if kind != "grpc":
            continue
        state = grpc_state(settings.address(name), f"mlxhub.v1.{name.capitalize()}Service", metadata)
        healthy &= state == "SERVING"
        table.add_row(name, settings.address(name), state, "")
    gateway = f"http://{settings.address('gateway')}"
    try:
        reply = httpx.get(f"{gateway}/health/deep", timeout=CHECK_TIMEOUT_S * 2, headers=dict(metadata))
        body = reply.json()
        table.add_row("gateway", gateway, "SERVING", f"version {body.get('version', '?')}")
        for check in body.get("checks", []):
            healthy &= check["ok"]
            table.add_row(f"  {check['name']}", "", "OK" if check["ok"] else "FAILING",
                          f"{check['detail']} ({check['latencyMs']} ms)")
    except (httpx.HTTPError, ValueError) as exc:
        healthy = False
        table.add_row("gateway", gateway, "DOWN", str(exc))
    console.print(table)
    if not healthy:
        raise typer.Exit(1)
