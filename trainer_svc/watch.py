"""Job progress from one NATS connection per process: every WatchTrainingJob watcher gets its
own ordered JetStream consumer of its job's progress subject (replay from the start, then
live), and the throughput recorder listens to every job's progress, all of them on one shared
connection, served by one event-loop thread. A connection per watcher used to cost a socket,
a thread's event loop and a server-side client for every open stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from typing import Self
from uuid import UUID

import nats
from nats.js.api import DeliverPolicy

from mlxhub.config import Settings
from mlxhub.errors import Unavailable
from mlxhub.redact import redact
from trainer_svc.queue import PROGRESS_STREAM, QueueNames, ensure_streams, progress_subject

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT = 15.0
LISTEN_CHECK_S = 2.0  # how soon a listener notices that its connection was replaced


class Following:
    """One watcher's progress messages, in order; read from the watcher's own (gRPC) thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, subscription, inbox: queue.Queue[bytes]) -> None:
        self.loop, self.subscription, self.inbox = loop, subscription, inbox

    def next(self, timeout: float) -> bytes | None:
        """The next progress message's payload, or None if none came within `timeout` seconds."""
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        if not self.loop.is_running() or self.loop.is_closed():
            return  # the feed has stopped: its connection and this subscription are gone with it
        unsubscribe = self.subscription.unsubscribe()
        try:
            future = asyncio.run_coroutine_threadsafe(unsubscribe, self.loop)
        except RuntimeError:  # the loop closed just now
            unsubscribe.close()
            return
        with contextlib.suppress(Exception):  # the connection is already gone: nothing left to remove
            future.result(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class ProgressFeed:
    """The process's one NATS connection for watchers and listeners, opened on the first watch or
    listen (and again after the client gave up reconnecting); `connects` counts the connections it
    has opened."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.connects = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connection = None
        self._connecting = asyncio.Lock()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name="trainer-watch-nats", daemon=True)
                self._thread.start()
            return self._loop

    async def _jetstream(self):
        async with self._connecting:
            if self._connection is None or self._connection.is_closed:
                connection = await nats.connect(self.settings.nats_url, connect_timeout=2, name="mlxhub-trainer-watch")
                self.connects += 1
                try:
                    await ensure_streams(connection.jetstream(timeout=5), QueueNames.of(self.settings))
                except BaseException:
                    await connection.close()
                    raise
                self._connection = connection
            return self._connection.jetstream(timeout=5)

    def follow(self, job: UUID | str) -> Following:
        """Subscribe to `job`'s progress, from its first message; UNAVAILABLE if NATS cannot be reached."""
        loop = self._running_loop()
        inbox: queue.Queue[bytes] = queue.Queue()

        async def subscribe():
            js = await self._jetstream()

            async def deliver(message) -> None:
                inbox.put(message.data)

            return await js.subscribe(progress_subject(job), stream=PROGRESS_STREAM, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.ALL, cb=deliver)

        try:
            subscription = asyncio.run_coroutine_threadsafe(subscribe(), loop).result(SUBSCRIBE_TIMEOUT)
        except Exception as exc:  # noqa: BLE001  (NATS refused, timed out, or is unreachable)
            raise Unavailable(f"job progress cannot be followed now: NATS at {redact(self.settings.nats_url)} did not answer "
                              f"({type(exc).__name__}: {exc}); retry shortly", reason="PROGRESS_UNAVAILABLE") from None
        return Following(loop, subscription, inbox)

    def listen(self, subject: str, deliver: Callable[[str, bytes], None]) -> None:
        """Call `deliver(subject, payload)` (on the feed's thread) for every message published on
        `subject` (wildcards allowed) from now on, for as long as the feed is open: subscribed on
        this connection and on any that replaces it, retrying while NATS does not answer. Nothing
        to listen to without a NATS URL."""
        if self.settings.nats_url:
            asyncio.run_coroutine_threadsafe(self._keep_listening(subject, deliver), self._running_loop())

    async def _keep_listening(self, subject: str, deliver: Callable[[str, bytes], None]) -> None:
        async def on_message(message) -> None:
            deliver(message.subject, message.data)

        subscribed_on, failing = None, False
        while True:  # until close() cancels it
            try:
                await self._jetstream()  # the feed's connection, opened again if the client gave up on it
                if self._connection is not subscribed_on:
                    await self._connection.subscribe(subject, cb=on_message)
                    subscribed_on, failing = self._connection, False
            except Exception as exc:  # noqa: BLE001  (NATS not up yet, or lost: try again shortly)
                if not failing:
                    log.warning("listening to %s: NATS did not answer (%s); retrying", subject, exc)
                failing = True
            await asyncio.sleep(LISTEN_CHECK_S)

    def close(self) -> None:
        """Close the connection (ending every watcher's subscription) and stop the loop's thread."""
        with self._lock:
            loop, thread, self._loop = self._loop, self._thread, None
        if loop is None:
            return

        async def shut() -> None:
            if self._connection is not None and not self._connection.is_closed:
                with contextlib.suppress(Exception):
                    await self._connection.close()
            # Watchers still open when the service stops leave their subscriptions' heartbeat and
            # flow-control tasks behind: end them before the loop closes, as asyncio.run does.
            leftover = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        loop.close()
