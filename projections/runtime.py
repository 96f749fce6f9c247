"""Assembles a projector process: every projector of the catalog, each with a runner (active or standby)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, create_pool
from csms.eventstore.subscription import HeadWatcher
from csms.observability.health import add_health_routes, postgres_answers, redis_answers
from csms.observability.metrics import add_metrics_route
from csms.redis_support import redis_client
from csms.settings import Settings
from projections.catalog import projection_targets
from projections.metrics import LogHead
from projections.runner import ProjectionRunner, Target


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


@contextlib.asynccontextmanager
async def projector_service(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[tuple[web.Application, list[ProjectionRunner]]]:
    """A runner per projector of the catalog (run them until cancelled: each is active where this instance
    holds its lock, standby elsewhere) and the role's app with /metrics, /healthz and /readyz."""
    async with projection_clients(settings, database_url, redis_url) as (pool, redis, targets):
        watcher = HeadWatcher(database_url)
        await watcher.start()
        codec = EventCodec(EVENT_TYPES)
        head = LogHead()
        runners = [
            ProjectionRunner(
                target,
                pool,
                database_url,
                watcher,
                codec,
                poll_interval=settings.poll_interval_seconds,
                head=head,
            )
            for target in targets
        ]
        app = web.Application()
        add_metrics_route(app)
        add_health_routes(
            app, {"postgres": lambda: postgres_answers(pool), "redis": lambda: redis_answers(redis)}
        )
        try:
            yield app, runners
        finally:
            await watcher.close()
