"""The gateway's Redis infrastructure (presence, frame log, command routing) against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 3.0) -> None:
    """Wait until `check()` is true, failing after `within` seconds.

    Only for states that live in Redis alone (a key expired, a background flush landed): the test process has
    no event to await for those, so it asks Redis again every 10 ms.
    """
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (the state is in Redis; there is no local event to await)
            await asyncio.sleep(0.01)
