"""Write-side directories: a charger's transaction id -> its session, an id token -> its driver.

They answer "which aggregate?" for identifiers chosen outside our domain (by chargers, or printed on cards).
Rows are written once, before the events that rely on them, and never change, so reading them on the write
side is safe in a way reading a read model would not be.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from csms.domain import MeterReading


@dataclass(frozen=True, slots=True)
class TransactionRef:
    transaction_id: str
    session_id: UUID
    created: bool  # False when the start was seen before (a replay)


class TransactionDirectory:
    """Maps (charger, transaction id) to a charging session id.

    Its pool may commit without waiting for the disk (`create_pool(flush_on_commit=False)`): the gateway
    answers a transaction's start only after appending its events, and that commit flushes the WAL with
    the row in it. A row whose start was never answered may be lost in a crash; the charger sends the start
    again and gets a transaction id then.
    """

    def __init__(self, pool: asyncpg.Pool, cache_size: int = 100_000) -> None:
        self._pool = pool
        # Rows never change once written, so they can be remembered (every MeterValues looks one up).
        self._known: OrderedDict[tuple[UUID, str], UUID] = OrderedDict()
        self._cache_size = cache_size

    def _remember(self, charger_id: UUID, transaction_id: str, session_id: UUID) -> UUID:
        self._known[(charger_id, transaction_id)] = session_id
        if len(self._known) > self._cache_size:
            self._known.popitem(last=False)
        return session_id

    async def allocate_16(self, charger_id: UUID, start_key: str, new_session_id: UUID) -> TransactionRef:
        """The 1.6 transactionId for a StartTransaction, the same one again for a replay of it."""
        row = await self._pool.fetchrow(
            """
            WITH inserted AS (
                INSERT INTO charger_transactions (charger_id, transaction_id, session_id, start_key)
                VALUES ($1, nextval('ocpp16_transaction_id_seq')::text, $2, $3)
                ON CONFLICT (charger_id, start_key) DO NOTHING
                RETURNING transaction_id, session_id, true AS created
            )
            SELECT * FROM inserted
            UNION ALL
            SELECT transaction_id, session_id, false FROM charger_transactions
            WHERE charger_id = $1 AND start_key = $3
            LIMIT 1
            """,
            charger_id,
            new_session_id,
            start_key,
        )
        assert row is not None
        return self._ref(charger_id, row)

    async def link(self, charger_id: UUID, transaction_id: str, new_session_id: UUID) -> TransactionRef:
        """Bind a charger-chosen transaction id (2.0.1) to a session, or return the existing binding."""
        row = await self._pool.fetchrow(
            """
            WITH inserted AS (
                INSERT INTO charger_transactions (charger_id, transaction_id, session_id)
                VALUES ($1, $2, $3)
                ON CONFLICT (charger_id, transaction_id) DO NOTHING
                RETURNING transaction_id, session_id, true AS created
            )
            SELECT * FROM inserted
            UNION ALL
            SELECT transaction_id, session_id, false FROM charger_transactions
            WHERE charger_id = $1 AND transaction_id = $2
            LIMIT 1
            """,
            charger_id,
            transaction_id,
            new_session_id,
        )
        assert row is not None
        return self._ref(charger_id, row)

    def _ref(self, charger_id: UUID, row: asyncpg.Record) -> TransactionRef:
        """The binding a row holds, remembered: the readings that follow look it up."""
        session_id = self._remember(charger_id, row["transaction_id"], _uuid(row["session_id"]))
        return TransactionRef(row["transaction_id"], session_id, row["created"])

    def forget_ended(self, charger_id: UUID, transaction_id: str) -> None:
        """Stop remembering a transaction that has ended (its row stays): what a charger might still send
        about it is looked up again."""
        self._known.pop((charger_id, transaction_id), None)

    async def find(self, charger_id: UUID, transaction_id: str) -> UUID | None:
        known = self._known.get((charger_id, transaction_id))
        if known is not None:
            return known
        value = await self._pool.fetchval(
            "SELECT session_id FROM charger_transactions WHERE charger_id = $1 AND transaction_id = $2",
            charger_id,
            transaction_id,
        )
        if not isinstance(value, UUID):
            return None
        return self._remember(charger_id, transaction_id, _uuid(value))


class EarlyMeterValues:
    """Readings for a transaction whose start has not arrived yet, kept until it does."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def keep(self, charger_id: UUID, transaction_id: str, readings: tuple[MeterReading, ...]) -> None:
        await self._pool.execute(
            "INSERT INTO early_meter_values (charger_id, transaction_id, readings) VALUES ($1, $2, $3)",
            charger_id,
            transaction_id,
            [
                {
                    "measured_at": r.measured_at.isoformat(),
                    "energy_wh": r.energy_wh,
                    "power_w": r.power_w,
                    "soc_percent": r.soc_percent,
                }
                for r in readings
            ],
        )

    async def kept(self, charger_id: UUID, transaction_id: str) -> tuple[MeterReading, ...]:
        rows = await self._pool.fetch(
            "SELECT readings FROM early_meter_values"
            " WHERE charger_id = $1 AND transaction_id = $2 ORDER BY id",
            charger_id,
            transaction_id,
        )
        return tuple(
            MeterReading(
                measured_at=datetime.fromisoformat(r["measured_at"]),
                energy_wh=r["energy_wh"],
                power_w=r["power_w"],
                soc_percent=r["soc_percent"],
            )
            for row in rows
            for r in row["readings"]
        )

    async def forget(self, charger_id: UUID, transaction_id: str) -> None:
        """Drop the kept readings once they are recorded on the session."""
        await self._pool.execute(
            "DELETE FROM early_meter_values WHERE charger_id = $1 AND transaction_id = $2",
            charger_id,
            transaction_id,
        )


class IdTokenDirectory:
    """Maps id token values (case-insensitive, platform-wide unique) to the driver holding them."""

    def __init__(self, pool: asyncpg.Pool, cache_size: int = 100_000) -> None:
        self._pool = pool
        # A token's holder never changes once recorded, so it can be remembered (every transaction start at
        # a charger asks); a token nobody holds yet is asked about again.
        self._known: OrderedDict[str, UUID] = OrderedDict()
        self._cache_size = cache_size

    def _remember(self, token: str, driver_id: UUID) -> UUID:
        self._known[token] = driver_id
        if len(self._known) > self._cache_size:
            self._known.popitem(last=False)
        return driver_id

    async def claim(self, token: str, driver_id: UUID) -> bool:
        """Record `driver_id` as the token's holder; False if another driver already holds it."""
        key = token.upper()
        if key in self._known:
            return self._known[key] == driver_id
        owner = await self._pool.fetchval(
            """
            WITH inserted AS (
                INSERT INTO id_token_owners (token, driver_id) VALUES ($1, $2)
                ON CONFLICT (token) DO NOTHING RETURNING driver_id
            )
            SELECT driver_id FROM inserted
            UNION ALL SELECT driver_id FROM id_token_owners WHERE token = $1
            LIMIT 1
            """,
            key,
            driver_id,
        )
        if not isinstance(owner, UUID):
            return False
        return self._remember(key, _uuid(owner)) == driver_id

    async def owner(self, token: str) -> UUID | None:
        key = token.upper()
        known = self._known.get(key)
        if known is not None:
            return known
        value = await self._pool.fetchval("SELECT driver_id FROM id_token_owners WHERE token = $1", key)
        return self._remember(key, _uuid(value)) if isinstance(value, UUID) else None


def _uuid(value: UUID) -> UUID:
    """A plain `uuid.UUID` (asyncpg returns a subclass of its own, which would leak into events)."""
    return UUID(bytes=value.bytes)
