"""Closing a watcher's subscription after the progress feed has stopped."""

from __future__ import annotations

import asyncio
import gc
import queue
import threading
import warnings

from trainer_svc.watch import Following


class RecordingSubscription:
    def __init__(self) -> None:
        self.unsubscribed = 0

    async def unsubscribe(self) -> None:
        self.unsubscribed += 1


def test_closing_after_the_feed_stopped_schedules_nothing_and_leaves_no_coroutine_behind():
    loop = asyncio.new_event_loop()  # a feed whose loop no longer runs
    subscription = RecordingSubscription()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Following(loop, subscription, queue.Queue()).close()
        loop.close()  # anything left scheduled on it is dropped here
        gc.collect()
    assert [str(w.message) for w in caught if "never awaited" in str(w.message)] == []
    assert subscription.unsubscribed == 0


def test_closing_while_the_feed_runs_unsubscribes_on_its_loop():
    loop = asyncio.new_event_loop()
    subscription = RecordingSubscription()
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    try:
        Following(loop, subscription, queue.Queue()).close()
        assert subscription.unsubscribed == 1
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(5)
        loop.close()
