"""Read-your-writes: a request that names a log position waits (briefly) until the read model has reached it.

The write API answers every command with the log position of its events. A client that passes it back as
`?minPosition=N` gets an answer from a read model that includes those events, or, when the projection is
further behind than `max_wait` allows, the freshest answer there is: the `CSMS-Position` response header says
which position the answer reflects either way.

Every request reads its projection's position, and a waiting one reads it again every `poll_interval`:
requests that ask at the same time share one read, so a crowd of waiters costs the database one query per
poll, not one each (a crowd that, under load, would otherwise queue for the pool behind its own polls).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from csms.web.problems import FieldError, problem_error, problem_type

POSITION_HEADER = "CSMS-Position"
PositionOf = Callable[[str], Awaitable[int]]


class Freshness:
    def __init__(
        self, position_of: PositionOf, *, max_wait: float = 2.0, poll_interval: float = 0.01
    ) -> None:
        self._position_of = position_of
        self._max_wait = max_wait
        self._poll_interval = poll_interval
        self._reads: dict[str, asyncio.Future[int]] = {}

    async def wait(self, request: web.Request, projection: str) -> int:
        """The projection's position, after waiting up to `max_wait` for the request's `minPosition`."""
        wanted = min_position(request)
        position = await self.position(projection)
        if wanted is None or position >= wanted:
            return position
        deadline = time.monotonic() + self._max_wait
        while position < wanted and time.monotonic() < deadline:
            await asyncio.sleep(self._poll_interval)
            position = await self.position(projection)
        return position

    async def position(self, projection: str) -> int:
        """The projection's position, read once for every caller asking while a read is under way."""
        read = self._reads.get(projection)
        if read is None:
            read = asyncio.ensure_future(self._position_of(projection))
            self._reads[projection] = read
            read.add_done_callback(lambda done: self._forget(projection, done))
        # A caller that gives up (its client went away) must not cancel the read the others wait for.
        return await asyncio.shield(read)

    def _forget(self, projection: str, read: asyncio.Future[int]) -> None:
        if self._reads.get(projection) is read:
            del self._reads[projection]
        if not read.cancelled():
            read.exception()  # retrieved here too, in case every caller gave up before it failed


def min_position(request: web.Request) -> int | None:
    raw = request.query.get("minPosition")
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise problem_error(
            400,
            "Invalid query parameter",
            "minPosition must be a non-negative integer (a log position from a write API response).",
            type_=problem_type("invalid-query"),
            errors=[FieldError("minPosition", "must be a non-negative integer")],
        )
    return int(raw)
