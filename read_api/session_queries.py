"""The SQL behind the driver-facing session routes: one session, a driver's history, and live-stream wake-ups.

Every query reads the `session_history` view (the generation serving reads) and filters by ownership in the
same statement, so a session the caller may not see is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from csms.identity.principal import Principal
from csms.identity.roles import Role

_log = logging.getLogger(__name__)

_BASE_COLUMNS = """
    session_id, driver_id, company_id, station_id, charger_id, evse_id, connector_id, origin, status,
    created_at, requested_at, started_at, stopped_at, meter_start_wh, meter_latest_wh, energy_wh, power_w,
    soc_percent, measured_at, energy_changed_at, time_zone, currency, vat_percent, total_excl_vat,
    vat_amount, total_incl_vat, priced_at, payment_status, paid_at, amount_paid, amount_refunded,
    dispute_status, stop_reason, position
"""
# The tariff snapshot prices a live session's cost so far (projections.session_cost); finished ones have
# their totals, so their snapshot stays in the database.
_COLUMNS = _BASE_COLUMNS + ", CASE WHEN status IN ('STARTED', 'STOPPED') THEN tariff::text END AS tariff"
_RECEIPT_COLUMNS = _BASE_COLUMNS + (
    ", tariff::text AS tariff, tariff_id, tariff_version, tariff_name, price_breakdown::text AS lines"
)

# `$2` lets everything through (admins); otherwise the row must be the driver's own ($3) or belong to the
# operator's company ($4). A NULL id compares as unknown, which filters the row out.
_OWNED = "($2::boolean OR driver_id = $3::uuid OR company_id = $4::uuid)"


@dataclass(frozen=True, slots=True)
class SessionScope:
    """Which sessions a caller may see: all (admins), a company's (operators) or their own (drivers)."""

    everything: bool = False
    driver_id: UUID | None = None
    company_id: UUID | None = None

    @classmethod
    def of(cls, principal: Principal) -> SessionScope:
        if principal.role is Role.ADMIN:
            return cls(everything=True)
        if principal.role is Role.OPERATOR:
            return cls(company_id=principal.company_id)
        if principal.role is Role.DRIVER:
            return cls(driver_id=principal.driver_id)
        return cls()

    def arguments(self) -> tuple[bool, UUID | None, UUID | None]:
        return self.everything, self.driver_id, self.company_id


async def session(pool: asyncpg.Pool, session_id: UUID, scope: SessionScope) -> asyncpg.Record | None:
    """The session's row if `scope` may see it."""
    return await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM session_history WHERE session_id = $1 AND {_OWNED}",
        session_id,
        *scope.arguments(),
    )


async def receipt(pool: asyncpg.Pool, session_id: UUID, scope: SessionScope) -> asyncpg.Record | None:
    """The session's row with its tariff snapshot and priced lines (JSON text), if `scope` may see it."""
    return await pool.fetchrow(
        f"SELECT {_RECEIPT_COLUMNS} FROM session_history WHERE session_id = $1 AND {_OWNED}",
        session_id,
        *scope.arguments(),
    )


@dataclass(frozen=True, slots=True)
class HistoryCursor:
    """Where a page of history ended: the (created_at, session_id) of its last row, newest first."""

    created_at: datetime
    session_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps([self.created_at.isoformat(), str(self.session_id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> HistoryCursor:
        """Raises ValueError for anything `encode` did not produce."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            created_at, session_id = orjson.loads(raw)
            parsed = datetime.fromisoformat(created_at)
        except (binascii.Error, orjson.JSONDecodeError, TypeError, ValueError) as error:
            raise ValueError(f"not a cursor: {error}") from None
        if parsed.tzinfo is None:
            raise ValueError("not a cursor: no time zone")
        return cls(parsed, UUID(session_id))


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[asyncpg.Record]
    next_cursor: HistoryCursor | None


async def driver_history(
    pool: asyncpg.Pool, driver_id: UUID, limit: int, after: HistoryCursor | None
) -> HistoryPage:
    """A page of the driver's sessions, newest first (keyset pagination on the driver's history index)."""
    if after is None:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM session_history WHERE driver_id = $1"
            " ORDER BY created_at DESC, session_id DESC LIMIT $2",
            driver_id,
            limit + 1,
        )
    else:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM session_history WHERE driver_id = $1"
            " AND (created_at, session_id) < ($3::timestamptz, $4::uuid)"
            " ORDER BY created_at DESC, session_id DESC LIMIT $2",
            driver_id,
            limit + 1,
            after.created_at,
            after.session_id,
        )
    if len(rows) <= limit:
        return HistoryPage(list(rows), None)
    last = rows[limit - 1]
    return HistoryPage(list(rows[:limit]), HistoryCursor(last["created_at"], last["session_id"]))


@dataclass(eq=False)
class _Watcher:
    """One live stream's interest in one session: the newest row it has not taken yet."""

    position: int
    latest: asyncpg.Record | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def next(self, within: float) -> asyncpg.Record | None:
        """The newest state beyond what the stream sent, or None after `within` seconds without one."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), within)
        self.changed.clear()
        row, self.latest = self.latest, None
        return row


class SessionWatch:
    """Wakes live streams when their session's row moves, with one query per interval for all of them.

    Each open stream registers the position it has sent; a single task polls the rows of every watched
    session that are beyond it (`unnest` of ids and positions against the primary key), so the database
    load does not grow with the number of streams per session, and stops when nobody is watching. Each
    stream keeps at most one pending row: a slow client skips intermediate states, never piles them up.
    """

    def __init__(self, pool: asyncpg.Pool, interval: float = 0.5) -> None:
        self._pool = pool
        self._interval = interval
        self._watchers: dict[UUID, set[_Watcher]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, session_id: UUID, after_position: int) -> Iterator[_Watcher]:
        watcher = _Watcher(after_position)
        self._watchers.setdefault(session_id, set()).add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="session-watch")
        try:
            yield watcher
        finally:
            watchers = self._watchers.get(session_id)
            if watchers is not None:
                watchers.discard(watcher)
                if not watchers:
                    del self._watchers[session_id]

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while self._watchers:
            await asyncio.sleep(self._interval)
            try:
                await self._poll_once()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                _log.warning("session watch: %s; retrying", error)

    async def _poll_once(self) -> None:
        ids = list(self._watchers)
        if not ids:
            return
        seen = [min(w.position for w in self._watchers[session_id]) for session_id in ids]
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM session_history JOIN unnest($1::uuid[], $2::bigint[]) AS w(id, seen)"
            " ON session_id = w.id AND position > w.seen",
            ids,
            seen,
        )
        for row in rows:
            for watcher in self._watchers.get(row["session_id"], ()):
                if row["position"] > watcher.position:
                    watcher.position = row["position"]
                    watcher.latest = row
                    watcher.changed.set()
