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
from collections.abc import Callable

import psycopg

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
