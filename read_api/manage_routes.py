"""The operator and admin views of the read API: fleet, live connectivity, session history and daily revenue.

Operators see their own company's objects only and admins every company's (optionally one, `companyId`);
drivers are refused (403). Another company's station or charger answers 404, exactly as one that does not
exist, so ids cannot be probed; an operator naming another company in `companyId` gets 403 whether or not
it exists. Handlers parse the query, pick the caller's scope and call `manage_queries`; nothing else.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from aiohttp import web

from csms.domain.charging_session import SessionOrigin, SessionStatus
from csms.identity.roles import Role
from csms.web.bearer import authenticate, require_role
from csms.web.problems import FieldError, problem_error, problem_type
from read_api import manage_queries as queries
from read_api.context import FRESHNESS, KEY_PREFIX, POOL, REDIS
from read_api.freshness import POSITION_HEADER
from read_api.openapi import (
    MIN_POSITION_PARAMETER,
    UUID_SCHEMA,
    json_content,
    operation,
    path_parameter,
    query_parameter,
    ref,
)

# The projections each view reads (and waits on for `minPosition`).
FLEET = "fleet_registry"
SESSIONS = "session_history"
REVENUE = "station_revenue"

DEFAULT_PAGE = 50
MAX_PAGE = 500
DEFAULT_REPORT_DAYS = 31  # without `from`: the month up to `to`
_EASTERNMOST_OFFSET = timedelta(hours=14)
MAX_REPORT_DAYS = 366
MAX_REPORT_PAGE = 5000

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection): text cells that
# do are prefixed with a quote in exports. Names come from operators, token-free but not trusted.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# Who is asking, and for which company


async def _tenant(request: web.Request) -> queries.Tenant:
    principal = await authenticate(request)
    require_role(principal, Role.OPERATOR, Role.ADMIN)
    requested = _uuid(request, "companyId")
    if principal.role is Role.ADMIN:
        return queries.Tenant(requested)
    if principal.company_id is None:
        raise _forbidden("This operator account is not bound to a company.")
    if requested is not None and requested != principal.company_id:
        raise _forbidden("Operators see their own company only; leave out companyId or pass your own.")
    return queries.Tenant(principal.company_id)


def _forbidden(detail: str) -> web.HTTPException:
    return problem_error(403, "Forbidden", detail, type_=problem_type("forbidden-company"))


def _not_found(what: str) -> web.HTTPException:
    return problem_error(404, "Not found", f"no such {what}", type_=problem_type("not-found"))


# Query parameters


def _invalid(name: str, detail: str) -> web.HTTPException:
    return problem_error(
        400,
        "Invalid query parameter",
        f"{name} {detail}.",
        type_=problem_type("invalid-query"),
        errors=[FieldError(name, detail)],
    )


def _uuid(request: web.Request, name: str) -> UUID | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise _invalid(name, "must be a UUID") from None


def _limit(request: web.Request, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise _invalid("limit", f"must be an integer from 1 to {maximum}")
    return int(raw)


def _cursor(request: web.Request, keyset: queries.Keyset) -> tuple[Any, ...] | None:
    raw = request.query.get("cursor")
    if raw is None:
        return None
    try:
        return keyset.decode(raw)
    except queries.InvalidCursor:
        raise _invalid("cursor", "must be a nextCursor this list returned") from None


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false")
    if raw not in ("true", "false"):
        raise _invalid(name, "must be true or false")
    return raw == "true"


def _instant(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    # An unencoded `+01:00` arrives as ` 01:00` (a `+` in a query string is a space): take it as meant.
    text = raw.replace(" ", "+")
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _invalid(name, "must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T00:00:00Z")
    return parsed


def _date(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        if len(raw) == 10:  # fromisoformat also takes 20260301, which nobody means here
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise _invalid(name, "must be a date, YYYY-MM-DD")


def _statuses(request: web.Request) -> tuple[str, ...]:
    raw = request.query.get("status")
    if raw is None:
        return ()
    names = tuple(part.strip().upper() for part in raw.split(","))
    known = {status.value for status in SessionStatus}
    if not names or any(name not in known for name in names):
        raise _invalid("status", "must be session statuses separated by commas: " + ", ".join(sorted(known)))
    return names


def _wants_csv(request: web.Request) -> bool:
    requested = request.query.get("format")
    if requested is not None:
        if requested not in ("json", "csv"):
            raise _invalid("format", "must be json or csv")
        return requested == "csv"
    accept = request.headers.get("Accept", "")
    return "text/csv" in accept and "application/json" not in accept


# Responses


def _json(body: Any, position: int) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        content_type="application/json",
        headers={POSITION_HEADER: str(position)},
    )


def _page(
    page: queries.Page, item: Callable[[asyncpg.Record], dict[str, Any]], position: int
) -> web.Response:
    return _json({"items": [item(row) for row in page.rows], "nextCursor": page.next_cursor}, position)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _id(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _station(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["station_id"]),
        "companyId": str(row["company_id"]),
        "name": row["name"],
        "address": {
            "street": row["street"],
            "postalCode": row["postal_code"],
            "city": row["city"],
            "state": row["state"],
            "country": row["country"],
        },
        "coordinates": {"latitude": str(row["latitude"]), "longitude": str(row["longitude"])},
        "timeZone": row["time_zone"],
        "published": row["published"],
        "tariffId": _id(row["tariff_id"]),
        "removed": row["removed"],
        "createdAt": _time(row["created_at"]),
        "updatedAt": _time(row["updated_at"]),
    }


def _charger(row: asyncpg.Record, presence: queries.Presence) -> dict[str, Any]:
    return {
        "id": str(row["charger_id"]),
        "chargerId": row["charge_point_id"],
        "companyId": str(row["company_id"]),
        "stationId": str(row["station_id"]),
        "evses": orjson.loads(row["evses"]),
        "ocppVersion": row["ocpp_version"],
        "vendor": row["vendor"],
        "model": row["model"],
        "serialNumber": row["serial_number"],
        "firmwareVersion": row["firmware_version"],
        "availability": row["availability"],
        "decommissioned": row["decommissioned"],
        "connectorStatuses": orjson.loads(row["connector_statuses"]),
        "connectivity": {
            # Live, from the gateway's presence in Redis: connected now, and its last heartbeat (any frame).
            "connected": presence.connected,
            "protocol": presence.protocol,
            "connectedSince": _time(presence.connected_at),
            "lastSeen": _time(presence.last_seen),
            # As recorded in the log by the Connected / Disconnected events.
            "lastConnectedAt": _time(row["last_connected_at"]),
            "lastDisconnectedAt": _time(row["last_disconnected_at"]),
        },
        "registeredAt": _time(row["registered_at"]),
        "updatedAt": _time(row["updated_at"]),
    }


def _company(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(row["company_id"]),
        "name": row["name"],
        "suspended": row["suspended"],
        "suspensionReason": row["suspension_reason"],
        "createdAt": _time(row["created_at"]),
        "updatedAt": _time(row["updated_at"]),
    }


def _session(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "sessionId": str(row["session_id"]),
        "companyId": str(row["company_id"]),
        "stationId": str(row["station_id"]),
        "stationName": row["station_name"],
        "chargerId": row["charge_point_id"],
        "evseId": row["evse_id"],
        "connectorId": row["connector_id"],
        "driverId": _id(row["driver_id"]),
        "origin": row["origin"],
        "idTokenType": row["id_token_type"],
        "status": row["status"],
        "createdAt": _time(row["created_at"]),
        "startedAt": _time(row["started_at"]),
        "stoppedAt": _time(row["stopped_at"]),
        "energyWh": row["energy_wh"],
        "currency": row["currency"],
        "totalExclVat": _money(row["total_excl_vat"]),
        "vatAmount": _money(row["vat_amount"]),
        "totalInclVat": _money(row["total_incl_vat"]),
        "paymentStatus": row["payment_status"],
        "amountPaid": _money(row["amount_paid"]),
        "stopReason": row["stop_reason"],
    }


def _revenue_day(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "stationId": str(row["station_id"]),
        "stationName": row["station_name"],
        "companyId": str(row["company_id"]),
        "day": row["day"].isoformat(),
        "currency": row["currency"],
        "sessions": row["sessions"],
        "energyWh": row["energy_wh"],
        "revenueExclVat": str(row["revenue_excl_vat"]),
        "revenueInclVat": str(row["revenue_incl_vat"]),
        "paidSessions": row["paid_sessions"],
        "paidInclVat": str(row["paid_incl_vat"]),
        "refundedInclVat": str(row["refunded_incl_vat"]),
    }


# Handlers


async def list_stations(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    limit, after = _limit(request), _cursor(request, queries.STATION_PAGES)
    include_removed = _flag(request, "includeRemoved")
    position = await request.app[FRESHNESS].wait(request, FLEET)
    page = await queries.stations(
        request.app[POOL], tenant, include_removed=include_removed, limit=limit, after=after
    )
    return _page(page, _station, position)


async def get_station(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    station_id = _path_uuid(request, "stationId", "station")
    position = await request.app[FRESHNESS].wait(request, FLEET)
    row = await queries.station(request.app[POOL], tenant, station_id)
    if row is None:
        raise _not_found("station")
    return _json(_station(row), position)


async def list_chargers(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    station_id = _uuid(request, "stationId")
    limit, after = _limit(request), _cursor(request, queries.CHARGER_PAGES)
    include_decommissioned = _flag(request, "includeDecommissioned")
    position = await request.app[FRESHNESS].wait(request, FLEET)
    page = await queries.chargers(
        request.app[POOL],
        tenant,
        station_id=station_id,
        include_decommissioned=include_decommissioned,
        limit=limit,
        after=after,
    )
    live = await queries.presences(
        request.app[REDIS], request.app[KEY_PREFIX], [row["charge_point_id"] for row in page.rows]
    )
    return _json(
        {
            "items": [_charger(row, live[row["charge_point_id"]]) for row in page.rows],
            "nextCursor": page.next_cursor,
        },
        position,
    )


async def get_charger(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    charge_point_id = request.match_info["chargerId"]
    position = await request.app[FRESHNESS].wait(request, FLEET)
    row = await queries.charger(request.app[POOL], tenant, charge_point_id)
    if row is None:
        raise _not_found("charger")
    live = await queries.presences(request.app[REDIS], request.app[KEY_PREFIX], [charge_point_id])
    return _json(_charger(row, live[charge_point_id]), position)


async def list_companies(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    require_role(principal, Role.ADMIN)
    limit, after = _limit(request), _cursor(request, queries.COMPANY_PAGES)
    position = await request.app[FRESHNESS].wait(request, FLEET)
    page = await queries.companies(request.app[POOL], limit=limit, after=after)
    return _page(page, _company, position)


async def list_sessions(request: web.Request) -> web.StreamResponse:
    tenant = await _tenant(request)
    filters = queries.SessionFilter(
        since=_instant(request, "from"),
        until=_instant(request, "to"),
        station_id=_uuid(request, "stationId"),
        statuses=_statuses(request),
    )
    csv_export = _wants_csv(request)
    limit, after = _limit(request), _cursor(request, queries.SESSION_PAGES)
    position = await request.app[FRESHNESS].wait(request, SESSIONS)
    if csv_export:
        return await _sessions_csv(request, tenant, filters, position)
    page = await queries.sessions(request.app[POOL], tenant, filters, limit=limit, after=after)
    return _page(page, _session, position)


_CSV_COLUMNS = (
    "sessionId",
    "status",
    "stationId",
    "stationName",
    "chargerId",
    "evseId",
    "connectorId",
    "driverId",
    "origin",
    "idTokenType",
    "createdAt",
    "startedAt",
    "stoppedAt",
    "energyWh",
    "currency",
    "totalExclVat",
    "vatAmount",
    "totalInclVat",
    "paymentStatus",
    "amountPaid",
    "stopReason",
)
_CSV_TEXT = frozenset({"stationName", "chargerId"})


async def _sessions_csv(
    request: web.Request, tenant: queries.Tenant, filters: queries.SessionFilter, position: int
) -> web.StreamResponse:
    """The whole filtered range (no pages), streamed as it is read: `limit` and `cursor` do not apply."""
    response = web.StreamResponse(
        headers={
            POSITION_HEADER: str(position),
            "Content-Disposition": 'attachment; filename="sessions.csv"',
        }
    )
    response.content_type = "text/csv"
    response.charset = "utf-8"
    await response.prepare(request)
    await response.write(_csv_lines([list(_CSV_COLUMNS)]))
    async for rows in queries.all_sessions(request.app[POOL], tenant, filters):
        await response.write(_csv_lines([_csv_row(_session(row)) for row in rows]))
    await response.write_eof()
    return response


def _csv_row(session: Mapping[str, Any]) -> list[str]:
    cells = []
    for column in _CSV_COLUMNS:
        value = session[column]
        text = "" if value is None else str(value)
        if column in _CSV_TEXT and text.startswith(_FORMULA_STARTS):
            text = "'" + text
        cells.append(text)
    return cells


def _csv_lines(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180 line ends
    return buffer.getvalue().encode()


async def daily_report(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    days = _report_days(request)
    station_id = _uuid(request, "stationId")
    limit = _limit(request, MAX_PAGE, MAX_REPORT_PAGE)
    after = _cursor(request, queries.DAY_PAGES)
    position = await request.app[FRESHNESS].wait(request, REVENUE)
    page = await queries.daily_revenue(
        request.app[POOL], tenant, days, station_id=station_id, limit=limit, after=after
    )
    return _page(page, _revenue_day, position)


def _report_days(request: web.Request) -> queries.DayRange:
    # Days are local to each station: the newest one anywhere is UTC's date 14 hours on (UTC+14 is the
    # easternmost zone), so an evening in UTC still shows a station whose local day has already turned.
    last = _date(request, "to") or (datetime.now(UTC) + _EASTERNMOST_OFFSET).date()
    first = _date(request, "from") or last - timedelta(days=DEFAULT_REPORT_DAYS - 1)
    if first > last:
        raise _invalid("from", "must not be after to")
    if (last - first).days >= MAX_REPORT_DAYS:
        raise _invalid("from", f"must be at most {MAX_REPORT_DAYS} days before to")
    return queries.DayRange(first, last)


def _path_uuid(request: web.Request, name: str, what: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise _not_found(what) from None


def add_routes(app: web.Application) -> None:
    app.router.add_get("/manage/stations", list_stations)
    app.router.add_get("/manage/stations/{stationId}", get_station)
    app.router.add_get("/manage/chargers", list_chargers)
    app.router.add_get("/manage/chargers/{chargerId}", get_charger)
    app.router.add_get("/manage/sessions", list_sessions)
    app.router.add_get("/manage/reports/daily", daily_report)
    app.router.add_get("/manage/companies", list_companies)


# OpenAPI

_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
_NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_DECIMAL: dict[str, Any] = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}
_NULLABLE_DECIMAL: dict[str, Any] = {"type": ["string", "null"], "pattern": r"^-?\d+(\.\d+)?$"}
_NULLABLE_UUID: dict[str, Any] = {"type": ["string", "null"], "format": "uuid"}


def _object(properties: Mapping[str, Any], description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(properties),
        "properties": dict(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _page_of(name: str) -> dict[str, Any]:
    return _object(
        {
            "items": {"type": "array", "items": ref(name)},
            "nextCursor": {
                **_NULLABLE_STRING,
                "description": "Pass as `cursor` for the next page; null on the last one.",
            },
        }
    )


SCHEMAS: dict[str, dict[str, Any]] = {
    "ManageStation": _object(
        {
            "id": UUID_SCHEMA,
            "companyId": UUID_SCHEMA,
            "name": {"type": "string"},
            "address": _object(
                {
                    "street": {"type": "string"},
                    "postalCode": _NULLABLE_STRING,
                    "city": {"type": "string"},
                    "state": _NULLABLE_STRING,
                    "country": {"type": "string", "description": "ISO 3166-1 alpha-3"},
                }
            ),
            "coordinates": _object({"latitude": _DECIMAL, "longitude": _DECIMAL}),
            "timeZone": {"type": "string", "description": "IANA time zone"},
            "published": {"type": "boolean"},
            "tariffId": _NULLABLE_UUID,
            "removed": {"type": "boolean"},
            "createdAt": _TIME,
            "updatedAt": _TIME,
        }
    ),
    "ManageCharger": _object(
        {
            "id": {**UUID_SCHEMA, "description": "The Charger aggregate's id"},
            "chargerId": {"type": "string", "description": "The OCPP identity (charge point id)"},
            "companyId": UUID_SCHEMA,
            "stationId": UUID_SCHEMA,
            "evses": {
                "type": "array",
                "items": _object(
                    {
                        "evseId": {"type": "integer"},
                        "connectors": {
                            "type": "array",
                            "items": _object(
                                {
                                    "connectorId": {"type": "integer"},
                                    "standard": {"type": "string"},
                                    "format": {"type": "string", "enum": ["SOCKET", "CABLE"]},
                                    "powerType": {"type": "string"},
                                    "maxPowerW": {"type": "integer"},
                                }
                            ),
                        },
                    }
                ),
            },
            "ocppVersion": {"type": ["string", "null"], "enum": ["ocpp1.6", "ocpp2.0.1", None]},
            "vendor": _NULLABLE_STRING,
            "model": _NULLABLE_STRING,
            "serialNumber": _NULLABLE_STRING,
            "firmwareVersion": _NULLABLE_STRING,
            "availability": {"type": "string", "enum": ["Operative", "Inoperative"]},
            "decommissioned": {"type": "boolean"},
            "connectorStatuses": {
                "type": "array",
                "description": "The last status reported per connector; evseId 0 is the charger as a whole.",
                "items": _object(
                    {
                        "evseId": {"type": "integer"},
                        "connectorId": {"type": "integer"},
                        "status": {"type": "string"},
                        "errorCode": _NULLABLE_STRING,
                        "reportedAt": _TIME,
                    }
                ),
            },
            "connectivity": _object(
                {
                    "connected": {"type": "boolean", "description": "Connected to a live gateway now"},
                    "protocol": _NULLABLE_STRING,
                    "connectedSince": _NULLABLE_TIME,
                    "lastSeen": {**_NULLABLE_TIME, "description": "Last frame (heartbeat or other) received"},
                    "lastConnectedAt": _NULLABLE_TIME,
                    "lastDisconnectedAt": _NULLABLE_TIME,
                }
            ),
            "registeredAt": _TIME,
            "updatedAt": _TIME,
        }
    ),
    "ManageCompany": _object(
        {
            "id": UUID_SCHEMA,
            "name": {"type": "string"},
            "suspended": {"type": "boolean"},
            "suspensionReason": _NULLABLE_STRING,
            "createdAt": _TIME,
            "updatedAt": _TIME,
        }
    ),
    "ManageSession": _object(
        {
            "sessionId": UUID_SCHEMA,
            "companyId": UUID_SCHEMA,
            "stationId": UUID_SCHEMA,
            "stationName": _NULLABLE_STRING,
            "chargerId": {**_NULLABLE_STRING, "description": "The charger's OCPP identity"},
            "evseId": {"type": "integer"},
            "connectorId": {"type": "integer"},
            "driverId": _NULLABLE_UUID,
            "origin": {"type": "string", "enum": [origin.value for origin in SessionOrigin]},
            "idTokenType": {"type": "string"},
            "status": {"type": "string", "enum": [status.value for status in SessionStatus]},
            "createdAt": _TIME,
            "startedAt": _NULLABLE_TIME,
            "stoppedAt": _NULLABLE_TIME,
            "energyWh": {"type": "integer"},
            "currency": _NULLABLE_STRING,
            "totalExclVat": _NULLABLE_DECIMAL,
            "vatAmount": _NULLABLE_DECIMAL,
            "totalInclVat": _NULLABLE_DECIMAL,
            "paymentStatus": {
                "type": "string",
                "description": "As the session history keeps it: none, pending, succeeded, failed ...",
            },
            "amountPaid": _NULLABLE_DECIMAL,
            "stopReason": _NULLABLE_STRING,
        }
    ),
    "DailyRevenue": _object(
        {
            "stationId": UUID_SCHEMA,
            "stationName": _NULLABLE_STRING,
            "companyId": UUID_SCHEMA,
            "day": {
                "type": "string",
                "format": "date",
                "description": "Local day in the station's time zone",
            },
            "currency": {"type": "string"},
            "sessions": {"type": "integer", "description": "Priced sessions that stopped that day"},
            "energyWh": {"type": "integer"},
            "revenueExclVat": _DECIMAL,
            "revenueInclVat": {**_DECIMAL, "description": "What the drivers were billed"},
            "paidSessions": {"type": "integer"},
            "paidInclVat": {**_DECIMAL, "description": "Of that, what payments collected"},
            "refundedInclVat": {**_DECIMAL, "description": "Given back to drivers since"},
        },
        "One station's priced sessions on one local day, in one currency.",
    ),
    "ManageStationPage": _page_of("ManageStation"),
    "ManageChargerPage": _page_of("ManageCharger"),
    "ManageCompanyPage": _page_of("ManageCompany"),
    "ManageSessionPage": _page_of("ManageSession"),
    "DailyRevenuePage": _page_of("DailyRevenue"),
}

_COMPANY_PARAMETER = query_parameter(
    "companyId", UUID_SCHEMA, "Admins: one company's objects only. Operators may pass only their own."
)
_LIMIT = query_parameter(
    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_PAGE}, "Page size."
)
_CURSOR = query_parameter("cursor", {"type": "string"}, "The `nextCursor` of the previous page.")
_STATION_FILTER = query_parameter(
    "stationId", UUID_SCHEMA, "One station's only (a station the caller cannot see matches nothing)."
)
_ROLE_ERRORS = {"403": "Drivers, or an operator naming another company"}
_DETAIL_ERRORS = {**_ROLE_ERRORS, "404": "No such object in the caller's company"}
_POSITION_HEADER = {
    POSITION_HEADER: {"description": "The log position the answer reflects", "schema": {"type": "integer"}}
}


def _ok(description: str, schema_name: str) -> dict[str, Any]:
    return {
        "200": {"description": description, "headers": _POSITION_HEADER, **json_content(ref(schema_name))}
    }


PATHS: dict[str, dict[str, Any]] = {
    "/manage/stations": {
        "get": operation(
            "The caller's stations (admins: every company's), by name",
            _ok("A page of stations", "ManageStationPage"),
            parameters=[
                _COMPANY_PARAMETER,
                query_parameter("includeRemoved", {"type": "boolean", "default": False}, "Removed ones too."),
                _LIMIT,
                _CURSOR,
                MIN_POSITION_PARAMETER,
            ],
            errors=_ROLE_ERRORS,
        )
    },
    "/manage/stations/{stationId}": {
        "get": operation(
            "One station of the caller's company",
            _ok("The station", "ManageStation"),
            parameters=[path_parameter("stationId"), _COMPANY_PARAMETER, MIN_POSITION_PARAMETER],
            errors=_DETAIL_ERRORS,
        )
    },
    "/manage/chargers": {
        "get": operation(
            "The caller's chargers with live connectivity, by OCPP identity",
            _ok("A page of chargers", "ManageChargerPage"),
            parameters=[
                _STATION_FILTER,
                _COMPANY_PARAMETER,
                query_parameter(
                    "includeDecommissioned", {"type": "boolean", "default": False}, "Decommissioned ones too."
                ),
                _LIMIT,
                _CURSOR,
                MIN_POSITION_PARAMETER,
            ],
            errors=_ROLE_ERRORS,
        )
    },
    "/manage/chargers/{chargerId}": {
        "get": operation(
            "One charger of the caller's company, with live connectivity",
            _ok("The charger", "ManageCharger"),
            parameters=[
                path_parameter("chargerId", {"type": "string", "description": "The OCPP identity"}),
                _COMPANY_PARAMETER,
                MIN_POSITION_PARAMETER,
            ],
            errors=_DETAIL_ERRORS,
        )
    },
    "/manage/sessions": {
        "get": operation(
            "The caller's charging sessions, newest first; as CSV with `format=csv` or `Accept: text/csv`",
            {
                "200": {
                    "description": "A page of sessions, or (CSV) every session the filters match, streamed",
                    "headers": _POSITION_HEADER,
                    "content": {
                        "application/json": {"schema": ref("ManageSessionPage")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                }
            },
            parameters=[
                query_parameter(
                    "from", _TIME, "Sessions recorded at or after this instant (RFC 3339, with an offset)."
                ),
                query_parameter("to", _TIME, "Sessions recorded before this instant."),
                _STATION_FILTER,
                query_parameter(
                    "status",
                    {"type": "string"},
                    "Session statuses, comma-separated: " + ", ".join(s.value for s in SessionStatus) + ".",
                ),
                _COMPANY_PARAMETER,
                _LIMIT,
                _CURSOR,
                query_parameter(
                    "format",
                    {"type": "string", "enum": ["json", "csv"]},
                    "csv: the whole filtered range as CSV (limit and cursor do not apply).",
                ),
                MIN_POSITION_PARAMETER,
            ],
            errors=_ROLE_ERRORS,
        )
    },
    "/manage/reports/daily": {
        "get": operation(
            "Daily energy and revenue per station (local days, in each station's time zone)",
            _ok("A page of station days", "DailyRevenuePage"),
            parameters=[
                query_parameter(
                    "from",
                    {"type": "string", "format": "date"},
                    f"First day (default: {DEFAULT_REPORT_DAYS - 1} days before `to`); "
                    f"at most {MAX_REPORT_DAYS} days in all.",
                ),
                query_parameter(
                    "to",
                    {"type": "string", "format": "date"},
                    "Last day, included (default: the newest local day of any time zone, UTC+14).",
                ),
                _STATION_FILTER,
                _COMPANY_PARAMETER,
                query_parameter(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": MAX_REPORT_PAGE, "default": MAX_PAGE},
                    "Page size.",
                ),
                _CURSOR,
                MIN_POSITION_PARAMETER,
            ],
            errors=_ROLE_ERRORS,
        )
    },
    "/manage/companies": {
        "get": operation(
            "Every company (admins only), by name",
            _ok("A page of companies", "ManageCompanyPage"),
            parameters=[_LIMIT, _CURSOR, MIN_POSITION_PARAMETER],
            errors={"403": "Not an admin"},
        )
    },
}
