"""Refresh tokens: opaque, stored as SHA-256 hashes only, rotated on every use, revoked by family on reuse.

A login starts a family; each refresh replaces the token presented with a new one in the same family. A token
that was already replaced can only come back if someone kept a copy: that is theft (RFC 9700 §4.14.2), so its
whole family is revoked and both the thief and the victim must log in again. The check is strict: two
refreshes racing with the same token also revoke the family, which a well-behaved client never does.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from write_api.auth.errors import InvalidRefreshToken

_log = logging.getLogger(__name__)

_Connection = asyncpg.Connection | PoolConnectionProxy

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 128  # ours are 43 characters; anything longer is not worth hashing


@dataclass(frozen=True, slots=True)
class IssuedRefreshToken:
    token: str  # given to the client once; only its hash is stored
    account_id: UUID
    family_id: UUID
    expires_at: datetime


def hash_token(token: str) -> bytes:
    """A plain SHA-256 is enough: the token is 256 random bits, so there is nothing to guess."""
    return hashlib.sha256(token.encode()).digest()


class RefreshTokens:
    def __init__(self, pool: asyncpg.Pool, *, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self._pool = pool
        self._ttl = ttl
        self._clock = clock

    async def issue(self, account_id: UUID) -> IssuedRefreshToken:
        """The first token of a new family (a login)."""
        async with self._pool.acquire() as connection:
            _, issued = await self._insert(connection, account_id, uuid.uuid4())
            return issued

    async def rotate(self, token: str) -> IssuedRefreshToken:
        """Spend `token` and return its successor; raises InvalidRefreshToken if it cannot be spent.

        The caller still checks that the account may log in (and revokes the family if not).
        """
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidRefreshToken("unknown refresh token")
        now = self._clock()
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                """
                SELECT id, account_id, family_id, expires_at, revoked_at, replaced_by
                FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE
                """,
                hash_token(token),
            )
            if row is None:
                raise InvalidRefreshToken("unknown refresh token")
            spent = row["replaced_by"] is not None or row["revoked_at"] is not None
            if spent:
                await self._revoke_family(connection, row["family_id"], now)
            elif row["expires_at"] <= now:
                raise InvalidRefreshToken("the refresh token has expired")
            else:
                successor_id, successor = await self._insert(connection, row["account_id"], row["family_id"])
                await connection.execute(
                    "UPDATE refresh_tokens SET replaced_by = $2 WHERE id = $1", row["id"], successor_id
                )
                return successor
        # Only reached for a spent token, after the family's revocation has committed.
        if row["replaced_by"] is not None:
            _log.warning(
                "a rotated refresh token was presented again; its family is revoked",
                extra={"account_id": str(row["account_id"]), "family_id": str(row["family_id"])},
            )
        raise InvalidRefreshToken("the refresh token was already used or revoked")

    async def revoke(self, token: str) -> bool:
        """Revoke the family `token` belongs to (logout); False when the token is unknown."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return False
        async with self._pool.acquire() as connection:
            family_id = await connection.fetchval(
                "SELECT family_id FROM refresh_tokens WHERE token_hash = $1", hash_token(token)
            )
            if family_id is None:
                return False
            await self._revoke_family(connection, family_id, self._clock())
            return True

    async def revoke_family(self, family_id: UUID) -> None:
        async with self._pool.acquire() as connection:
            await self._revoke_family(connection, family_id, self._clock())

    async def revoke_account(self, account_id: UUID) -> None:
        """Revoke every family of the account (password change, account disabled)."""
        await self._pool.execute(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL",
            account_id,
            self._clock(),
        )

    async def delete_expired(self, before: datetime) -> int:
        """Delete tokens that expired before `before` (housekeeping); returns how many went.

        A token's predecessors expire before it does, so no surviving token points at a deleted one.
        """
        result = await self._pool.execute("DELETE FROM refresh_tokens WHERE expires_at < $1", before)
        return int(result.split()[-1])

    async def _insert(
        self, connection: _Connection, account_id: UUID, family_id: UUID
    ) -> tuple[UUID, IssuedRefreshToken]:
        token_id = uuid.uuid4()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = self._clock()
        expires_at = now + self._ttl
        await connection.execute(
            """
            INSERT INTO refresh_tokens (id, account_id, family_id, token_hash, created_at, expires_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            """,
            token_id,
            account_id,
            family_id,
            hash_token(token),
            now,
            expires_at,
        )
        return token_id, IssuedRefreshToken(token, account_id, family_id, expires_at)

    @staticmethod
    async def _revoke_family(connection: _Connection, family_id: UUID, at: datetime) -> None:
        await connection.execute(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
            family_id,
            at,
        )
