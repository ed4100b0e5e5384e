"""Publish an event-sourced application's log to NATS JetStream, like an outbox.

The publisher follows the log from the position it tracked in PostgreSQL, so
after a NATS outage (or a crash) it resumes where it stopped and no event is
missed. Each message carries `Nats-Msg-Id: <app>:<position>`, so JetStream drops
the duplicate if a crash happened between publishing and saving the position.

A NATS outage pauses publishing (the lag gauge shows it). An event that cannot be
described or that JetStream refuses stops the publisher at its position: that is
reported through a `FollowerWatch` (logged, counted, health NOT_SERVING) and retried
with backoff, like a failing projection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import nats
from eventsourcing.application import Application
from eventsourcing.persistence import InfrastructureFactory, Tracking, TrackingRecorder
from eventsourcing.utils import Environment
from nats.js.api import StreamConfig

from mlxhub.followers import EventFailed, FollowerWatch, event_type_of

log = logging.getLogger(__name__)

EVENTS_STREAM = "MLXHUB_EVENTS"
EVENTS_SUBJECTS = ["mlxhub.events.>"]
BATCH = 200
POLL_SECONDS = 0.1

Describe = Callable[[Any, int], tuple[str, bytes]]


def tracking_recorder(name: str, env: dict[str, str]) -> TrackingRecorder:
    """A tracking recorder with its own table `<name>_tracking` in the hub's schema."""
    return InfrastructureFactory.construct(env=Environment(name, env)).tracking_recorder()


async def ensure_stream(js, config: StreamConfig) -> None:
    """Create a JetStream stream, or bring an existing one to `config` (every service that
    publishes declares the streams it needs, so any of them may start first)."""
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError:  # it exists (with other settings): update it
        await js.update_stream(config)


async def ensure_events_stream(js) -> None:
    """The stream of every service's domain events, mlxhub.events.<aggregate type>.<event type>."""
    await ensure_stream(js, StreamConfig(name=EVENTS_STREAM, subjects=EVENTS_SUBJECTS, duplicate_window=3600.0))


class LogPublisher:
    """Follows `app`'s notification log and publishes each event to JetStream."""

    def __init__(self, app: Application, tracking: TrackingRecorder, nats_url: str, describe: Describe,
                 watch: FollowerWatch | None = None) -> None:
        self.app = app
        self.tracking = tracking
        self.nats_url = nats_url
        self.describe = describe
        self.watch = watch
        self.position = 0
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run_thread, name=f"{app.name}-nats-publisher", daemon=True)

    def start(self) -> None:
        if self.watch is not None:
            self.watch.load()
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish what is already recorded (while NATS answers), then stop."""
        self._stopping.set()
        self._thread.join(timeout)

    def lag(self) -> int:
        """Events recorded but not yet published."""
        return max(0, (self.app.recorder.max_notification_id() or 0) - self.position)

    def _run_thread(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            connection = None
            try:
                connection = await nats.connect(
                    self.nats_url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
                )
                js = connection.jetstream(timeout=5)
                await ensure_events_stream(js)
                self.connected.set()
                backoff = 0.2
                await self._follow(js)
            except EventFailed as exc:
                if self.watch is not None:
                    self.watch.failed(exc)
                else:
                    log.error("publishing to NATS stopped at position %s (%s): %s; retrying", exc.position,
                              exc.event_type, exc)
                if not self._stopping.is_set():
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
            except Exception as exc:  # noqa: BLE001  (NATS down or unreachable: retry from the tracked position)
                if sys.is_finalizing():
                    return
                if self.connected.is_set() or backoff == 0.2:
                    log.warning("publishing to NATS paused at position %s (%s); retrying", self.position, exc)
                self.connected.clear()
                if not self._stopping.is_set():
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            finally:
                if connection is not None and not connection.is_closed:
                    with contextlib.suppress(Exception):  # already broken
                        await connection.close()

    async def _follow(self, js) -> None:
        self.position = await asyncio.to_thread(self.tracking.max_tracking_id, self.app.name) or 0
        while True:
            notifications = await asyncio.to_thread(
                self.app.recorder.select_notifications, self.position, BATCH, None, (), inclusive_of_start=False
            )
            if not notifications:
                if self._stopping.is_set():
                    return  # flushed: everything recorded before stop() is published
                await asyncio.sleep(POLL_SECONDS)
                continue
            published = None
            try:
                for notification in notifications:
                    await self._publish(js, notification)
                    published = notification.id
            finally:  # keep what was published, also when an event stopped the batch
                if published is not None:
                    await asyncio.to_thread(self.tracking.insert_tracking, Tracking(self.app.name, published))
                    self.position = published
            if self.watch is not None:
                await asyncio.to_thread(self.watch.passed, published)

    async def _publish(self, js, notification) -> None:
        try:
            subject, payload = self.describe(self.app.mapper.to_domain_event(notification), notification.id)
        except Exception as exc:
            raise EventFailed(notification.id, event_type_of(notification.topic), exc) from exc
        try:
            await js.publish(subject, payload, headers={"Nats-Msg-Id": f"{self.app.name}:{notification.id}"})
        except (nats.errors.MaxPayloadError, nats.js.errors.BadRequestError) as exc:  # refused, not an outage
            raise EventFailed(notification.id, event_type_of(notification.topic), exc) from exc
