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
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.projection import BaseProjectionRunner, Projection
from prometheus_client import Counter

from mlxhub.config import Settings
from mlxhub.eventstore import connect

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


class WatchedProjection(Projection[Any]):
    """A projection that names the event it failed on, and reports each position it passes."""

    def __init__(self, inner: Projection[Any], watch: FollowerWatch) -> None:
        super().__init__(view=inner.view)
        self.inner = inner
        self.watch = watch

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        try:
            self.inner.process_event(domain_event, tracking)
        except Exception as exc:
            raise EventFailed(tracking.notification_id, type(domain_event).__name__, exc) from exc
        self.watch.passed(tracking.notification_id)


class SupervisedProjection:
    """Runs a projection with the library's `BaseProjectionRunner` and, whenever the runner
    stops with an error (`run_forever` re-raises it), reports it and starts a new runner
    after a backoff, from the tracked position."""

    def __init__(self, watch: FollowerWatch, projection: Projection[Any], application_class: type,
                 tracking_recorder: TrackingRecorder, env: dict[str, str], topics: Sequence[str] = ()) -> None:
        self.watch = watch
        self.projection = WatchedProjection(projection, watch)
        self.application_class = application_class
        self.tracking_recorder = tracking_recorder
        self.env = env
        self.topics = tuple(topics)
        self.runner: BaseProjectionRunner | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"{watch.follower}-supervisor", daemon=True)

    def start(self) -> SupervisedProjection:
        self.watch.load()
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        with self._lock:
            if self.runner is not None:
                self.runner.stop()
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._stopping.is_set():
            started = time.monotonic()
            runner = None
            try:
                runner = BaseProjectionRunner(
                    projection=self.projection, application_class=self.application_class,
                    tracking_recorder=self.tracking_recorder, topics=self.topics, env=self.env,
                ).__enter__()
                with self._lock:
                    self.runner = runner
                    if self._stopping.is_set():
                        runner.stop()
                self.watch.passed(self.tracking_recorder.max_tracking_id(runner.app_name))
                runner.run_forever()  # until stop(), or raises what stopped the runner's thread
            except Exception as exc:  # noqa: BLE001  (every failure is reported, then retried)
                if self._stopping.is_set():
                    break
                self.watch.failed(exc)
            finally:
                with self._lock:
                    self.runner = None
                if runner is not None:
                    with contextlib.suppress(Exception):  # its error was reported above
                        runner.__exit__(None, None, None)
            if time.monotonic() - started > STABLE_S:
                backoff = FIRST_BACKOFF_S
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_S)
