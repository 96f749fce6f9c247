"""One active instance per projector: a Postgres session advisory lock held on a connection of its own.

The lock lives as long as the connection: if the active process dies or is cut off, Postgres drops the
connection and the lock with it, and a standby's next try gets it. The holder proves it is alive by writing a
heartbeat through the same connection; when that fails it stops applying at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import asyncpg

_ADVISORY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    def __init__(self, database_url: str, lock_name: str) -> None:
        self._database_url = database_url
        self._lock_name = lock_name
        self._connection: asyncpg.Connection | None = None

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this instance now leads."""
        if self._connection is None:
            self._connection = await asyncpg.connect(self._database_url)
        acquired = bool(await self._connection.fetchval(_ADVISORY_LOCK, self._lock_name))
        if not acquired:
            await self.release()
        return acquired

    async def heartbeat(self, projection: str) -> None:
        """Record this instance as the holder; raises if the lock's connection is gone."""
        if self._connection is None:
            raise ConnectionError("not leading")
        await self._connection.execute(
            """
            INSERT INTO projections (name, holder, heartbeat_at) VALUES ($1, $2, now())
            ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, heartbeat_at = EXCLUDED.heartbeat_at
            """,
            projection,
            instance_name(),
            timeout=5.0,
        )

    async def release(self) -> None:
        """Close the lock's connection, which releases the lock."""
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.wait_for(connection.close(), 5.0)
