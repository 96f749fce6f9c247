"""Assembles a projector process: every projector of the catalog, each with a runner (active or standby)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from redis.asyncio import Redis

from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, create_pool
from csms.eventstore.subscription import HeadWatcher
from csms.redis_support import redis_client
from csms.settings import Settings
from projections.catalog import projection_targets
from projections.runner import ProjectionRunner, Target

_log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def projection_clients(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[tuple[asyncpg.Pool, Redis, list[Target]]]:
    """The pool, Redis client and targets that a projector process (or `csms projections`) works with."""
    pool = await create_pool(
        database_url, max_size=settings.db_pool_size, retry_seconds=settings.startup_retry_seconds
    )
    redis = redis_client(redis_url, max_connections=100)
    try:
        yield pool, redis, projection_targets(pool, redis, settings.redis_key_prefix)
    finally:
        await redis.aclose()
        await pool.close()


async def run_projectors(settings: Settings, database_url: str, redis_url: str) -> None:
    """Run every projector until cancelled: active where this instance holds the lock, standby elsewhere."""
    async with projection_clients(settings, database_url, redis_url) as (pool, _redis, targets):
        watcher = HeadWatcher(database_url)
        await watcher.start()
        codec = EventCodec(EVENT_TYPES)
        runners = [
            ProjectionRunner(
                target, pool, database_url, watcher, codec, poll_interval=settings.poll_interval_seconds
            )
            for target in targets
        ]
        try:
            async with asyncio.TaskGroup() as group:
                for runner in runners:
                    group.create_task(runner.run(), name=f"projection:{runner.target.name}")
                _log.info("running", extra={"projections": [runner.target.name for runner in runners]})
        finally:
            await watcher.close()
