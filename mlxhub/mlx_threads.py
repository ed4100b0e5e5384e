"""MLX streams belong to the thread that created them (MLX >= 0.31). A thread that ran MLX
work must release its streams before it ends, or the process may abort at exit
("terminate called without an active exception"), and a released thread cannot use MLX
again: so MLX work off the main thread runs in threads of its own that end with
`release_streams()`."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any


def release_streams() -> None:
    import mlx.core as mx

    mx.synchronize()
    mx.clear_streams()


async def run_in_own_thread(fn: Callable[..., Any], *args: Any, name: str) -> Any:
    """`await asyncio.to_thread(fn, *args)`, but in a fresh thread that releases its MLX streams."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    context = contextvars.copy_context()  # the caller's trace span, like asyncio.to_thread

    def settle(result: Any, error: BaseException | None) -> None:
        if not done.cancelled():
            done.set_exception(error) if error is not None else done.set_result(result)

    def target() -> None:
        result, error = None, None
        try:
            result = context.run(fn, *args)
        except BaseException as exc:  # noqa: BLE001  (handed to the awaiting coroutine)
            error = exc
        finally:
            release_streams()
        loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=target, name=name, daemon=True).start()
    return await done
