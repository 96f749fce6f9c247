"""`/healthz` and `/readyz` for every role: is the process alive, and can it reach what it needs right now.

Liveness never touches a dependency (a database outage must not make an orchestrator restart every process);
readiness runs each check concurrently with a timeout and answers 503 naming the ones that failed, so a load
balancer stops sending traffic without anyone reading logs first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

_log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]
"""Returns when the dependency answers; raises (anything) when it does not."""

READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])
READINESS_TIMEOUT_SECONDS = web.AppKey("readiness_timeout_seconds", float)
POOL = web.AppKey("pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)


def add_health_routes(
    app: web.Application, checks: Mapping[str, ReadinessCheck], *, timeout_seconds: float = 2.0
) -> None:
    """Mount `/healthz` and `/readyz` on `app`; `checks` name each dependency readiness depends on."""
    app[READINESS_CHECKS] = dict(checks)
    app[READINESS_TIMEOUT_SECONDS] = timeout_seconds
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)


async def healthz(request: web.Request) -> web.Response:
    """200 while the event loop serves requests at all."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when every dependency answers; 503 with the failed ones by name otherwise."""
    checks = request.app[READINESS_CHECKS]
    timeout = request.app[READINESS_TIMEOUT_SECONDS]
    names = list(checks)
    outcomes = await asyncio.gather(*(_run(name, checks[name], timeout) for name in names))
    results = dict(zip(names, outcomes, strict=True))
    failed = sorted(name for name, outcome in results.items() if outcome != "ok")
    if failed:
        return web.json_response({"status": "unavailable", "failed": failed, "checks": results}, status=503)
    return web.json_response({"status": "ready", "checks": results})


async def _run(name: str, check: ReadinessCheck, limit_seconds: float) -> str:
    try:
        async with asyncio.timeout(limit_seconds):
            await check()
    except TimeoutError:
        _log.warning(
            "readiness check timed out", extra={"dependency": name, "timeout_seconds": limit_seconds}
        )
        return f"timed out after {limit_seconds:g}s"
    except Exception as error:
        # The body names only the exception class: it can be public, while the log has the details.
        _log.warning(
            "readiness check failed", extra={"dependency": name, "error": f"{type(error).__name__}: {error}"}
        )
        return f"failed ({type(error).__name__})"
    return "ok"


async def postgres_answers(pool: asyncpg.Pool) -> None:
    """A readiness check: a pooled connection runs `SELECT 1`."""
    async with pool.acquire() as connection:
        await connection.fetchval("SELECT 1")


async def redis_answers(client: Redis) -> None:
    """A readiness check: Redis answers PING."""
    await client.ping()


def create_health_app(database_url: str, redis_url: str) -> web.Application:
    """A standalone app with only the health routes, checking one Postgres and one Redis."""
    app = web.Application()
    app.cleanup_ctx.append(_clients(database_url, redis_url))
    add_health_routes(
        app,
        {
            "postgres": lambda: postgres_answers(app[POOL]),
            "redis": lambda: redis_answers(app[REDIS]),
        },
    )
    return app


def _clients(database_url: str, redis_url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def clients(app: web.Application) -> AsyncIterator[None]:
        # min_size=0: the app starts even while Postgres is down, and /readyz says so instead.
        pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
        client = Redis.from_url(redis_url)
        app[POOL] = pool
        app[REDIS] = client
        try:
            yield
        finally:
            await client.aclose()
            await pool.close()

    return clients
