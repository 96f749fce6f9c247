"""Connection pools for the event store, with per-connection JSON codecs and start-up retries."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import orjson

# jsonb's binary wire format is a version byte (1) followed by the JSON text: sending orjson's bytes
# directly skips a decode/encode round through `str` on every event.
_JSONB_VERSION = b"\x01"


def _encode_jsonb(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return _JSONB_VERSION + bytes(value)
    return _JSONB_VERSION + orjson.dumps(value)


def _decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def init_connection(connection: asyncpg.Connection) -> None:
    """Register the JSON codecs every connection of ours uses."""
    await connection.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_encode_jsonb,
        decoder=_decode_jsonb,
        format="binary",
    )


async def connect(database_url: str) -> asyncpg.Connection:
    """One connection of ours outside any pool (the group-commit writer's)."""
    connection = await asyncpg.connect(database_url)
    try:
        await init_connection(connection)
    except BaseException:
        connection.terminate()
        raise
    return connection


class DatabaseUnavailableError(RuntimeError):
    """Postgres could not be reached at start-up."""


async def create_pool(
    database_url: str,
    *,
    max_size: int = 10,
    min_size: int = 1,
    retry_seconds: float = 0.0,
    flush_on_commit: bool = True,
) -> asyncpg.Pool:
    """Open a pool, retrying with back-off for up to `retry_seconds` while Postgres is unreachable.

    `flush_on_commit=False` opens connections with `synchronous_commit = off`: a commit returns before its
    WAL reaches the disk, sparing the caller a flush (the largest part of a small write's time on a busy
    server). For rows whose durability a later synchronous commit provides: every commit flushes the WAL up
    to its own record, so a row written before an event append is on disk once the append returns. A row
    that nothing follows may be lost if Postgres itself crashes within a moment (`wal_writer_delay`) of it.

    A released connection is not reset with asyncpg's default query (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL): that is a round trip and a write system call on every release, a large share of a gateway's
    CPU while a reconnect storm reads thousands of chargers. Pooled connections carry no session state:
    LISTEN, session advisory locks and session settings live on connections of their own (subscription,
    leadership, migrations), and `SET LOCAL` ends with its transaction. asyncpg still rolls back a
    transaction left open.
    """
    deadline = time.monotonic() + retry_seconds
    delay = 0.1
    while True:
        try:
            pool = await asyncpg.create_pool(
                database_url,
                min_size=min(min_size, max_size),
                max_size=max_size,
                init=init_connection,
                reset=_no_session_state,
                server_settings={} if flush_on_commit else {"synchronous_commit": "off"},
            )
        except (TimeoutError, OSError, asyncpg.PostgresError) as error:
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailableError(
                    f"cannot reach Postgres at {_redact(database_url)}: {error}"
                ) from error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        else:
            assert pool is not None
            return pool


async def _no_session_state(connection: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo (see `create_pool`)."""


def _redact(url: str) -> str:
    """The URL without its password, for error messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}@{host}"
