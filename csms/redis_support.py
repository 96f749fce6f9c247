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

from csms.batching import Coalescer

_log = logging.getLogger(__name__)


def redis_client(url: str, max_connections: int = 100, wait_seconds: float = 30.0) -> Redis:
    """A client whose pool waits for a free connection instead of failing.

    redis-py's default pool refuses the 101st concurrent command at once (`MaxConnectionsError`), which under
    load (a reconnect storm's presence updates, a burst of API calls) would turn into failed requests. The
    bound is modest because no command here holds a connection for long (answers to charger commands come
    back on one stream read per process), while every new connection costs a connect, a handshake and, in
    redis-py, a package metadata lookup: with 2,000 allowed, making connections took 5 % of the gateway's
    CPU samples (py-spy) in a reconnect storm and the mass disconnect after it.
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
    """Commands of concurrent callers sent to Redis in one pipeline per batch (see `csms.batching`).

    In a transaction pipeline a batch is one MULTI/EXEC: each caller's commands stay atomic (with the
    others'). An error fails every caller of its batch; in a plain pipeline the batch's other commands may
    still have taken effect, so callers' commands must be safe to repeat.
    """

    def __init__(self, redis: Redis, *, transaction: bool, max_batch: int = 1000) -> None:
        self._redis = redis
        self._transaction = transaction
        self._batches: Coalescer[Callable[[Pipeline], object], None] = Coalescer(
            self._run, name="redis-coalesced-pipeline", max_batch=max_batch
        )

    async def execute(self, build: Callable[[Pipeline], object]) -> None:
        """Add `build`'s commands to the next batch and wait until it has been executed."""
        await self._batches.submit(build)

    async def _run(self, builds: Sequence[Callable[[Pipeline], object]]) -> list[None]:
        pipe = self._redis.pipeline(transaction=self._transaction)
        for build in builds:
            build(pipe)
        await pipe.execute()
        return [None] * len(builds)
