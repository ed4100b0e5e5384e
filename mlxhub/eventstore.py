"""Configure the `eventsourcing` library's PostgreSQL persistence from hub settings.

Each service is its own eventsourcing application with its own tables (the
library locks an application's events table on every write, so sharing one
would serialize every service's writers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from prometheus_client import Counter
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from mlxhub.config import ConfigError, Settings


def postgres_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment (POSTGRES_* variables) for the hub's database."""
    if not settings.database_url:
        raise ConfigError("MLXHUB_DATABASE_URL is not set; run `mlx-hub up` or point it at a PostgreSQL server")
    info = conninfo_to_dict(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(info.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(info.get("port") or 5432),
        "POSTGRES_USER": str(info.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(info.get("password") or ""),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "16",
        "POSTGRES_CONN_MAX_AGE": "600",
        "POSTGRES_PRE_PING": "y",
        # How long a call waits for a pooled connection (the library retries a read or an append
        # ten times): while the database is unreachable, calls answer UNAVAILABLE after ~12 s
        # instead of the 300 s that the library's default of 30 s makes
        "POSTGRES_CONNECT_TIMEOUT": "1",
    }


RECONNECT_ATTEMPT_S = 5.0


def reconnect_promptly(datastore: Any) -> None:
    """Make a datastore's pool give up a failing connection attempt after a few seconds (and start
    a fresh one on the next call), instead of backing off for up to five minutes, so that calls
    succeed again within seconds once the database is back."""
    datastore.pool.reconnect_timeout = RECONNECT_ATTEMPT_S


def connect(settings: Settings, **kwargs) -> psycopg.Connection:
    """A plain psycopg connection whose search_path is the hub's schema."""
    if not settings.database_url:
        raise ConfigError("MLXHUB_DATABASE_URL is not set")
    return psycopg.connect(settings.database_url, options=f"-c search_path={settings.database_schema}", **kwargs)


def ensure_schema(settings: Settings) -> None:
    """eventsourcing needs POSTGRES_SCHEMA to exist before it creates its tables."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(settings.database_schema)))


EVENT_APPENDS = Counter("mlxhub_eventstore_appends_total", "Events appended to the event store", ["application"])


class HubApplication(Application[UUID]):
    """An eventsourcing application that counts its appends and, after each save, hands the stored
    events it committed to the service (`after_save`), which lets its read model catch up with them
    before the write is answered (so reads follow writes)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        datastore = getattr(self.recorder, "datastore", None)  # none in memory (tests' POPO persistence)
        if datastore is not None:
            reconnect_promptly(datastore)
        self.after_save: Callable[[Sequence[Notification]], None] | None = None

    def save(self, *objs: Any, **kwargs: Any):  # type: ignore[override]
        recordings = super().save(*objs, **kwargs)
        if recordings:
            EVENT_APPENDS.labels(self.name).inc(len(recordings))
            if self.after_save is not None:
                self.after_save([r.notification for r in recordings])
        return recordings
