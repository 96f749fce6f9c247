"""Idempotency keys: a POST repeated with the same key and body gets the first answer, not a second effect.

A key is claimed (an unanswered row) before its request runs and answered after. Keys are kept for
`retention` (a day, as payment APIs keep theirs), then purged.

Durability: the keys' pool commits without waiting for the WAL to reach the disk (`create_pool(
flush_on_commit=False)`), which spares every POST two disk flushes. A claim is on disk once its request
appends its events (that commit flushes all the WAL before it). An answer written after the request's last
append may be lost if Postgres crashes within a moment of it: its key is then an unanswered claim, which a
retry with the same body takes over once the claim's `lease` has run out, as it does the claim of a request
whose write API process died; the request then runs again, as it would under a new key (ADR 0008).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

_log = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 120.0
"""Longer than any request runs (a remote start waits for the charger for 30 s by default)."""
DEFAULT_RETENTION_SECONDS = 24 * 3600.0


class Claim(enum.Enum):
    NEW = "new"  # first time (or a dead request's claim taken over): run the request, then `complete`
    REPLAY = "replay"  # answered before: send the stored answer
    IN_PROGRESS = "in_progress"  # the first request is still running: ask the client to retry shortly
    MISMATCH = "mismatch"  # same key, different request: refuse (422)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\0".join((method.encode(), path.encode(), body))).hexdigest()


class IdempotencyKeys:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        if lease_seconds <= 0 or retention_seconds <= lease_seconds:
            raise ValueError("the lease must be positive and shorter than the retention")
        self._pool = pool
        self._lease = lease_seconds
        self._retention = retention_seconds

    async def claim(self, caller: str, key: str, fingerprint: str) -> tuple[Claim, StoredAnswer | None]:
        # The outer SELECT sees the row as it was before this statement: when the INSERT neither inserted
        # nor took over, it is the row already there.
        row = await self._pool.fetchrow(
            """
            WITH claimed AS (
                INSERT INTO idempotency_keys AS k (caller, key, request_hash) VALUES ($1, $2, $3)
                ON CONFLICT (caller, key) DO UPDATE SET created_at = now()
                    WHERE k.status IS NULL AND k.request_hash = excluded.request_hash
                      AND k.created_at < now() - make_interval(secs => $4)
                RETURNING true AS new, request_hash, status, headers, body
            )
            SELECT * FROM claimed
            UNION ALL
            SELECT false, request_hash, status, headers, body FROM idempotency_keys
            WHERE caller = $1 AND key = $2
            LIMIT 1
            """,
            caller,
            key,
            fingerprint,
            self._lease,
        )
        assert row is not None
        if row["new"]:
            return Claim.NEW, None
        if row["request_hash"] != fingerprint:
            return Claim.MISMATCH, None
        if row["status"] is None:
            return Claim.IN_PROGRESS, None
        headers: dict[str, Any] = row["headers"] or {}
        return Claim.REPLAY, StoredAnswer(
            row["status"], {k: str(v) for k, v in headers.items()}, bytes(row["body"])
        )

    async def complete(self, caller: str, key: str, answer: StoredAnswer) -> None:
        await self._pool.execute(
            "UPDATE idempotency_keys SET status = $3, headers = $4, body = $5 WHERE caller = $1 AND key = $2",
            caller,
            key,
            answer.status,
            answer.headers,
            answer.body,
        )

    async def release(self, caller: str, key: str) -> None:
        """Forget a claim whose request failed unexpectedly, so the client may retry with the same key."""
        await self._pool.execute(
            "DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND status IS NULL", caller, key
        )

    async def purge(self) -> int:
        """Delete the keys older than the retention; how many went."""
        deleted = await self._pool.execute(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
            self._retention,
        )
        return int(deleted.split()[-1])

    async def purge_every(self, interval_seconds: float) -> None:
        """Purge now and then every `interval_seconds`, until cancelled. Every write API process may run
        this: the deletes are the same whoever makes them."""
        while True:
            try:
                purged = await self.purge()
            except (asyncpg.PostgresError, OSError) as error:
                _log.warning("could not purge old idempotency keys (trying again later): %r", error)
            else:
                if purged:
                    _log.info("purged %d idempotency keys older than %.0f s", purged, self._retention)
            await asyncio.sleep(interval_seconds)
