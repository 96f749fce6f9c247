"""Reaching Postgres and Redis at start-up: retry with back-off for a while, then fail with one clear line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

_log = logging.getLogger(__name__)

_PING_TIMEOUT_SECONDS = 5.0
_FIRST_DELAY_SECONDS = 0.25
_MAX_DELAY_SECONDS = 5.0


class DependencyUnavailable(RuntimeError):
    """Postgres or Redis did not answer within the start-up retry window; the message says which and why."""


def redact_url(url: str) -> str:
    """`url` without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def describe_error(error: BaseException) -> str:
    """One line naming the exception, whatever its message looks like."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def ping_postgres(database_url: str) -> None:
    """Open a connection and run `SELECT 1`; raise whatever asyncpg or the network raises."""
    async with asyncio.timeout(_PING_TIMEOUT_SECONDS):
        connection = await asyncpg.connect(database_url)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()


async def ping_redis(redis_url: str) -> None:
    """Open a connection and PING; raise whatever redis-py or the network raises."""
    async with asyncio.timeout(_PING_TIMEOUT_SECONDS):
        client = Redis.from_url(redis_url)
        try:
            await client.ping()
        finally:
            await client.aclose()


async def wait_for_servers(
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    retry_seconds: float = 0.0,
) -> None:
    """Return once each given server answers; retry with back-off for up to `retry_seconds`.

    Orchestrators start the database and the application together, so a short wait avoids a crash loop;
    past the window, `DependencyUnavailable` names the first server that still does not answer.
    """
    probes: list[tuple[str, str, Callable[[str], Awaitable[None]]]] = []
    if database_url is not None:
        probes.append(("Postgres", database_url, ping_postgres))
    if redis_url is not None:
        probes.append(("Redis", redis_url, ping_redis))
    for name, url, ping in probes:
        await _wait_for(name, url, ping, retry_seconds)


async def _wait_for(
    name: str, url: str, ping: Callable[[str], Awaitable[None]], retry_seconds: float
) -> None:
    deadline = time.monotonic() + retry_seconds
    delay = _FIRST_DELAY_SECONDS
    while True:
        try:
            await ping(url)
        # Anything counts as "not there yet": refused, DNS, timeouts, and a database still starting up.
        except Exception as error:
            reason = describe_error(error)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waited = f" after retrying for {retry_seconds:g}s" if retry_seconds > 0 else ""
                raise DependencyUnavailable(
                    f"{name} at {redact_url(url)} is unreachable{waited}: {reason}"
                ) from error
            pause = min(delay, remaining)
            _log.warning(
                "waiting for %s",
                name,
                extra={"dependency": name, "reason": reason, "retry_in_seconds": round(pause, 2)},
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, _MAX_DELAY_SECONDS)
        else:
            return
