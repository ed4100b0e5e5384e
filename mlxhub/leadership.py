"""One replica at a time follows a log: the one holding a PostgreSQL advisory lock.

Replicas of a service share its read model and its NATS publisher position; two
followers would apply each event twice. Every replica serves requests, but only
the lock holder runs the followers. The lock lives in a database session, so
when the leader dies its session ends, the lock is released, and another
replica (which keeps trying) takes over from the tracked positions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.projection import Projection

from mlxhub.bus import Describe, LogPublisher, tracking_recorder
from mlxhub.config import Settings
from mlxhub.followers import FollowerWatch, SupervisedProjection
from mlxhub.read_model import ReadModel

log = logging.getLogger(__name__)

RETRY_SECONDS = 2.0
CONNECT_TIMEOUT_S = 5


class Leadership:
    def __init__(self, database_url: str, lock_name: str, start: Callable[[], Callable[[], None]]) -> None:
        """`start()` starts the followers and returns the function that stops them."""
        self.database_url = database_url
        self.lock_name = lock_name
        self.start_followers = start
        self.leading = threading.Event()
        self.decided = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"leader-{lock_name}", daemon=True)

    def start(self, timeout: float = 10.0) -> Leadership:
        self._thread.start()
        self.decided.wait(timeout)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    self._contend(conn)
            except psycopg.Error as exc:
                log.warning("leadership for %s lost its database session (%s); retrying", self.lock_name, exc)
            finally:
                self.decided.set()
            self._stopping.wait(RETRY_SECONDS)

    def _contend(self, conn: psycopg.Connection) -> None:
        while not self._stopping.is_set():
            if conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.lock_name,)).fetchone()[0]:
                break
            self.decided.set()  # another replica leads
            self._stopping.wait(RETRY_SECONDS)
        else:
            return
        log.info("leading %s: this replica follows the log", self.lock_name)
        stop_followers = self.start_followers()
        self.leading.set()
        self.decided.set()
        try:
            while not self._stopping.wait(RETRY_SECONDS):
                conn.execute("SELECT 1")  # a dead session means another replica may lead now
        finally:
            self.leading.clear()
            stop_followers()


class LogFollowers:
    """What follows one service's log, on the leading replica only: its read-model projection and its
    NATS publisher (both supervised, mlxhub.followers), plus whatever else must run once (`also`:
    started after them, when NATS is configured; it returns the function that stops it)."""

    def __init__(self, settings: Settings, service: str, app: Application, env: dict[str, str],
                 projection: Projection[Any], view: ReadModel, describe: Callable[[], Describe],
                 on_change: Callable[[], None] | None = None,
                 also: Callable[[], Callable[[], None]] | None = None) -> None:
        """`describe()` makes the publisher's event describer when this replica starts leading."""
        self.settings, self.service, self.app, self.env = settings, service, app, env
        self.view, self.describe, self.on_change, self.also = view, describe, on_change, also
        self.projection_spec = projection
        self.projection: SupervisedProjection | None = None
        self.publisher: LogPublisher | None = None
        self.leadership = Leadership(settings.database_url, f"{settings.database_schema}.{service}-log-followers",
                                     self._start)

    def start(self) -> LogFollowers:
        self.leadership.start()
        return self

    def stop(self) -> None:
        self.leadership.stop()  # stops the followers (flushing the publisher) if this replica led

    def after_write(self, written: Sequence[Notification], timeout: float, stuck: threading.Event) -> None:
        """Let a write's answer follow its read model (read-your-writes): on the leading replica the
        writer applies the log through its own stored events `written` itself; elsewhere, or where it
        cannot now, it waits for the leader's projection (`ReadModel.wait_after_write`, which never
        fails the write)."""
        deadline = time.monotonic() + timeout
        projection = self.projection
        if (projection is not None and self.leadership.leading.is_set()
                and projection.catch_up_for_writer(written, timeout)):
            return
        self.view.wait_after_write(self.app.name, max(n.id for n in written),
                                   max(0.0, deadline - time.monotonic()), stuck)

    def lag(self) -> int:
        """NATS publishing lag as seen from this replica (0 where another replica publishes)."""
        publisher = self.publisher
        return publisher.lag() if publisher is not None and self.leadership.leading.is_set() else 0

    def _start(self) -> Callable[[], None]:
        watch = FollowerWatch(self.settings, self.service, self.projection_spec.name, self.on_change)
        projection = SupervisedProjection(watch, self.projection_spec, type(self.app), self.view, self.env).start()
        publisher, stop_also = None, None
        if self.settings.nats_url:
            name = f"{self.service}_nats"
            publisher = LogPublisher(self.app, tracking_recorder(name, self.env), self.settings.nats_url,
                                     self.describe(), FollowerWatch(self.settings, self.service, name, self.on_change))
            publisher.start()
            if self.also is not None:
                stop_also = self.also()
        self.projection, self.publisher = projection, publisher

        def stop() -> None:
            if stop_also is not None:
                stop_also()
            if publisher is not None:
                publisher.stop()
                publisher.tracking.datastore.close()
            projection.stop()  # its runner closes its own application

        return stop


class FollowedLog:
    """A service server's view of its log's followers (`self.followers`, set once they start): the
    leadership, projection and publisher while this replica leads, None otherwise."""

    followers: LogFollowers | None = None

    @property
    def leadership(self) -> Leadership | None:
        return self.followers.leadership if self.followers is not None else None

    @property
    def projection(self) -> SupervisedProjection | None:
        return self.followers.projection if self.followers is not None else None

    @property
    def publisher(self) -> LogPublisher | None:
        return self.followers.publisher if self.followers is not None else None

    def lag(self) -> int:
        """NATS publishing lag as seen from this replica (0 where another replica publishes)."""
        return self.followers.lag() if self.followers is not None else 0
