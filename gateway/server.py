"""Serving the gateway with uvicorn: in the foreground (`python -m gateway`) or in a thread."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

import uvicorn

from gateway.app import create_app
from mlxhub.config import Settings, load_settings
from mlxhub.telemetry import start_metrics

log = logging.getLogger(__name__)


def _server(settings: Settings, log_level: str) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.bind_host,
        port=settings.port("gateway"),
        log_level=log_level,
        access_log=False,  # the gateway logs each request itself, at DEBUG (gateway/request_telemetry.py)
        lifespan="on",
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )
    return uvicorn.Server(config)


def url(settings: Settings) -> str:
    return f"http://{settings.bind_host}:{settings.port('gateway')}"


def serve(settings: Settings | None = None) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both and drains open requests)."""
    settings = settings or load_settings()
    server = _server(settings, "info")
    log.info("gateway listening on %s (openapi: %s/openapi.json)", url(settings), url(settings))
    # Prometheus scrapes this port without an API key, as it does every service's metrics port;
    # /metrics on the gateway's own port needs a key like every route but /healthz.
    log.info("metrics on %s", start_metrics(settings, "gateway"))
    server.run()


@contextlib.contextmanager
def running(settings: Settings, timeout: float = 10.0) -> Iterator[str]:
    """Serve in a background thread (for tests and in-process stacks); yield the base URL."""
    server = _server(settings, "warning")
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"gateway did not start on {url(settings)}")
        time.sleep(0.01)
    try:
        yield url(settings)
    finally:
        server.should_exit = True
        thread.join(settings.shutdown_grace_s + 5)
