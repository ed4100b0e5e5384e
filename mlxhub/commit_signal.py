"""Wake a reader when events are committed, without a window in which a commit goes unseen.

A follower reads the log up to its end and then waits for more. If it starts listening only after
that read, an event committed in between sends its notification to nobody and the follower waits
until some later commit. `listening_for_commits` LISTENs first; the follower reads after that, so
every commit after the read either shows in the read or wakes the wait."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from psycopg.sql import SQL, Identifier


@contextmanager
def listening_for_commits(recorder: Any) -> Iterator[Callable[[float], bool]]:
    """LISTEN on an application recorder's notification channel (holding one pooled connection) and
    give a `wait(timeout)` that says whether a commit was announced since the last wait or within
    `timeout` seconds."""
    with recorder.datastore.get_connection() as connection:
        connection.execute(SQL("LISTEN {}").format(Identifier(recorder.channel_name)))

        def wait(timeout: float) -> bool:
            return any(True for _ in connection.notifies(timeout=timeout, stop_after=1))

        yield wait
        connection.execute("UNLISTEN *")  # the connection goes back to the pool quiet
