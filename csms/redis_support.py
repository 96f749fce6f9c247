"""Redis helpers shared by the Redis-backed components: Lua scripts in pipelines, stopping loops cleanly."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

_log = logging.getLogger(__name__)


def redis_client(url: str, max_connections: int = 2000, wait_seconds: float = 30.0) -> Redis:
    """A client whose pool waits for a free connection instead of failing.

    Every command in flight to a charger holds a connection for its blocking reply read; redis-py's default
    pool refuses the 101st at once (`MaxConnectionsError`), which under load turned into failed API calls.
    """
    pool = BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=wait_seconds)
    return Redis.from_pool(pool)  # closing the client closes its pool too


class LuaScript:
    """A Lua script run by EVALSHA, loaded on NOSCRIPT (first use, or after a Redis restart)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


async def run_pipeline(
    redis: Redis, scripts: Sequence[LuaScript], build: Callable[[Pipeline], object]
) -> list[Any]:
    """Run `build`'s commands in one round trip; load the scripts and try again once if Redis lacks them.

    redis-py's own script support asks SCRIPT EXISTS before every pipeline, a second round trip each time.
    Scripts run through here must be idempotent, so running the whole pipeline again after NOSCRIPT is safe.
    """
    for attempt in range(2):
        pipe = redis.pipeline(transaction=False)
        build(pipe)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if attempt == 0 and any(isinstance(result, NoScriptError) for result in results):
            for script in scripts:
                await redis.script_load(script.source)
            continue
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results
    raise AssertionError("unreachable")  # pragma: no cover


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again while it runs on.

    Once is not always enough: Python 3.11's `asyncio.wait_for`, which redis-py uses while connecting, loses a
    cancellation that arrives just as its inner future completes (CPython gh-86296), and the task carries on.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
    if not task.cancelled() and (error := task.exception()) is not None:
        _log.error("%s failed", task.get_name(), exc_info=error)


class CoalescedPipeline:
    """Commands of concurrent callers sent to Redis together: one round trip per batch, not one per caller.

    A caller hands over a function that adds its commands to a pipeline and waits for the batch it joined
    to be executed. One batch is in flight at a time; callers arriving meanwhile form the next one, so under
    load a batch holds whatever piled up during the previous round trip, and alone a caller waits for one
    round trip, as before. In a transaction pipeline the batch is one MULTI/EXEC: each caller's commands stay
    atomic (with the others'). An error fails every caller of its batch; in a plain pipeline the batch's other
    commands may still have taken effect, so callers' commands must be safe to repeat.
    """

    def __init__(self, redis: Redis, *, transaction: bool, max_batch: int = 1000) -> None:
        self._redis = redis
        self._transaction = transaction
        self._max_batch = max_batch
        self._waiting: list[tuple[Callable[[Pipeline], object], asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def execute(self, build: Callable[[Pipeline], object]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((build, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="redis-coalesced-pipeline")
        await future

    async def _send(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            pipe = self._redis.pipeline(transaction=self._transaction)
            for build, _future in batch:
                build(pipe)
            try:
                await pipe.execute()
            except BaseException as error:  # handed to every caller of the batch
                for _build, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for _build, future in batch:
                if not future.done():
                    future.set_result(None)
