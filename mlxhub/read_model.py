"""Base for read models: PostgreSQL tables kept by a projection, whose rows and
tracking position are written in one transaction.

`wait()` lets a service answer a read that follows its own write (ListModels
after CreateModel) as soon as the projection has applied it: the in-process
runner wakes waiters when a batch commits, instead of the library's polling
wait with its 100 ms first sleep. Positions applied by another process are
still found through the tracking table.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import DataError as StoredDataError
from eventsourcing.persistence import InfrastructureFactory, Tracking, WaitInterruptedError
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.utils import Environment
from psycopg import Cursor, DataError
from psycopg.sql import SQL, Composable, Identifier

from mlxhub.eventstore import reconnect_promptly
from mlxhub.stored_events import decode_events, read_page

log = logging.getLogger(__name__)

POLL_SLICE_SECONDS = 0.05


class ReadModel(PostgresTrackingRecorder):
    # The tables a rebuild empties (a subclass names its own).
    tables: tuple[str, ...] = ()

    def __init__(self, datastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        reconnect_promptly(self.datastore)
        self.schema = Identifier(self.datastore.schema)
        self._progress = threading.Condition()
        self._processed = 0

    def apply(self, domain_event: Any, curs: Cursor, position: int) -> None:
        """Change the tables for one event (subclasses dispatch on the event type)."""
        raise NotImplementedError

    def apply_batch(self, events: Sequence[tuple[Any, int]], curs: Cursor) -> None:
        """Change the tables for (event, position) pairs in log order; a subclass may apply them
        with a few set-based statements instead of one or more per event."""
        for domain_event, position in events:
            self.apply(domain_event, curs, position)

    def process(self, batch: Sequence[tuple[Any, Tracking]]) -> None:
        """Apply events and record the last position, all in one transaction."""
        if not batch:
            return
        with self.datastore.transaction(commit=True) as curs:
            # Its commit need not wait for the disk: a crash loses the rows and the position together,
            # and the projection applies those events again from the log (which is written durably)
            curs.execute(SQL("SET LOCAL search_path TO {}; SET LOCAL synchronous_commit TO off").format(self.schema))
            self.apply_batch([(domain_event, tracking.notification_id) for domain_event, tracking in batch], curs)
            self.track(curs, batch[-1][1])
        self.reached(batch[-1][1].notification_id)

    def enter(self, curs: Cursor) -> None:
        """Make someone else's transaction (an append's) ready for `process_within`."""
        curs.execute(SQL("SET LOCAL search_path TO {}").format(self.schema))

    def process_within(self, curs: Cursor, events: Sequence[tuple[Any, int]], tracking: Tracking) -> None:
        """Apply (event, position) pairs and record `tracking` in someone else's transaction (the
        append's own, after `enter`: its commit, durable, makes the events, the rows and the
        position visible together); the caller calls `reached` once it commits."""
        self.apply_batch(events, curs)
        self.track(curs, tracking)

    def track(self, curs: Cursor, tracking: Tracking) -> None:
        """Record the position applied, in the transaction that applied it."""
        self._insert_tracking(curs, tracking)

    def reached(self, position: int) -> None:
        """Wake the waiters for positions up to `position`, now committed."""
        with self._progress:
            self._processed = max(self._processed, position)
            self._progress.notify_all()

    def wait(
        self,
        application_name: str,
        notification_id: int | None,
        timeout: float = 1.0,
        interrupt: threading.Event | None = None,
    ) -> None:
        if notification_id is None:
            return
        deadline = time.monotonic() + timeout
        while True:
            with self._progress:
                slice_seconds = max(0.0, min(POLL_SLICE_SECONDS, deadline - time.monotonic()))
                if self._progress.wait_for(lambda: self._processed >= notification_id, timeout=slice_seconds):
                    return
            if self.has_tracking_id(application_name, notification_id):
                return
            if interrupt is not None and interrupt.is_set():
                raise WaitInterruptedError
            if time.monotonic() > deadline:
                raise TimeoutError(f"read model did not reach notification {notification_id} within {timeout}s")

    def wait_after_write(self, application_name: str, notification_id: int, timeout: float,
                         stuck: threading.Event) -> None:
        """Let a write's answer follow its read model for up to `timeout`, but never fail it: the
        write is committed, and its answer is built from the aggregate. While the projection is
        stuck (`stuck` set), there is nothing to wait for."""
        if stuck.is_set():
            return
        try:
            self.wait(application_name, notification_id, timeout, interrupt=stuck)
        except (TimeoutError, WaitInterruptedError):
            log.warning("the read model has not reached position %s; answering from the written aggregate",
                        notification_id)
        except Exception as exc:  # noqa: BLE001  (the database went away after the commit)
            log.warning("cannot see whether the read model reached position %s (%s)", notification_id, exc)

    def fold_log(self, curs: Cursor, events: Composable, through: int) -> bool:
        """Fill the emptied tables from the stored events up to position `through` (`events`: the
        log's table) inside the database, in the transaction of `curs`, without one event crossing
        into Python; False where this read model cannot (a rebuild then replays the log through
        `apply_batch`). A subclass writes exactly what `apply_batch` writes for the same events."""
        return False

    def drop(self, application_name: str) -> None:
        """Forget every row and the tracked position, so the next run rebuilds from the log."""
        with self.datastore.transaction(commit=True) as curs:
            for table in self.tables:
                curs.execute(SQL("TRUNCATE {}.{}").format(self.schema, Identifier(table)))
            curs.execute(
                SQL("DELETE FROM {}.{} WHERE application_name = %s").format(
                    self.schema, Identifier(self.tracking_table_name)
                ),
                (application_name,),
            )

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(SQL("SET LOCAL search_path TO {}").format(self.schema))
            curs.execute(statement, tuple(params))
            return list(curs.fetchall())


REBUILD_BATCH = 5000  # events per transaction of a rebuild
# A time as the library's JSON transcoder stores it (DatetimeAsISO, in its compact separators).
STORED_TIME = '"_type_":"datetime_iso","_data_":'


NOTHING = SQL("")


def stored_events(events: Composable, through: Composable, where: Composable = NOTHING,
                  order_by: Composable = NOTHING) -> Composable:
    """A SELECT of the log's events up to position `through` (`where`: more conditions, `order_by`: an
    ORDER BY), as a fold in the database reads them, for `ReadModel.fold_log`: position, id,
    version, topic, the state's text `t` and its JSON `j` (parsed once), `transcoded` (how many
    values the text holds in the transcoder's {"_type_": ..., "_data_": ...} form) and `times` (how
    many of them are times). A fold copies times as they are stored; it declines an event with
    any other transcoded value (or a class version), which only the Python path decodes."""
    return SQL(
        "SELECT notification_id AS position, originator_id AS id, originator_version AS version, topic, t,"
        " t::jsonb AS j, (octet_length(t) - octet_length(replace(t, '\"_type_\"', ''))) / 8 AS transcoded,"
        " (octet_length(t) - octet_length(replace(t, {time}, ''))) / {time_length} AS times"
        " FROM (SELECT notification_id, originator_id, originator_version, topic, convert_from(state, 'UTF8') AS t"
        " FROM {events} WHERE notification_id <= {through}{where}{order_by} OFFSET 0) AS stored"
    ).format(time=STORED_TIME, time_length=len(STORED_TIME.encode()), events=events, through=through, where=where,
             order_by=order_by)


class _NotFolded(Exception):
    """The read model cannot fold this log in the database (rolls the attempt back)."""


def rebuild(app: Any, view: ReadModel, batch_size: int = REBUILD_BATCH, in_database: bool = True) -> int:
    """Drop the read model and replay the application's whole log into it; the number of events
    replayed. Run it while no projection follows the same tables (the service is stopped); its
    projection resumes from the rebuilt position when it starts.

    Where the read model folds the log in the database (`ReadModel.fold_log`, and the events are
    stored neither enciphered nor compressed), the whole rebuild is one transaction of a few
    statements. Otherwise, or with `in_database=False`, the events are decoded here and applied a
    batch per transaction, a thread reading and decoding the next batch while the database applies
    this one."""
    if in_database and not (app.mapper.cipher or app.mapper.compressor):
        count = _rebuild_in_database(app, view)
        if count is not None:
            return count
    view.drop(app.name)
    count = 0
    for batch in _read_ahead(app, batch_size):
        view.process(batch)
        count += len(batch)
    return count


def _rebuild_in_database(app: Any, view: ReadModel) -> int | None:
    """The rebuild as one transaction in which the database folds the log (None where the read
    model declines this log, or PostgreSQL refuses a stored event's JSON, e.g. a NaN)."""
    events = SQL("{}.{}").format(view.schema, Identifier(app.recorder.events_table_name))
    try:
        with view.datastore.transaction(commit=True) as curs:
            count, through = curs.execute(
                SQL("SELECT count(*), max(notification_id) FROM {}").format(events)
            ).fetchone().values()
            for table in view.tables:
                curs.execute(SQL("TRUNCATE {}.{}").format(view.schema, Identifier(table)))
            curs.execute(
                SQL("DELETE FROM {}.{} WHERE application_name = %s").format(
                    view.schema, Identifier(view.tracking_table_name)
                ),
                (app.name,),
            )
            if through is None:
                return 0
            curs.execute(SQL("SET LOCAL search_path TO {}").format(view.schema))
            if not view.fold_log(curs, events, through):
                raise _NotFolded
            view.track(curs, Tracking(app.name, through))
    except _NotFolded:
        return None
    except (DataError, StoredDataError) as error:  # the library wraps psycopg's
        log.warning("the database cannot fold this log (%s); replaying it event by event", error)
        return None
    view.reached(through)
    return count


def _read_ahead(app: Any, batch_size: int) -> Iterator[list[tuple[Any, Tracking]]]:
    """The log's events in batches, read and decoded one batch ahead of the caller, in order."""
    batches: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                batches.put(item, timeout=0.1)
                return

    def read() -> None:
        position = 0
        try:
            while not stop.is_set():
                notifications = read_page(app.recorder, position, batch_size)
                if not notifications:
                    break
                events = decode_events(app.mapper, notifications)
                put([(e, Tracking(app.name, n.id)) for e, n in zip(events, notifications, strict=True)])
                position = notifications[-1].id
            put(None)
        except BaseException as error:  # noqa: BLE001  (raised in the caller's thread)
            put(error)

    reader = threading.Thread(target=read, name="rebuild-reader", daemon=True)
    reader.start()
    try:
        while (batch := batches.get()) is not None:
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        stop.set()  # a reader waiting on a full queue gives up within 0.1 s
        reader.join()


def open_read_model(view_class: type[ReadModel], projection_name: str, env: dict[str, str]) -> Any:
    """The read model `view_class` of a projection, in the hub's database (its tables created if need be)."""
    return InfrastructureFactory.construct(Environment(projection_name, env)).tracking_recorder(view_class)
