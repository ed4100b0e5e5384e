"""Followers of an event log (read-model projections, NATS publishers) that never stop silently.

A follower that fails, on an event it cannot handle or because its database went
away, is logged with the event's position and type, counted in
`mlxhub_projection_failures_total`, recorded in the `follower_failures` table of
the hub's schema, and restarted with backoff. The table lets every replica's gRPC
health and the gateway's `/health/deep` name the stuck position, whichever replica
leads; the row is deleted once the follower gets past that position.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection
from prometheus_client import Counter
from psycopg.sql import SQL, Identifier

from mlxhub.commit_signal import listening_for_commits
from mlxhub.config import Settings
from mlxhub.eventstore import connect
from mlxhub.read_model import ReadModel
from mlxhub.stored_events import decode_events, read_page

log = logging.getLogger(__name__)

FAILURES_TABLE = "follower_failures"
FAILURES_COLUMNS = (
    "follower text PRIMARY KEY, service text NOT NULL, position bigint, event_type text NOT NULL,"
    " error text NOT NULL, failures bigint NOT NULL, since timestamptz NOT NULL, last timestamptz NOT NULL"
)
FOLLOWER_FAILURES = Counter(
    "mlxhub_projection_failures_total",
    "Failures of event-log followers (read-model projections, NATS publishers); each is followed by a restart",
    ["follower"],
)
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_S = 30.0  # a follower that ran this long without failing starts its backoff afresh
DB_TIMEOUT_S = 3
CATCH_UP_BATCH = 500  # events applied in one transaction at most
IDLE_WAIT_S = 0.2  # how often a quiet follower looks at whether it is being stopped
SETTLE_S = 0.02  # after a commit is announced, before the follower reads the log
WRITER_TURN_S = 0.5  # how long an append waits for the projector to apply it in the append's transaction


class EventFailed(Exception):
    """A follower could not handle the event at `position` (of type `event_type`)."""

    def __init__(self, position: int, event_type: str, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.position = position
        self.event_type = event_type


@dataclass(frozen=True)
class Failure:
    follower: str
    position: int | None  # the event it fails on, when one is known
    event_type: str
    error: str

    def describe(self) -> str:
        if self.position is None:
            return f"{self.follower} is failing: {self.error}"
        return f"{self.follower} is stuck at position {self.position} ({self.event_type}): {self.error}"


def event_type_of(topic: str) -> str:
    """`registry_svc.domain:Model.ModelRegistered` -> `ModelRegistered`."""
    return topic.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def failing_followers(conn: psycopg.Connection, service: str | None = None) -> list[Failure]:
    """The failures recorded in the table (of one service's followers, or all); none if it does not exist yet."""
    if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (FAILURES_TABLE,)).fetchone()[0]:
        return []
    rows = conn.execute(
        f"SELECT follower, position, event_type, error FROM {FAILURES_TABLE}"
        " WHERE %s::text IS NULL OR service = %s ORDER BY follower",
        (service, service),
    ).fetchall()
    return [Failure(*row) for row in rows]


def create_failures_table(conn: psycopg.Connection) -> None:
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {FAILURES_TABLE} ({FAILURES_COLUMNS})")
    except psycopg.errors.UniqueViolation:
        pass  # another follower created it at the same moment


class FollowerWatch:
    """What one follower reports: each failure (logged, counted, recorded) and getting past it."""

    def __init__(self, settings: Settings, service: str, follower: str,
                 on_change: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.service = service
        self.follower = follower
        self.on_change = on_change
        self.failure: Failure | None = None
        self.failing = threading.Event()
        self._lock = threading.Lock()

    def load(self) -> FollowerWatch:
        """Take over a failure that an earlier leader recorded, so that getting past it clears it."""
        try:
            with connect(self.settings, autocommit=True, connect_timeout=DB_TIMEOUT_S) as conn:
                create_failures_table(conn)
                found = [f for f in failing_followers(conn, self.service) if f.follower == self.follower]
        except psycopg.Error as exc:
            log.warning("cannot read the recorded failures of %s (%s)", self.follower, exc)
            return self
        if found:
            self.failure = found[0]
            self.failing.set()
        return self

    def failed(self, error: BaseException) -> Failure:
        """Log, count and record a failure; `error` is an EventFailed when the event is known."""
        if isinstance(error, EventFailed):
            failure = Failure(self.follower, error.position, error.event_type, str(error))
        else:
            failure = Failure(self.follower, None, "", f"{type(error).__name__}: {error}")
        FOLLOWER_FAILURES.labels(self.follower).inc()
        with self._lock:
            repeated = self.failure == failure
            self.failure = failure
            self.failing.set()
        if repeated:
            log.warning("%s; retrying", failure.describe())
        else:
            log.error("%s; retrying with backoff", failure.describe(), exc_info=error)
        self._record(failure)
        return failure

    def passed(self, position: int | None) -> None:
        """The follower handled everything up to `position` (None: it started and reads the log again)."""
        if not self.failing.is_set():
            return
        with self._lock:
            failure = self.failure
            if failure is None or (failure.position is not None and (position is None or position < failure.position)):
                return
            self.failure = None
            self.failing.clear()
        log.info("%s recovered (now past position %s)", self.follower, position)
        self._record(None)

    def _record(self, failure: Failure | None) -> None:
        try:
            with connect(self.settings, autocommit=True, connect_timeout=DB_TIMEOUT_S) as conn:
                create_failures_table(conn)
                if failure is None:
                    conn.execute(f"DELETE FROM {FAILURES_TABLE} WHERE follower = %s", (self.follower,))
                else:
                    conn.execute(
                        f"INSERT INTO {FAILURES_TABLE} AS f (follower, service, position, event_type, error, failures,"
                        " since, last) VALUES (%s, %s, %s, %s, %s, 1, now(), now()) ON CONFLICT (follower) DO UPDATE"
                        " SET position = EXCLUDED.position, event_type = EXCLUDED.event_type, error = EXCLUDED.error,"
                        " failures = f.failures + 1, last = now(),"
                        " since = CASE WHEN f.position IS NOT DISTINCT FROM EXCLUDED.position THEN f.since ELSE now() END",
                        (self.follower, self.service, failure.position, failure.event_type, failure.error[:2000]),
                    )
        except psycopg.Error as exc:  # the database is away: readiness reports that by itself
            log.debug("cannot record the state of %s (%s)", self.follower, exc)
        if self.on_change is not None:
            self.on_change()


class LogProjector:
    """Brings a read model up to the end of its application's log: reads what is pending after the
    applied position and applies it in one transaction that also records the new position
    (`ReadModel.process`), so no event is applied twice or skipped.

    The follower's thread calls `catch_up()` when commits are announced; a writer on the leading
    replica calls `catch_up(through=its position)` itself, so its answer follows its read model
    without handing over to another thread and back, and the events of writers that commit meanwhile
    are applied in the same transaction. One lock makes the callers take turns; a batch that fails
    is applied again one event at a time, to apply what precedes the event that fails and name it.

    Ahead of both, a writer's events are applied in the transaction that appends them where they
    follow on from the applied position (`prepare`, an `AppendEffect`); the catch-up then finds them applied."""

    def __init__(self, app: Application, view: ReadModel, watch: FollowerWatch, topics: Sequence[str] = (),
                 batch_size: int = CATCH_UP_BATCH) -> None:
        self.app = app
        self.view = view
        self.watch = watch
        self.topics = tuple(topics)
        self.batch_size = batch_size
        self.position: int | None = None  # applied, as far as this process knows; None: ask the tracking table
        self._lock = threading.Lock()
        self._written: dict[int, Any] = {}  # position -> stored event committed by a writer, not yet applied
        self.on_append_applied: Callable[[], None] | None = None  # called for each append it applies (a commit)

    def catch_up(self, through: int | None = None, timeout: float = -1, written: Sequence[Any] = ()) -> bool:
        """Apply what is pending, up to the log's end or at least through position `through`; False
        if the lock was not had within `timeout` seconds (-1: wait as long as it takes). `written`:
        the caller's own stored events just committed (with their positions), applied from memory
        when they follow on from the applied position, instead of being read back from the log."""
        for notification in written:
            self._written[notification.id] = notification
        if not self._lock.acquire(timeout=timeout):
            return False
        try:
            if self.position is None:
                self.position = self.view.max_tracking_id(self.app.name) or 0
            for stale in [n for n in self._written if n <= self.position]:  # applied in their append's transaction
                self._written.pop(stale, None)
            while through is None or self.position < through:
                notifications = (not self.topics and self._written_next()) or read_page(
                    self.app.recorder, self.position, self.batch_size, self.topics
                )  # (with topics, positions skip those of other topics: read them)
                if not notifications:
                    break
                self._apply(notifications)
            return True
        except BaseException:
            self.position = None  # a commit may have failed after it happened: read the position again
            self._written.clear()
            raise
        finally:
            self._lock.release()

    def prepare(self, stored_events: Sequence[Any]) -> _AppendApplies | None:
        """Get ready to apply a writer's `stored_events` in the transaction that appends them (an
        `AppendEffect`): decoded now, and the projector's turn taken until that transaction ends, so
        that nothing else applies meanwhile. None (the writer appends alone) with topics, where the
        applied position is not known here, or while the projector is busy for `WRITER_TURN_S`."""
        if self.topics:
            return None
        try:
            events = decode_events(self.app.mapper, stored_events)
        except Exception:  # noqa: BLE001  (the follower meets it in the log, and names it)
            return None
        if not self._lock.acquire(timeout=WRITER_TURN_S):
            return None
        if self.position is None:
            self._lock.release()
            return None
        return _AppendApplies(self, events)

    def logged_between(self, curs: Any, position: int) -> bool:
        """Whether the log holds events between the applied position and `position`, asked in an
        append's transaction (whose lock on the log lets no earlier position be committed later):
        positions given up by appends that were rolled back leave holes that never fill."""
        recorder = self.app.recorder
        statement = SQL("SELECT EXISTS (SELECT FROM {}.{} WHERE notification_id > %s AND notification_id < %s)")
        table = statement.format(Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name))
        return curs.execute(table, (self.position, position)).fetchone()["exists"]

    def appended(self, applied: Sequence[int] | None, unsure: bool) -> None:
        """A prepared append's transaction ended: committed with its events applied through
        `applied[-1]`, or rolled back (None); `unsure`: a commit whose answer was lost may have
        happened, so the tracking table is asked again."""
        if applied:
            self.position = applied[-1]
            if self.on_append_applied is not None:
                self.on_append_applied()
        elif unsure:
            self.position = None
        self._lock.release()
        if applied:
            self.view.reached(applied[-1])
            self.watch.passed(applied[-1])

    def _written_next(self) -> list[Any]:
        """The writers' events that directly follow the applied position, in order (the log's own
        rows: a transaction's events take consecutive positions under the library's table lock)."""
        for stale in [n for n in self._written if n <= self.position]:
            self._written.pop(stale, None)
        run: list[Any] = []
        while len(run) < self.batch_size and (n := self._written.pop(self.position + len(run) + 1, None)):
            run.append(n)
        return run

    def _apply(self, notifications: Sequence[Any]) -> None:
        name = self.app.name
        try:
            events = decode_events(self.app.mapper, notifications)
        except Exception:  # noqa: BLE001  (found again below, one event at a time, to name it)
            events = [self._decode(n) for n in notifications]
        batch = [(e, Tracking(name, n.id)) for e, n in zip(events, notifications, strict=True)]
        try:
            self.view.process(batch)
        except Exception as exc:
            if len(batch) == 1:
                raise EventFailed(batch[0][1].notification_id, type(batch[0][0]).__name__, exc) from exc
            self.position = self.view.max_tracking_id(name) or 0  # the batch was rolled back
            for domain_event, tracking in batch:
                if tracking.notification_id > self.position:
                    self._apply_one(domain_event, tracking)
        self.position = batch[-1][1].notification_id
        self.watch.passed(self.position)

    def _decode(self, notification: Any) -> Any:
        try:
            return self.app.mapper.to_domain_event(notification)
        except Exception as exc:
            raise EventFailed(notification.id, event_type_of(notification.topic), exc) from exc

    def _apply_one(self, domain_event: Any, tracking: Tracking) -> None:
        try:
            self.view.process([(domain_event, tracking)])
        except Exception as exc:
            raise EventFailed(tracking.notification_id, type(domain_event).__name__, exc) from exc
        self.position = tracking.notification_id
        self.watch.passed(self.position)


class _AppendApplies:
    """A writer's events applied to the read model in their append's transaction (`LogProjector.prepare`),
    where they follow on directly from the applied position; the projector's turn is held until
    `finish`."""

    def __init__(self, projector: LogProjector, events: Sequence[Any]) -> None:
        self.projector = projector
        self.events = events

    def begin(self, curs: Any) -> None:
        self.projector.view.enter(curs)

    def apply(self, curs: Any, positions: Sequence[int]) -> bool:
        projector = self.projector
        if positions[-1] != positions[0] + len(positions) - 1:
            return False
        if positions[0] != projector.position + 1 and projector.logged_between(curs, positions[0]):
            return False  # another process's commit lies between: the log is read for it after this one
        projector.view.process_within(curs, list(zip(self.events, positions, strict=True)),
                                      Tracking(projector.app.name, positions[-1]))
        return True

    def finish(self, applied: Sequence[int] | None, unsure: bool) -> None:
        self.projector.appended(applied, unsure)


class WritersProjection:
    """The projection that this replica runs while it leads (`current()`, None otherwise), as the
    `AppendEffect` of its writers' appends (`HubApplication.apply_in_appends`)."""

    def __init__(self, current: Callable[[], SupervisedProjection | None]) -> None:
        self.current = current

    def prepare(self, stored_events: Sequence[Any]) -> _AppendApplies | None:
        projection = self.current()
        return projection.prepare(stored_events) if projection is not None else None


class SupervisedProjection:
    """Follows the log into a read model on a thread of its own (with its own application, so its
    own connections): LISTENs for commits first (mlxhub.commit_signal), then catches up, and again
    when commits are announced. Whenever that fails it reports the failure and starts again after a
    backoff, from the tracked position.

    Writers on this replica apply their own events (`catch_up_for_writer`), so the follower reads the
    log only for commits it cannot account to them: each writer's save is counted, and as many
    announcements are taken as theirs. An announcement so taken that was another process's (the
    count runs ahead of the announcements where saves were appended together, or announced late) is
    caught up with once the log goes quiet; until then, a writer whose events do not follow on from
    the applied position reads the log between, and so applies it."""

    def __init__(self, watch: FollowerWatch, projection: Projection[Any], application_class: type,
                 tracking_recorder: ReadModel, env: dict[str, str], topics: Sequence[str] = ()) -> None:
        self.watch = watch
        self.name = projection.name
        self.application_class = application_class
        self.view = tracking_recorder
        self.env = env
        self.topics = tuple(topics)
        self.projector: LogProjector | None = None
        self._own_commits = 0  # writers' commits whose announcement the follower has not taken yet
        self._left_to_follower = False  # a writer could not apply its own commit
        self._count_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{watch.follower}-supervisor", daemon=True)

    def start(self) -> SupervisedProjection:
        self.watch.load()
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def catch_up_for_writer(self, written: Sequence[Any], timeout: float) -> bool:
        """Apply the log through the writer's stored events `written` (just committed) in the caller's
        thread; False where it cannot now (not started, stopping, failing, or busy for `timeout`
        seconds): the caller then waits for the follower."""
        projector = self.projector
        if projector is None or self._stopping.is_set():
            return False
        position = max(n.id for n in written)
        applied = projector.position
        if applied is not None and applied >= position:
            return True  # applied in its append's transaction (whose commit is counted there)
        self._count_own_commit()
        try:
            if not self.watch.failing.is_set() and projector.catch_up(position, timeout, written):
                return True
        except Exception as exc:  # noqa: BLE001  (the follower's thread meets it again and reports it)
            log.debug("a writer could not bring %s to position %s (%s)", self.name, position, exc)
        self._left_to_follower = True
        return False

    def prepare(self, stored_events: Sequence[Any]) -> _AppendApplies | None:
        """The projection as an `AppendEffect` of the writers' appends (mlxhub.eventstore): their
        events applied in the transaction that appends them, while this projection runs and is not failing."""
        projector = self.projector
        if projector is None or self._stopping.is_set() or self.watch.failing.is_set():
            return None
        return projector.prepare(stored_events)

    def _count_own_commit(self) -> None:
        """One more commit of this process's writers, whose announcement the follower need not follow."""
        with self._count_lock:
            self._own_commits += 1

    def _foreign(self, announced: int) -> bool:
        """Whether `announced` commits include any that no writer of this process counted."""
        with self._count_lock:
            own = min(announced, self._own_commits)
            self._own_commits -= own
        return announced > own or self._left_to_follower

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stopping.is_set():
            started = time.monotonic()
            app = None
            try:
                app = self.application_class(self.env)
                projector = LogProjector(app, self.view, self.watch, self.topics)
                projector.on_append_applied = self._count_own_commit
                with listening_for_commits(app.recorder) as committed:
                    projector.catch_up()
                    self.watch.passed(projector.position)
                    self.projector = projector
                    self._follow(projector, committed)
            except Exception as exc:  # noqa: BLE001  (every failure is reported, then retried)
                if self._stopping.is_set():
                    break
                self.watch.failed(exc)
            finally:
                self.projector = None
                if app is not None:
                    with contextlib.suppress(Exception):  # its error was reported above
                        app.close()
            if time.monotonic() - started > STABLE_S:
                backoff = FIRST_BACKOFF_S
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _follow(self, projector: LogProjector, committed: Callable[[float], bool]) -> None:
        unsure = False  # announcements were taken as writers' own since the last catch-up
        while not self._stopping.is_set():
            if committed(IDLE_WAIT_S):
                self._stopping.wait(SETTLE_S)  # gather a burst's announcements into one catch-up
                announced = 1
                while committed(0):
                    announced += 1
                if not self._foreign(announced):
                    unsure = True
                    continue
            elif unsure or self._left_to_follower:
                with self._count_lock:
                    self._own_commits = 0  # what they counted is caught up with now
            else:
                continue
            self._left_to_follower = unsure = False
            projector.catch_up()
