"""Readiness of a service that keeps its state in PostgreSQL: its gRPC health for the
service's name says NOT_SERVING while the database is unreachable or one of the
service's log followers is stuck (see mlxhub.followers), and SERVING again as soon as
neither holds, without a restart.

A cheap query every few seconds (on one kept connection) answers both questions. The
overall health ("") stays SERVING while the process runs: it is the liveness answer, and
restarting a replica cures neither an outage nor a stuck follower.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from grpc_health.v1 import health

from mlxhub.config import Settings
from mlxhub.followers import Failure, failing_followers
from mlxhub.health import set_serving

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 2.0
CHECK_TIMEOUT_S = 3


class Readiness:
    def __init__(self, settings: Settings, health_servicer: health.HealthServicer, service: str, full_name: str,
                 interval: float = CHECK_INTERVAL_S) -> None:
        self.settings = settings
        self.health = health_servicer
        self.service = service
        self.full_name = full_name
        self.interval = interval
        self.problems: list[str] = []
        self.stuck = threading.Event()  # a follower of this service fails: its read model may lag
        self._serving: bool | None = None
        self._conn: psycopg.Connection | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{service}-readiness", daemon=True)

    def start(self) -> Readiness:
        self._thread.start()
        return self

    def poke(self) -> None:
        """Check now (a follower's state changed)."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(CHECK_TIMEOUT_S * 2 + 1)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            self.check()
            self._wake.wait(self.interval)
        if self._conn is not None:
            self._conn.close()

    def check(self) -> list[str]:
        """Run the check once, set the health status, and return the problems found."""
        try:
            failures = self._failures()
        except psycopg.Error as exc:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            problems = [f"PostgreSQL is unreachable: {str(exc).strip() or type(exc).__name__}"]
        else:
            problems = [failure.describe() for failure in failures]
            if failures:
                self.stuck.set()
            else:
                self.stuck.clear()
        self.problems = problems
        self._set_serving(not problems)
        return problems

    def _failures(self) -> list[Failure]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.settings.database_url, autocommit=True, connect_timeout=CHECK_TIMEOUT_S,
                options=f"-c search_path={self.settings.database_schema} -c statement_timeout={CHECK_TIMEOUT_S * 1000}",
            )
        return failing_followers(self._conn, self.service)

    def _set_serving(self, serving: bool) -> None:
        if serving == self._serving:
            return
        if serving:
            log.info("%s is ready again: SERVING", self.service)
        else:
            log.warning("%s is not ready: NOT_SERVING (%s)", self.service, "; ".join(self.problems))
        self._serving = serving
        set_serving(self.health, (self.full_name,), serving)  # ignored once the server is shutting down
