"""`mlx-hub status`: every component of the running hub, its health and version."""

from __future__ import annotations

import os

import grpc
import httpx
import typer
from grpc_health.v1 import health_pb2, health_pb2_grpc
from rich.table import Table

from mlxhub import __version__
from mlxhub.config import load_settings
from mlxhub.stack import available_services

CHECK_TIMEOUT_S = 3.0


def _grpc_health(address: str, service: str) -> str:
    key = os.environ.get("MLXHUB_API_KEY", "")
    metadata = [("authorization", f"Bearer {key}")] if key else []
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=CHECK_TIMEOUT_S, metadata=metadata
            )
        except grpc.RpcError as error:
            return f"DOWN ({error.code().name})"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def register(app: typer.Typer) -> None:
    from mlxhub.cli import console

    @app.command()
    def status() -> None:
        """Health of every service and of the hub's dependencies (via the gateway's deep check)."""
        settings = load_settings()
        table = Table(title=f"MLX Hub {__version__}")
        for column in ("component", "address", "health", "detail"):
            table.add_column(column)
        healthy = True
        for name, _package, kind in available_services():
            if kind != "grpc":
                continue
            state = _grpc_health(settings.address(name), f"mlxhub.v1.{name.capitalize()}Service")
            healthy &= state == "SERVING"
            table.add_row(name, settings.address(name), state, "")
        gateway = f"http://{settings.address('gateway')}"
        key = os.environ.get("MLXHUB_API_KEY", "")
        try:
            reply = httpx.get(f"{gateway}/health/deep", timeout=CHECK_TIMEOUT_S * 2,
                              headers={"Authorization": f"Bearer {key}"} if key else {})
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
