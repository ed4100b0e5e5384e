"""Configure the `eventsourcing` library's PostgreSQL persistence from hub settings.

Each service is its own eventsourcing application with its own tables (the
library locks an application's events table on every write, so sharing one
would serialize every service's writers).

An append is one statement (`HubApplicationRecorder`): the library's own append takes a
transaction of several statements and two round trips to the server, plus its commit. Where an
`AppendEffect` takes part (the leading replica's read-model projection), the append and its effect
are one pipelined transaction of three round trips and one commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from prometheus_client import Counter
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from mlxhub.config import ConfigError, Settings

log = logging.getLogger(__name__)


def postgres_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment (POSTGRES_* variables) for the hub's database."""
    if not settings.database_url:
        raise ConfigError("MLXHUB_DATABASE_URL is not set; run `mlx-hub up` or point it at a PostgreSQL server")
    info = conninfo_to_dict(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "APPLICATION_RECORDER_TOPIC": f"{__name__}:HubApplicationRecorder",
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


class HubApplicationRecorder(PostgresApplicationRecorder):
    """The library's application recorder, appending with one statement that runs as its own
    transaction: a function (created with the tables) that takes the same EXCLUSIVE lock on the
    events table as the library does, so that positions are committed in the order they are given
    and a reader never passes over a gap that fills later, announces the commit (NOTIFY) and inserts
    the events, returning their positions. One round trip instead of two plus the commit's.

    The table lock lets one append commit at a time, so this process sends one at a time, and the
    writers that arrive meanwhile are appended together by the next (group commit): one statement
    and one wait for the disk for all of them. Where that one is refused (an event of one writer
    conflicts: the aggregate was changed, or the name is taken), each writer's events are appended
    on their own, so each writer gets its own answer, as if it had appended alone.

    With an `effect` (`HubApplication.apply_in_appends`), each append that the effect takes part in
    also applies it, in the same transaction: the events and their effect commit together."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema, table = sql.Identifier(datastore.schema), sql.Identifier(events_table_name)
        function = sql.Identifier(f"{events_table_name}_append"[: self.MAX_IDENTIFIER_LEN])
        id_type = sql.SQL(datastore.originator_id_type)  # uuid or text, as the table's column
        self.sql_create_statements.append(sql.SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{function}"
            "(ids {id_type}[], versions bigint[], topics text[], states bytea[])"
            " RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ BEGIN"
            " SET LOCAL lock_timeout = '{lock_timeout}s';"
            " LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
            " NOTIFY {channel};"
            " RETURN QUERY INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(ids, versions, topics, states) RETURNING notification_id;"
            " END; $BODY$"
        ).format(
            schema=schema, table=table, function=function, id_type=id_type,
            lock_timeout=datastore.lock_timeout, channel=sql.Identifier(self.channel_name),
        ))
        # Four arrays rather than one of the library's composite type: psycopg sends those in binary
        self.append_statement = sql.SQL(
            "SELECT position FROM {}.{}(%s::{id_type}[], %s::bigint[], %s::text[], %s::bytea[]) AS position"
        ).format(schema, function, id_type=id_type).as_bytes()
        self._turn = threading.Condition()
        self._sending = False  # an append is under way
        self._arrived: list[_Append] = []  # writers waiting for the next append
        self.effect: AppendEffect | None = None  # applied in each append's transaction, where it takes part

    def create_table(self) -> None:
        """Create the tables and functions one process at a time: processes that start together (a
        service and its workers) run the same statements, and PostgreSQL's IF NOT EXISTS and OR
        REPLACE are not safe against each other ("relation already exists", "tuple concurrently
        updated"). A session lock on a connection of its own is held while the library creates them."""
        key = f"mlxhub create {self.datastore.schema}.{self.events_table_name}"
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
                conn.commit()

    @property
    def waiting(self) -> int:
        """Writers waiting for the next append."""
        with self._turn:
            return len(self._arrived)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        mine = _Append(stored_events)
        with self._turn:
            self._arrived.append(mine)
            while self._sending and not mine.done:
                self._turn.wait()
            if not mine.done:  # no append under way took it along: send it, and whatever arrived with it
                self._sending = True
                group, self._arrived = self._arrived, []
        if not mine.done:
            try:
                self._append_group(group)
            finally:
                with self._turn:
                    for append in group:
                        append.done = True
                    self._sending = False
                    self._turn.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.positions

    def _append_group(self, group: list[_Append]) -> None:
        try:
            positions = self._append([event for append in group for event in append.events])
        except IntegrityError as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for append in group:
                try:
                    append.positions = self._append(append.events)
                except Exception as own:  # noqa: BLE001  (raised in that writer's thread)
                    append.error = own
        except Exception as exc:  # noqa: BLE001  (raised in each writer's thread)
            for append in group:
                append.error = type(exc)(*exc.args) if len(group) > 1 else exc
        else:
            start = 0
            for append in group:
                append.positions = positions[start:start + len(append.events)]
                start += len(append.events)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def _append(self, events: Sequence[StoredEvent]) -> list[int]:
        columns = ([e.originator_id for e in events], [e.originator_version for e in events],
                   [e.topic for e in events], [e.state for e in events])
        effect = self.effect
        with self.datastore.get_connection() as conn:
            prepared = effect.prepare(events) if effect is not None else None
            if prepared is not None:
                positions = self._append_with_effect(conn, columns, prepared)
                if positions is not None:
                    return positions
            with conn.cursor() as curs:
                curs.execute(self.append_statement, columns, prepare=True)
                return [row["position"] for row in curs.fetchall()]

    def _append_with_effect(self, conn: psycopg.Connection, columns: tuple, prepared: PreparedEffect) -> list[int] | None:
        """Append and apply `prepared` in one transaction; None where the effect declined or failed
        (rolled back: the caller appends alone, and the effect is left to the log's followers).

        Pipelined, with the transaction's own BEGIN and COMMIT (psycopg's transaction blocks sync the
        pipeline on entering and leaving): BEGIN, the effect's first statements and the append in one
        round trip, the effect's changes in the next (the read model's position is checked before
        committing), COMMIT in the pipeline's closing sync. The append's own errors (a conflict) come
        with its positions; an error in that closing sync is the effect's."""
        applied: list[int] | None = None
        unsure = committing = False
        try:
            with conn.pipeline(), conn.cursor() as curs:
                try:
                    curs.execute(b"BEGIN")
                    prepared.begin(curs)
                    curs.execute(self.append_statement, columns, prepare=True)
                    positions = [row["position"] for row in curs.fetchall()]
                    try:
                        done = prepared.apply(curs, positions)
                    except Exception as exc:  # its follower meets it again, and reports it
                        raise _EffectFailed from exc
                    if not done:
                        raise _EffectDeclined
                    committing = True
                    curs.execute(b"COMMIT")
                except BaseException:
                    if not committing:
                        conn.rollback()  # (gets the pipeline out of an aborted state first)
                    raise
            applied = positions
        except _EffectDeclined:
            return None
        except _EffectFailed as failed:
            log.debug("an append's effect failed (%s); appending alone", failed.__cause__)
            return None
        except (psycopg.OperationalError, psycopg.InterfaceError):
            unsure = committing  # the connection failed: its commit may have happened
            raise
        except psycopg.Error as refused:
            if not committing:
                raise  # the append's own
            conn.rollback()  # the transaction failed before its COMMIT, which was not run
            log.debug("an append's effect failed (%s); appending alone", refused)
            return None
        finally:
            prepared.finish(applied, unsure)
        return applied


class PreparedEffect(Protocol):
    """What an append's effect does in the append's own transaction (`AppendEffect.prepare`)."""

    def begin(self, curs: psycopg.Cursor) -> None:
        """Statements to run in the transaction before the append (sent with it: nothing fetched)."""
        ...

    def apply(self, curs: psycopg.Cursor, positions: Sequence[int]) -> bool:
        """Apply the events, now at `positions`, in the transaction of `curs` (not committed yet);
        False to decline (the transaction is then rolled back and the events appended alone). The
        transaction is pipelined: what it does not fetch is answered with the COMMIT (a statement
        refused there rolls everything back)."""
        ...

    def finish(self, applied: Sequence[int] | None, unsure: bool) -> None:
        """After the transaction: committed with the effect at `applied`, or rolled back (None; `unsure`:
        the connection failed, and whether it committed is not known)."""
        ...


class AppendEffect(Protocol):
    """Something that changes in the transaction that appends events (a writer's read model): one
    commit makes the events and their effect durable together."""

    def prepare(self, events: Sequence[StoredEvent]) -> PreparedEffect | None:
        """Get ready to apply `events` (before their transaction begins); None to stay out of it."""
        ...


class _EffectDeclined(Exception):
    """The effect declined the append's transaction (rolls it back)."""


class _EffectFailed(Exception):
    """The effect failed in the append's transaction (rolls it back)."""


class _Append:
    """One writer's events, and what became of them: their positions, or the error."""

    __slots__ = ("done", "error", "events", "positions")

    def __init__(self, events: Sequence[StoredEvent]) -> None:
        self.events = events
        self.positions: list[int] | None = None
        self.error: BaseException | None = None
        self.done = False


EVENT_APPENDS = Counter("mlxhub_eventstore_appends_total", "Events appended to the event store", ["application"])


class HubApplication(Application[UUID]):
    """An eventsourcing application that counts its appends and, after each save, hands the stored
    events it committed to the service (`after_save`), which lets its read model catch up with them
    before the write is answered (so reads follow writes)."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        # Its appends and reads are retried by the library when a pooled connection turns out to be
        # dead (after a database restart), so it need not ping the server before every use: a round
        # trip on each append and read. The read models' queries are not retried, and keep the ping.
        super().__init__({**env, "POSTGRES_PRE_PING": "n"} if env else env)
        datastore = getattr(self.recorder, "datastore", None)  # none in memory (tests' POPO persistence)
        if datastore is not None:
            reconnect_promptly(datastore)
        self.after_save: Callable[[Sequence[Notification]], None] | None = None

    def apply_in_appends(self, effect: AppendEffect | None) -> None:
        """Apply `effect` (a read model's projection) in the transaction of each append that it takes
        part in; nothing where the events are not stored in PostgreSQL (tests' POPO persistence)."""
        if isinstance(self.recorder, HubApplicationRecorder):
            self.recorder.effect = effect

    def save(self, *objs: Any, **kwargs: Any):  # type: ignore[override]
        recordings = super().save(*objs, **kwargs)
        if recordings:
            EVENT_APPENDS.labels(self.name).inc(len(recordings))
            if self.after_save is not None:
                self.after_save([r.notification for r in recordings])
        return recordings
