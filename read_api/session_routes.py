"""Driver-facing session routes: a live session, its server-sent updates, the driver's history and receipts.

Reads come from the `session_history` read model. A session the caller may not see answers 404, exactly like
one that does not exist, so session ids cannot be probed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
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
from projections.session_cost import cost_so_far
from projections.session_history import (
    FINAL_STATUSES,
    NAME,
    PAYMENT_FAILED,
    PAYMENT_NONE,
    PAYMENT_NOT_REQUIRED,
    PAYMENT_PARTIALLY_REFUNDED,
    PAYMENT_PENDING,
    PAYMENT_REFUNDED,
    PAYMENT_SUCCEEDED,
    PRICED_STATUSES,
)
from read_api import session_queries
from read_api.context import FRESHNESS, POOL
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
from read_api.session_queries import HistoryCursor, SessionScope, SessionWatch

SESSION_WATCH = web.AppKey("session_watch", SessionWatch)

DEFAULT_PAGE = 20
MAX_PAGE = 100
KEEP_ALIVE_SECONDS = 15.0  # below the idle timeouts of common proxies and load balancers (30-60 s)
MAX_STREAM_SECONDS = 3600.0  # a stream then ends; the client resumes with Last-Event-ID
_WH = Decimal("0.001")  # kWh to the watt-hour


async def get_session(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    session_id = _session_id(request)
    position = await request.app[FRESHNESS].wait(request, NAME)
    row = await session_queries.session(request.app[POOL], session_id, SessionScope.of(principal))
    if row is None:
        raise _not_found(session_id)
    return _json(session_document(row), position)


async def session_events(request: web.Request) -> web.StreamResponse:
    """The session's state as server-sent events, each with the log position it reflects as its id."""
    principal = await authenticate(request)
    session_id = _session_id(request)
    position = await request.app[FRESHNESS].wait(request, NAME)
    row = await session_queries.session(request.app[POOL], session_id, SessionScope.of(principal))
    if row is None:
        raise _not_found(session_id)
    sent = _last_event_id(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # proxies must pass events on as they come
            POSITION_HEADER: str(position),
        }
    )
    await response.prepare(request)
    try:
        await response.write(b"retry: 2000\n\n")
        if row["position"] > sent:
            await _send(response, row)
            sent = row["position"]
        if row["status"] not in FINAL_STATUSES:
            async for update in _updates(request.app[SESSION_WATCH], session_id, sent, response):
                await _send(response, update)
                if update["status"] in FINAL_STATUSES:
                    break
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; nothing is held beyond this handler
    return response


async def _updates(
    watch: SessionWatch, session_id: UUID, after: int, response: web.StreamResponse
) -> AsyncIterator[asyncpg.Record]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAX_STREAM_SECONDS
    with watch.watch(session_id, after) as watcher:
        while loop.time() < deadline:
            row = await watcher.next(min(KEEP_ALIVE_SECONDS, max(0.0, deadline - loop.time())))
            if row is None:
                # A comment line: keeps idle proxies from cutting the stream and finds clients that left.
                await response.write(b": keep-alive\n\n")
                continue
            yield row


async def _send(response: web.StreamResponse, row: asyncpg.Record) -> None:
    data = orjson.dumps(session_document(row), default=_json_default)
    await response.write(b"id: %d\nevent: session\ndata: %s\n\n" % (row["position"], data))


async def my_sessions(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    require_role(principal, Role.DRIVER)
    limit = _limit(request)
    cursor = _cursor(request)
    position = await request.app[FRESHNESS].wait(request, NAME)
    if principal.driver_id is None:  # a driver account not linked to a Driver yet has no sessions
        return _json({"items": [], "nextCursor": None}, position)
    page = await session_queries.driver_history(request.app[POOL], principal.driver_id, limit, cursor)
    return _json(
        {
            "items": [session_document(row) for row in page.rows],
            "nextCursor": None if page.next_cursor is None else page.next_cursor.encode(),
        },
        position,
    )


async def session_receipt(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    session_id = _session_id(request)
    position = await request.app[FRESHNESS].wait(request, NAME)
    row = await session_queries.receipt(request.app[POOL], session_id, SessionScope.of(principal))
    if row is None:
        raise _not_found(session_id)
    if row["status"] not in PRICED_STATUSES:
        raise problem_error(
            409,
            "Not priced yet",
            f"The session is {row['status']}: its receipt exists once it has been stopped and priced.",
            type_=problem_type("session-not-priced"),
            headers={POSITION_HEADER: str(position)},
        )
    return _json(receipt_document(row), position)


def session_document(row: asyncpg.Record) -> dict[str, Any]:
    """A session as the app shows it while charging and in the history list."""
    cost = total = None
    if row["total_incl_vat"] is not None:
        total = {
            "exclVat": _amount(row["total_excl_vat"]),
            "vatAmount": _amount(row["vat_amount"]),
            "inclVat": _amount(row["total_incl_vat"]),
        }
        cost = {"exclVat": total["exclVat"], "inclVat": total["inclVat"]}
    elif (estimate := cost_so_far(row)) is not None:
        cost = {"exclVat": _amount(estimate.total_excl_vat), "inclVat": _amount(estimate.total_incl_vat)}
    return {
        "sessionId": row["session_id"],
        "status": row["status"],
        "paymentStatus": row["payment_status"],
        "origin": row["origin"],
        "driverId": row["driver_id"],
        "companyId": row["company_id"],
        "stationId": row["station_id"],
        "chargerId": row["charger_id"],
        "evseId": row["evse_id"],
        "connectorId": row["connector_id"],
        "createdAt": row["created_at"],
        "requestedAt": row["requested_at"],
        "startedAt": row["started_at"],
        "stoppedAt": row["stopped_at"],
        "durationSeconds": _duration(row),
        "energyWh": row["energy_wh"],
        "powerW": row["power_w"],
        "socPercent": row["soc_percent"],
        "measuredAt": row["measured_at"],
        "currency": row["currency"],
        "costSoFar": cost,
        "total": total,
        "stopReason": row["stop_reason"],
        "position": row["position"],
    }


def receipt_document(row: asyncpg.Record) -> dict[str, Any]:
    """A priced session as a receipt, after OCPI's CDR: times, energy, tariff, priced lines, totals."""
    tariff = orjson.loads(row["tariff"]) if row["tariff"] is not None else {}
    lines = orjson.loads(row["lines"]) if row["lines"] is not None else []
    return {
        "sessionId": row["session_id"],
        "status": row["status"],
        "paymentStatus": row["payment_status"],
        "startDateTime": row["started_at"],
        "endDateTime": row["stopped_at"],
        "durationSeconds": _duration(row),
        "energyWh": row["energy_wh"],
        "totalEnergyKwh": _amount((Decimal(row["energy_wh"]) / 1000).quantize(_WH)),
        "location": {
            "stationId": row["station_id"],
            "chargerId": row["charger_id"],
            "evseId": row["evse_id"],
            "connectorId": row["connector_id"],
        },
        "stopReason": row["stop_reason"],
        "currency": row["currency"],
        "vatPercent": _amount(row["vat_percent"]),
        "tariff": {
            "tariffId": row["tariff_id"],
            "version": row["tariff_version"],
            "name": row["tariff_name"],
            "elements": _camel(tariff.get("elements", [])),
            "parkingGracePeriodSeconds": tariff.get("parking_grace_period_s", 0),
        },
        "lines": _camel(lines),
        "totalExclVat": _amount(row["total_excl_vat"]),
        "vatAmount": _amount(row["vat_amount"]),
        "totalInclVat": _amount(row["total_incl_vat"]),
        "pricedAt": row["priced_at"],
        "paidAt": row["paid_at"],
        "amountPaid": None if row["amount_paid"] is None else _amount(row["amount_paid"]),
        "amountRefunded": None if row["amount_refunded"] is None else _amount(row["amount_refunded"]),
        "disputeStatus": row["dispute_status"],
    }


def _duration(row: asyncpg.Record) -> int | None:
    """Seconds from the charger's start to its stop, or to now while charging."""
    started: datetime | None = row["started_at"]
    if started is None:
        return None
    until: datetime = row["stopped_at"] or datetime.now(UTC)
    return max(0, int((until - started).total_seconds()))


def _amount(value: Decimal) -> str:
    # A string keeps every digit of money; fixed-point notation, never `1E+1`.
    return format(value, "f")


def _camel(value: Any) -> Any:
    """Stored snake_case JSON (tariff elements, priced lines) as the API's camelCase, without null members."""
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if isinstance(value, dict):
        return {
            _camel_key(key): _camel(item) for key, item in value.items() if item is not None and item != []
        }
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _json(document: Mapping[str, Any], position: int) -> web.Response:
    return web.Response(
        body=orjson.dumps(document, default=_json_default),
        content_type="application/json",
        headers={POSITION_HEADER: str(position)},
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _amount(value)
    if isinstance(value, UUID):
        return str(value)  # asyncpg hands out its own UUID subclass, which orjson does not take
    raise TypeError(f"{type(value).__qualname__} is not JSON serialisable")


def _session_id(request: web.Request) -> UUID:
    raw = request.match_info["session_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise _not_found(raw) from None  # an id that cannot exist is simply not found


def _not_found(session_id: object) -> web.HTTPException:
    return problem_error(
        404,
        "Not Found",
        f"No session {session_id} that you may see.",
        type_=problem_type("session-not-found"),
    )


def _last_event_id(request: web.Request) -> int:
    """The position the client last received (SSE `Last-Event-ID` on reconnect); 0 for a first connect."""
    raw = request.headers.get("Last-Event-ID", "").strip()
    return int(raw) if raw.isdigit() and len(raw) <= 18 else 0


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise _invalid_query("limit", f"must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def _cursor(request: web.Request) -> HistoryCursor | None:
    raw = request.query.get("cursor")
    if raw is None:
        return None
    try:
        return HistoryCursor.decode(raw)
    except ValueError:
        raise _invalid_query("cursor", "must be the nextCursor of a previous page") from None


def _invalid_query(name: str, detail: str) -> web.HTTPException:
    return problem_error(
        400,
        "Invalid query parameter",
        f"{name} {detail}.",
        type_=problem_type("invalid-query"),
        errors=[FieldError(name, detail)],
    )


async def _session_watch(app: web.Application) -> AsyncIterator[None]:
    watch = SessionWatch(app[POOL])
    app[SESSION_WATCH] = watch
    yield
    await watch.close()


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_session_watch)
    app.router.add_get("/sessions/{session_id}", get_session)
    app.router.add_get("/sessions/{session_id}/events", session_events)
    app.router.add_get("/sessions/{session_id}/receipt", session_receipt)
    app.router.add_get("/me/sessions", my_sessions)


# OpenAPI


def _nullable(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {"oneOf": [dict(schema), {"type": "null"}]}


_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "A decimal amount, exact"}
_DATE_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_DATE_TIME = _nullable(_DATE_TIME)
_NULLABLE_INTEGER = {"type": ["integer", "null"]}
_NULLABLE_STRING = {"type": ["string", "null"]}
_PAYMENT_STATUS = {
    "type": "string",
    "enum": [
        PAYMENT_NONE,
        PAYMENT_PENDING,
        PAYMENT_SUCCEEDED,
        PAYMENT_FAILED,
        PAYMENT_NOT_REQUIRED,
        PAYMENT_REFUNDED,
        PAYMENT_PARTIALLY_REFUNDED,
    ],
}
_STATUS = {"type": "string", "enum": [status.value for status in SessionStatus]}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Session": {
        "type": "object",
        "description": "A charging session as the driver sees it live and in the history list.",
        "properties": {
            "sessionId": UUID_SCHEMA,
            "status": _STATUS,
            "paymentStatus": _PAYMENT_STATUS,
            "origin": {
                "type": "string",
                "enum": [origin.value for origin in SessionOrigin],
                "description": "APP: started from the app; CHARGER: a token (RFID) presented at the charger.",
            },
            "driverId": _nullable(UUID_SCHEMA),
            "companyId": UUID_SCHEMA,
            "stationId": UUID_SCHEMA,
            "chargerId": UUID_SCHEMA,
            "evseId": {"type": "integer"},
            "connectorId": {"type": "integer"},
            "createdAt": _DATE_TIME,
            "requestedAt": _NULLABLE_DATE_TIME,
            "startedAt": _NULLABLE_DATE_TIME,
            "stoppedAt": _NULLABLE_DATE_TIME,
            "durationSeconds": {
                **_NULLABLE_INTEGER,
                "description": "Start to stop, or to now while charging.",
            },
            "energyWh": {"type": "integer", "minimum": 0},
            "powerW": {**_NULLABLE_INTEGER, "description": "The latest power reading."},
            "socPercent": {**_NULLABLE_INTEGER, "description": "The latest state of charge reading."},
            "measuredAt": {**_NULLABLE_DATE_TIME, "description": "When the latest reading was taken."},
            "currency": _NULLABLE_STRING,
            "costSoFar": _nullable(
                {
                    "type": "object",
                    "description": "The price had it ended at the latest reading; the total once priced.",
                    "required": ["exclVat", "inclVat"],
                    "properties": {"exclVat": _DECIMAL, "inclVat": _DECIMAL},
                }
            ),
            "total": _nullable(
                {
                    "type": "object",
                    "description": "The priced totals (what the driver pays is inclVat).",
                    "required": ["exclVat", "vatAmount", "inclVat"],
                    "properties": {"exclVat": _DECIMAL, "vatAmount": _DECIMAL, "inclVat": _DECIMAL},
                }
            ),
            "stopReason": _NULLABLE_STRING,
            "position": {"type": "integer", "description": "The log position this state reflects."},
        },
    },
    "SessionPage": {
        "type": "object",
        "required": ["items", "nextCursor"],
        "properties": {
            "items": {"type": "array", "items": ref("Session")},
            "nextCursor": {
                **_NULLABLE_STRING,
                "description": "Pass as `cursor` for the next page; null at the end.",
            },
        },
    },
    "Receipt": {
        "type": "object",
        "description": "A priced session, after OCPI's CDR.",
        "properties": {
            "sessionId": UUID_SCHEMA,
            "status": _STATUS,
            "paymentStatus": _PAYMENT_STATUS,
            "startDateTime": _DATE_TIME,
            "endDateTime": _DATE_TIME,
            "durationSeconds": {"type": "integer", "minimum": 0},
            "energyWh": {"type": "integer", "minimum": 0},
            "totalEnergyKwh": _DECIMAL,
            "location": {
                "type": "object",
                "required": ["stationId", "chargerId", "evseId", "connectorId"],
                "properties": {
                    "stationId": UUID_SCHEMA,
                    "chargerId": UUID_SCHEMA,
                    "evseId": {"type": "integer"},
                    "connectorId": {"type": "integer"},
                },
            },
            "stopReason": _NULLABLE_STRING,
            "currency": {"type": "string", "minLength": 3, "maxLength": 3},
            "vatPercent": _DECIMAL,
            "tariff": {
                "type": "object",
                "description": "The tariff snapshot the session was priced by (OCPI TariffElement fields).",
                "required": ["tariffId", "version", "name", "elements", "parkingGracePeriodSeconds"],
                "properties": {
                    "tariffId": UUID_SCHEMA,
                    "version": {"type": "integer"},
                    "name": {"type": "string"},
                    "elements": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["priceComponents"],
                            "properties": {
                                "priceComponents": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["type", "price", "stepSize"],
                                        "properties": {
                                            "type": {"type": "string"},
                                            "price": _DECIMAL,
                                            "stepSize": {"type": "integer"},
                                        },
                                    },
                                },
                                "restrictions": {"type": "object"},
                            },
                        },
                    },
                    "parkingGracePeriodSeconds": {"type": "integer", "minimum": 0},
                },
            },
            "lines": {
                "type": "array",
                "description": "What each dimension cost at each unit price, excl. VAT: the tariff applied.",
                "items": {
                    "type": "object",
                    "required": ["dimension", "quantity", "unitPrice", "amountExclVat"],
                    "properties": {
                        "dimension": {"type": "string", "enum": ["ENERGY", "TIME", "PARKING_TIME", "FLAT"]},
                        "quantity": {
                            **_DECIMAL,
                            "description": "Wh for ENERGY, seconds for TIME and PARKING_TIME, 1 for FLAT.",
                        },
                        "unitPrice": {**_DECIMAL, "description": "Per kWh, per hour, or per session."},
                        "amountExclVat": _DECIMAL,
                    },
                },
            },
            "totalExclVat": _DECIMAL,
            "vatAmount": _DECIMAL,
            "totalInclVat": _DECIMAL,
            "pricedAt": _DATE_TIME,
            "paidAt": _NULLABLE_DATE_TIME,
            "amountPaid": _nullable(_DECIMAL),
            "amountRefunded": _nullable(_DECIMAL),
            "disputeStatus": {
                "type": ["string", "null"],
                "description": "open while the driver's bank disputes the charge, then its outcome",
            },
        },
    },
}

# Every member is always there (null when not known yet), and nothing else is: the route tests hold the
# documents to this.
for _schema in (SCHEMAS["Session"], SCHEMAS["Receipt"]):
    _schema["required"] = list(_schema["properties"])
    _schema["additionalProperties"] = False

_SESSION_ID = path_parameter("session_id")
_NOT_YOURS = {"404": "No such session, or not one the caller may see"}

PATHS: dict[str, dict[str, Any]] = {
    "/sessions/{session_id}": {
        "get": operation(
            "A session: energy, power, duration, cost so far, status and payment status",
            {"200": {"description": "The session", **json_content(ref("Session"))}},
            parameters=[_SESSION_ID, MIN_POSITION_PARAMETER],
            errors=_NOT_YOURS,
        )
    },
    "/sessions/{session_id}/events": {
        "get": operation(
            "The session's state as server-sent events until it is final",
            {
                "200": {
                    "description": "`event: session` messages whose data is a Session and whose id is the "
                    "log position it reflects; send it back as Last-Event-ID to resume. Comment lines "
                    "keep the stream alive; it ends once the session is final.",
                    **json_content({"type": "string"}, "text/event-stream"),
                }
            },
            parameters=[
                _SESSION_ID,
                MIN_POSITION_PARAMETER,
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "The id of the last event received: only newer states are sent.",
                    "schema": {"type": "integer", "minimum": 0},
                },
            ],
            errors=_NOT_YOURS,
        )
    },
    "/sessions/{session_id}/receipt": {
        "get": operation(
            "The receipt of a priced session",
            {"200": {"description": "The receipt", **json_content(ref("Receipt"))}},
            parameters=[_SESSION_ID, MIN_POSITION_PARAMETER],
            errors={**_NOT_YOURS, "409": "The session is not priced yet"},
        )
    },
    "/me/sessions": {
        "get": operation(
            "The caller's sessions, newest first",
            {"200": {"description": "A page of sessions", **json_content(ref("SessionPage"))}},
            parameters=[
                query_parameter(
                    "limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "Page size (default 20)."
                ),
                query_parameter("cursor", {"type": "string"}, "The nextCursor of the previous page."),
                MIN_POSITION_PARAMETER,
            ],
            errors={"403": "Only drivers have a session history"},
        )
    },
}
