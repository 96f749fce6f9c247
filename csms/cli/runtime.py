"""Running the CLI's coroutines on one event loop (uvloop when installed), stopped by SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine
from contextlib import suppress
from typing import Any, TypeVar

T = TypeVar("T")

_log = logging.getLogger(__name__)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (no Windows build); asyncio's own loop works, only slower
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh event loop and close the loop."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)


async def wait_for_stop_signal() -> None:
    """Return on the first SIGINT (Ctrl-C) or SIGTERM (orchestrators), whichever comes first.

    A drain follows (a gateway answers its in-flight messages and records its chargers' disconnects), so a
    second signal must not cut it short: a repeated SIGTERM is logged and ignored for as long as the loop
    runs. A second Ctrl-C, from a person who means it, stops the process without waiting.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        await stop.wait()
    finally:
        with suppress(ValueError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, _already_stopping)
            loop.remove_signal_handler(signal.SIGINT)


def _already_stopping() -> None:
    _log.warning("already stopping: waiting for the drain to finish (SIGKILL forces an exit)")
