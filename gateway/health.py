"""`/health/deep`: is every dependency of the hub usable right now, and how fast
does it answer? (PostgreSQL, NATS, MLflow, the model store, free memory, and whether
any service's log follower is stuck on an event, with its position.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable

import httpx
import nats
import psutil
import psycopg

from mlxhub import __version__
from mlxhub.config import Settings
from mlxhub.followers import failing_followers
from mlxhub.redact import redact

CHECK_TIMEOUT_S = 3.0
MIN_FREE_MEMORY_GB = 0.5


async def _postgres(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError("MLXHUB_DATABASE_URL is not set")
    async with await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=3) as conn:
        await conn.execute("SELECT 1")
    return "connected"


async def _nats(settings: Settings) -> str:
    if not settings.nats_url:
        raise RuntimeError("MLXHUB_NATS_URL is not set")
    connection = await nats.connect(settings.nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0)
    try:
        info = await connection.jetstream().account_info()
        return f"jetstream streams={info.streams}"
    finally:
        await connection.close()


async def _followers(settings: Settings) -> str:
    """Read models and NATS publishers: each stuck one named with the position it fails on."""
    if not settings.database_url:
        raise RuntimeError("MLXHUB_DATABASE_URL is not set")

    def read():
        with psycopg.connect(settings.database_url, connect_timeout=3, autocommit=True,
                             options=f"-c search_path={settings.database_schema}") as conn:
            return failing_followers(conn)

    failures = await asyncio.to_thread(read)
    if failures:
        raise RuntimeError("; ".join(failure.describe() for failure in failures))
    return "none stuck"


async def _mlflow(settings: Settings) -> str:
    uri = settings.mlflow_tracking_uri
    if uri.startswith(("http://", "https://")):
        async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S) as client:
            (await client.get(uri.rstrip("/") + "/health")).raise_for_status()
        return uri
    store = uri.removeprefix("file://") if uri else str(settings.home / "mlflow")
    return _writable_dir(store)


def _writable_dir(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK):
        raise RuntimeError(f"{path} is not writable")
    free_gb = shutil.disk_usage(path).free / 1e9
    return f"{path} ({free_gb:.1f} GB free)"


async def _model_store(settings: Settings) -> str:
    return _writable_dir(str(settings.models_dir))


async def _memory(settings: Settings) -> str:
    available = psutil.virtual_memory().available / 1e9
    if available < MIN_FREE_MEMORY_GB:
        raise RuntimeError(f"only {available:.2f} GB of memory available")
    return f"{available:.1f} GB available"


CHECKS: dict[str, Callable[[Settings], Awaitable[str]]] = {
    "postgres": _postgres,
    "nats": _nats,
    "followers": _followers,
    "mlflow": _mlflow,
    "model_store": _model_store,
    "memory": _memory,
}


async def deep_health(settings: Settings) -> tuple[bool, dict]:
    async def run(name: str, check) -> dict:
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(check(settings), CHECK_TIMEOUT_S)
            ok = True
        except Exception as exc:  # noqa: BLE001  (any failure is the answer)
            detail, ok = f"{type(exc).__name__}: {exc}", False
        return {"name": name, "ok": ok, "detail": redact(detail), "latencyMs": round((time.perf_counter() - started) * 1000, 2)}

    results = await asyncio.gather(*(run(name, check) for name, check in CHECKS.items()))
    healthy = all(r["ok"] for r in results)
    return healthy, {"status": "ok" if healthy else "degraded", "version": __version__, "checks": results}
