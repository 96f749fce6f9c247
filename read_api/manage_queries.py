"""The reads behind the operator and admin views: fleet rows, session history, daily revenue, live presence.

Every SQL query filters by company in the statement itself, so another company's station, charger or
session is indistinguishable from one that does not exist. Queries are built from only the conditions a
request uses (no `$1 IS NULL OR ...`), so each shape keeps an index-friendly plan once prepared. Lists page
by keyset: a cursor is the sort key of the last row served, never an offset.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from redis.asyncio import Redis

from csms.presence_keys import presence_key


@dataclass(frozen=True, slots=True)
class Tenant:
    """Whose objects a request may see: one company's, or every company's (`company_id` None: an admin)."""

    company_id: UUID | None


class InvalidCursor(ValueError):
    """A cursor this API did not hand out (or one for another list)."""


@dataclass(frozen=True, slots=True)
class Keyset:
    """How one list pages: the columns it is sorted by, which a cursor carries for the last row served."""

    kind: str
    columns: tuple[str, ...]
    parsers: tuple[Callable[[str], Any], ...]

    def encode(self, row: asyncpg.Record) -> str:
        values = [_text(row[column]) for column in self.columns]
        return base64.urlsafe_b64encode(orjson.dumps([self.kind, *values])).decode().rstrip("=")

    def decode(self, text: str) -> tuple[Any, ...]:
        """The sort key inside a cursor of this list; raises InvalidCursor for anything else."""
        try:
            decoded = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            if (
                not isinstance(decoded, list)
                or len(decoded) != len(self.columns) + 1
                or decoded[0] != self.kind
                or not all(isinstance(value, str) for value in decoded)
            ):
                raise ValueError("not a cursor of this list")
            return tuple(parse(value) for parse, value in zip(self.parsers, decoded[1:], strict=True))
        except (binascii.Error, orjson.JSONDecodeError, ValueError):
            raise InvalidCursor("not a cursor of this list") from None


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date | datetime) else str(value)


def _aware(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("no time zone")
    return parsed


STATION_PAGES = Keyset("stations", ("name", "station_id"), (str, UUID))
CHARGER_PAGES = Keyset("chargers", ("charge_point_id",), (str,))
COMPANY_PAGES = Keyset("companies", ("name", "company_id"), (str, UUID))
SESSION_PAGES = Keyset("sessions", ("created_at", "session_id"), (_aware, UUID))
DAY_PAGES = Keyset("days", ("day", "station_id", "currency"), (date.fromisoformat, UUID, str))


@dataclass(slots=True)
class _Query:
    """A WHERE clause and its arguments, grown one condition at a time."""

    conditions: list[str] = field(default_factory=list)
    arguments: list[Any] = field(default_factory=list)

    def where(self, condition: str, *values: Any) -> None:
        """Add `condition`, whose placeholders are written `{}` and numbered here."""
        numbers = []
        for value in values:
            self.arguments.append(value)
            numbers.append(f"${len(self.arguments)}")
        self.conditions.append(condition.format(*numbers))

    def tenant(self, tenant: Tenant, column: str = "company_id") -> None:
        if tenant.company_id is not None:
            self.where(f"{column} = {{}}", tenant.company_id)

    def clause(self) -> str:
        return " WHERE " + " AND ".join(self.conditions) if self.conditions else ""

    def limit(self, limit: int) -> str:
        self.arguments.append(limit)
        return f" LIMIT ${len(self.arguments)}"


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[asyncpg.Record]
    next_cursor: str | None  # None on the last page


async def _page(pool: asyncpg.Pool, sql: str, query: _Query, limit: int, keyset: Keyset) -> Page:
    rows = await pool.fetch(sql + query.limit(limit + 1), *query.arguments)
    if len(rows) <= limit:
        return Page(list(rows), None)
    return Page(list(rows[:limit]), keyset.encode(rows[limit - 1]))


# Fleet

_STATION_COLUMNS = """
    station_id, company_id, name, street, postal_code, city, state, country, latitude, longitude,
    time_zone, published, tariff_id, removed, created_at, updated_at
"""
_CHARGER_COLUMNS = """
    charger_id, charge_point_id, company_id, station_id, evses::text AS evses, ocpp_version, vendor, model,
    serial_number, firmware_version, availability, connected, last_connected_at, last_disconnected_at,
    decommissioned, connector_statuses::text AS connector_statuses, registered_at, updated_at
"""


async def stations(
    pool: asyncpg.Pool, tenant: Tenant, *, include_removed: bool, limit: int, after: Sequence[Any] | None
) -> Page:
    """A page of stations by name (then id)."""
    query = _Query()
    query.tenant(tenant)
    if not include_removed:
        query.conditions.append("NOT removed")
    if after is not None:
        query.where("(name, station_id) > ({}, {})", *after)
    sql = f"SELECT {_STATION_COLUMNS} FROM fleet_stations{query.clause()} ORDER BY name, station_id"
    return await _page(pool, sql, query, limit, STATION_PAGES)


async def station(pool: asyncpg.Pool, tenant: Tenant, station_id: UUID) -> asyncpg.Record | None:
    query = _Query()
    query.where("station_id = {}", station_id)
    query.tenant(tenant)
    return await pool.fetchrow(
        f"SELECT {_STATION_COLUMNS} FROM fleet_stations{query.clause()}", *query.arguments
    )


async def chargers(
    pool: asyncpg.Pool,
    tenant: Tenant,
    *,
    station_id: UUID | None,
    include_decommissioned: bool,
    limit: int,
    after: Sequence[Any] | None,
) -> Page:
    """A page of chargers by OCPP identity; a station of another company matches none."""
    query = _Query()
    query.tenant(tenant)
    if station_id is not None:
        query.where("station_id = {}", station_id)
    if not include_decommissioned:
        query.conditions.append("NOT decommissioned")
    if after is not None:
        query.where("charge_point_id > {}", after[0])
    sql = f"SELECT {_CHARGER_COLUMNS} FROM fleet_chargers{query.clause()} ORDER BY charge_point_id"
    return await _page(pool, sql, query, limit, CHARGER_PAGES)


async def charger(pool: asyncpg.Pool, tenant: Tenant, charge_point_id: str) -> asyncpg.Record | None:
    query = _Query()
    query.where("charge_point_id = {}", charge_point_id)
    query.tenant(tenant)
    return await pool.fetchrow(
        f"SELECT {_CHARGER_COLUMNS} FROM fleet_chargers{query.clause()}", *query.arguments
    )


async def companies(pool: asyncpg.Pool, *, limit: int, after: Sequence[Any] | None) -> Page:
    query = _Query()
    if after is not None:
        query.where("(name, company_id) > ({}, {}::uuid)", *after)
    sql = (
        "SELECT company_id, name, suspended, suspension_reason, created_at, updated_at"
        f" FROM fleet_companies{query.clause()} ORDER BY name, company_id"
    )
    return await _page(pool, sql, query, limit, COMPANY_PAGES)


# Live presence, written by the gateway


@dataclass(frozen=True, slots=True)
class Presence:
    """What the gateway's presence hash says about one charger right now."""

    connected: bool
    protocol: str | None = None
    connected_at: datetime | None = None
    last_seen: datetime | None = None


OFFLINE = Presence(connected=False)


async def presences(redis: Redis, key_prefix: str, charge_point_ids: Sequence[str]) -> dict[str, Presence]:
    """The presence of each charger, read in one pipelined round trip for the whole page.

    A missing hash (never connected, or its gateway died and the TTL ran out) is offline; so is a tombstone
    (`disconnected_at`, kept one TTL after a clean disconnect).
    """
    if not charge_point_ids:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for charge_point_id in charge_point_ids:
            pipe.hgetall(presence_key(key_prefix, charge_point_id))
        hashes: list[dict[bytes, bytes]] = await pipe.execute()
    return {
        charge_point_id: _presence({k.decode(): v.decode() for k, v in fields.items()})
        for charge_point_id, fields in zip(charge_point_ids, hashes, strict=True)
    }


def _presence(values: dict[str, str]) -> Presence:
    if "disconnected_at" in values or "instance_id" not in values:
        return OFFLINE
    return Presence(
        connected=True,
        protocol=values.get("protocol"),
        connected_at=_instant(values.get("connected_at")),
        last_seen=_instant(values.get("last_seen")),
    )


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None  # a field this reader does not understand is shown as unknown, not as an error


# Sessions (the session_history projection, with names from the fleet registry)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Sessions recorded in [since, until), at a station, in some statuses; all optional."""

    since: datetime | None = None
    until: datetime | None = None
    station_id: UUID | None = None
    statuses: tuple[str, ...] = ()


_SESSION_COLUMNS = """
    s.session_id, s.company_id, s.station_id, f.name AS station_name, s.charger_id,
    c.charge_point_id, s.evse_id, s.connector_id, s.driver_id, s.origin, s.id_token_type, s.status,
    s.created_at, s.started_at, s.stopped_at, s.energy_wh, s.currency, s.total_excl_vat, s.vat_amount,
    s.total_incl_vat, s.payment_status, s.amount_paid, s.stop_reason
"""
# The fleet registry adds the names operators know their stations and chargers by; a session can be ahead
# of it for a moment (another projection), hence the outer joins.
_SESSION_FROM = """
    session_history s
    LEFT JOIN fleet_stations f ON f.station_id = s.station_id
    LEFT JOIN fleet_chargers c ON c.charger_id = s.charger_id
"""
_SESSION_ORDER = " ORDER BY s.created_at DESC, s.session_id DESC"


def _session_query(tenant: Tenant, filters: SessionFilter) -> _Query:
    query = _Query()
    query.tenant(tenant, "s.company_id")
    if filters.station_id is not None:
        query.where("s.station_id = {}", filters.station_id)
    if filters.statuses:
        query.where("s.status = ANY({}::text[])", list(filters.statuses))
    if filters.since is not None:
        query.where("s.created_at >= {}", filters.since)
    if filters.until is not None:
        query.where("s.created_at < {}", filters.until)
    return query


async def sessions(
    pool: asyncpg.Pool, tenant: Tenant, filters: SessionFilter, *, limit: int, after: Sequence[Any] | None
) -> Page:
    """A page of sessions, newest first."""
    query = _session_query(tenant, filters)
    if after is not None:
        query.where("(s.created_at, s.session_id) < ({}::timestamptz, {}::uuid)", *after)
    sql = f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_FROM}{query.clause()}{_SESSION_ORDER}"
    return await _page(pool, sql, query, limit, SESSION_PAGES)


async def all_sessions(
    pool: asyncpg.Pool, tenant: Tenant, filters: SessionFilter, *, chunk: int = 500
) -> AsyncIterator[list[asyncpg.Record]]:
    """Every session the filters match, newest first, in chunks from a server-side cursor: an export of
    any size holds one chunk in memory at a time."""
    query = _session_query(tenant, filters)
    sql = f"SELECT {_SESSION_COLUMNS} FROM {_SESSION_FROM}{query.clause()}{_SESSION_ORDER}"
    async with pool.acquire() as connection, connection.transaction(readonly=True):
        cursor = await connection.cursor(sql, *query.arguments)
        while rows := await cursor.fetch(chunk):
            yield rows


# Daily revenue (the station_revenue projection)


@dataclass(frozen=True, slots=True)
class DayRange:
    """Local days `first` to `last`, both included."""

    first: date
    last: date


async def daily_revenue(
    pool: asyncpg.Pool,
    tenant: Tenant,
    days: DayRange,
    *,
    station_id: UUID | None,
    limit: int,
    after: Sequence[Any] | None,
) -> Page:
    """A page of (station, day, currency) rows, by day, then station and currency."""
    query = _Query()
    query.tenant(tenant, "d.company_id")
    query.where("d.day BETWEEN {} AND {}", days.first, days.last)
    if station_id is not None:
        query.where("d.station_id = {}", station_id)
    if after is not None:
        query.where("(d.day, d.station_id, d.currency) > ({}::date, {}::uuid, {})", *after)
    sql = (
        "SELECT d.station_id, f.name AS station_name, d.company_id, d.day, d.currency, d.sessions,"
        " d.energy_wh, d.revenue_excl_vat, d.revenue_incl_vat, d.paid_sessions, d.paid_incl_vat,"
        " d.refunded_incl_vat"
        f" FROM station_daily d LEFT JOIN fleet_stations f ON f.station_id = d.station_id{query.clause()}"
        " ORDER BY d.day, d.station_id, d.currency"
    )
    return await _page(pool, sql, query, limit, DAY_PAGES)
