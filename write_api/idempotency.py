"""Idempotency keys: a POST repeated with the same key and body gets the first answer, not a second effect."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import Any

import asyncpg


class Claim(enum.Enum):
    NEW = "new"  # first time: run the request, then `complete`
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
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim(self, caller: str, key: str, fingerprint: str) -> tuple[Claim, StoredAnswer | None]:
        row = await self._pool.fetchrow(
            """
            WITH inserted AS (
                INSERT INTO idempotency_keys (caller, key, request_hash) VALUES ($1, $2, $3)
                ON CONFLICT (caller, key) DO NOTHING
                RETURNING true AS new, request_hash, status, headers, body
            )
            SELECT * FROM inserted
            UNION ALL
            SELECT false, request_hash, status, headers, body FROM idempotency_keys
            WHERE caller = $1 AND key = $2
            LIMIT 1
            """,
            caller,
            key,
            fingerprint,
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
