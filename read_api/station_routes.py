"""Station discovery for the mobile app: nearby stations, a station, and the EVSE a QR code names.

Public (no login): what a charger costs and whether it is free is shown before anyone signs up. So every
route is rate limited per client address, in process: a token bucket costs no round trip, and behind N
read API processes a client gets at most N times the rate, which is still the bound that matters (keeping
one client from taking the service down). Set `STATION_RATE_LIMIT` on the app to change the rate or to trust
a load balancer's X-Forwarded-For.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from csms.domain import ConnectorStandard, PowerType
from csms.web.client_address import IPNetwork, client_address
from csms.web.problems import FieldError, problem, problem_error, problem_type
from projections import station_keys as keys
from projections.station_model import EVSE_STATUSES, GEO_MAX_LATITUDE
from read_api.context import FRESHNESS, KEY_PREFIX, REDIS
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
from read_api.station_queries import NearbyQuery, StationQueries

MAX_RADIUS_KM = 50.0
DEFAULT_RADIUS_KM = 5.0
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_MIN_POWER_KW = 10_000.0
MAX_CONNECTOR_FILTERS = 5

_UUID_PATTERN = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_STANDARDS = {standard.value.upper(): standard.value for standard in ConnectorStandard}
_POWER_TYPES = {power_type.value: power_type.value for power_type in PowerType}
_TRUE_FALSE = {"true": True, "false": False}


class RateLimiter:
    """A token bucket per client address: `rate` requests a second on average, bursts up to `burst`."""

    def __init__(
        self,
        rate: float = 10.0,
        burst: float = 40.0,
        *,
        trusted_proxies: Sequence[IPNetwork] = (),
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.trusted_proxies = tuple(trusted_proxies)
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when counted)

    def take(self, address: str) -> float:
        """Spend a token of `address`: 0.0 when it had one, else the seconds until it will."""
        now = self._clock()
        tokens, counted = self._buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - counted) * self.rate)
        if tokens >= 1.0:
            if address not in self._buckets and len(self._buckets) >= self._max_clients:
                self._forget_idle(now)
            self._buckets[address] = (tokens - 1.0, now)
            return 0.0
        self._buckets[address] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        # A full bucket is the same as no bucket; if every client is busy, forgetting them all merely
        # grants each one burst more: memory stays bounded either way.
        self._buckets = {
            address: (tokens, counted)
            for address, (tokens, counted) in self._buckets.items()
            if tokens + (now - counted) * self.rate < self.burst
        }
        if len(self._buckets) >= self._max_clients:
            self._buckets.clear()


STATION_QUERIES = web.AppKey("station_queries", StationQueries)
STATION_RATE_LIMIT = web.AppKey("station_rate_limit", RateLimiter)


def _limit_rate(request: web.Request) -> None:
    limiter = request.app[STATION_RATE_LIMIT]
    wait = limiter.take(client_address(request, limiter.trusted_proxies))
    if wait > 0:
        raise problem_error(
            429,
            "Too many requests",
            "This client sends requests faster than station discovery serves them; retry later.",
            type_=problem_type("rate-limited"),
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


# --------------------------------------------------------------------------- handlers


async def _read_your_writes(request: web.Request) -> None:
    """Wait (briefly) for the `minPosition` the client names, if any.

    The position an answer reports is read together with its data (see station_queries), so without a
    `minPosition` there is nothing to wait for and no extra round trip to make.
    """
    if "minPosition" in request.query:
        await request.app[FRESHNESS].wait(request, keys.NAME)


async def nearby_stations(request: web.Request) -> web.StreamResponse:
    _limit_rate(request)
    query = parse_nearby(request.query)
    await _read_your_writes(request)
    position, stations = await request.app[STATION_QUERIES].nearby(query)
    return web.Response(
        body=b'{"stations":' + stations + b"}",
        content_type="application/json",
        headers={POSITION_HEADER: str(position), "Cache-Control": "no-cache"},
    )


async def get_station(request: web.Request) -> web.StreamResponse:
    _limit_rate(request)
    station_id = request.match_info["id"].lower()
    await _read_your_writes(request)
    position, document = await request.app[STATION_QUERIES].station(station_id)
    if document is None:
        return _not_found("Unknown station", f"No published station {station_id}.", "id", position)
    return _cacheable(request, document, position)


async def get_evse(request: web.Request) -> web.StreamResponse:
    _limit_rate(request)
    uid = request.match_info["evseUid"].lower()
    await _read_your_writes(request)
    position, document = await request.app[STATION_QUERIES].evse(uid)
    if document is None:
        return _not_found("Unknown EVSE", f"No EVSE {uid} at a published station.", "evseUid", position)
    return _cacheable(request, document, position)


def _not_found(title: str, detail: str, field: str, position: int) -> web.Response:
    return problem(
        404,
        title,
        detail,
        type_=problem_type("not-found"),
        field=field,
        headers={POSITION_HEADER: str(position)},
    )


def _cacheable(request: web.Request, document: bytes, position: int) -> web.Response:
    """200 with the document and its ETag, or 304 when the client already holds this version.

    The ETag is a digest of the document, which carries the live status: it changes exactly when the answer
    does (not with every log position), so an app polling a station it shows mostly gets 304s.
    """
    etag = '"' + hashlib.blake2b(document, digest_size=12).hexdigest() + '"'
    headers = {POSITION_HEADER: str(position), "ETag": etag, "Cache-Control": "no-cache"}
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=document, content_type="application/json", headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    # RFC 9110 §13.1.2: weak comparison, a list of tags or "*".
    if if_none_match is None:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


# --------------------------------------------------------------------------- parsing


def parse_nearby(query: Any) -> NearbyQuery:
    """The nearby query from the request's query string; a 400 problem naming every field at fault."""
    errors: list[FieldError] = []

    def one(name: str) -> str | None:
        values = query.getall(name, [])
        if len(values) > 1:
            errors.append(FieldError(name, "must be given at most once"))
            return None
        return values[0] if values else None

    def number(
        name: str, low: float, high: float, *, default: float | None = None, low_open: bool = False
    ) -> float:
        raw = one(name)
        if raw is None:
            if default is None and name not in {e.field for e in errors}:
                errors.append(FieldError(name, "is required"))
            return default if default is not None else 0.0
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        too_low = value <= low if low_open else value < low
        if not math.isfinite(value) or too_low or value > high:
            bound = f"above {low:g}" if low_open else f"at least {low:g}"
            errors.append(FieldError(name, f"must be a number {bound} and at most {high:g}"))
        return value

    latitude = number("lat", -GEO_MAX_LATITUDE, GEO_MAX_LATITUDE)
    longitude = number("lon", -180.0, 180.0)
    radius_km = number("radiusKm", 0.0, MAX_RADIUS_KM, default=DEFAULT_RADIUS_KM, low_open=True)
    min_power_kw = number("minPowerKw", 0.0, MAX_MIN_POWER_KW, default=0.0)

    standards: list[str] = []
    for raw in query.getall("connector", []):
        standard = _STANDARDS.get(raw.upper())
        if standard is None:
            errors.append(FieldError("connector", f"{raw!r} is not an OCPI ConnectorType"))
        elif standard not in standards:
            standards.append(standard)
    if len(standards) > MAX_CONNECTOR_FILTERS:
        errors.append(FieldError("connector", f"at most {MAX_CONNECTOR_FILTERS} standards"))

    power_type = one("powerType")
    if power_type is not None and power_type.upper() not in _POWER_TYPES:
        errors.append(FieldError("powerType", f"{power_type!r} is not an OCPI PowerType"))

    available = one("available")
    if available is not None and available.lower() not in _TRUE_FALSE:
        errors.append(FieldError("available", "must be true or false"))

    limit = DEFAULT_LIMIT
    raw_limit = one("limit")
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
        else:
            limit = int(raw_limit)

    if errors:
        raise problem_error(
            400,
            "Invalid query parameter",
            "; ".join(f"{error.field} {error.detail}" for error in errors),
            type_=problem_type("invalid-query"),
            errors=errors,
        )
    return NearbyQuery(
        latitude=latitude,
        longitude=longitude,
        radius_m=radius_km * 1000.0,
        standards=tuple(standards),
        power_type=None if power_type is None else power_type.upper(),
        min_power_w=min_power_kw * 1000.0,
        available_only=_TRUE_FALSE.get((available or "false").lower(), False),
        limit=limit,
    )


# --------------------------------------------------------------------------- wiring


def add_routes(app: web.Application) -> None:
    if STATION_RATE_LIMIT not in app:
        app[STATION_RATE_LIMIT] = RateLimiter()
    app.on_startup.append(_open_queries)
    # `nearby` before `{id}`, and ids as UUIDs only, so neither route can shadow the other.
    app.router.add_get("/stations/nearby", nearby_stations)
    app.router.add_get(f"/stations/{{id:{_UUID_PATTERN}}}", get_station)
    app.router.add_get(f"/evses/{{evseUid:{_UUID_PATTERN}}}", get_evse)


async def _open_queries(app: web.Application) -> None:
    if STATION_QUERIES not in app:
        app[STATION_QUERIES] = StationQueries(app[REDIS], app[KEY_PREFIX])


# --------------------------------------------------------------------------- OpenAPI

_DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
_TIME = {"type": "string", "format": "date-time"}
_POSITION_HEADERS: dict[str, Any] = {
    POSITION_HEADER: {
        "description": "The log position this answer reflects.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_ETAG_HEADERS: dict[str, Any] = {
    **_POSITION_HEADERS,
    "ETag": {
        "description": "Send it back in If-None-Match to get 304 while nothing changed.",
        "schema": {"type": "string"},
    },
}


def _object(required: Sequence[str], properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "required": list(required), "properties": properties}
    if description:
        schema["description"] = description
    return schema


_SUMMARY_PROPERTIES: dict[str, Any] = {
    "id": UUID_SCHEMA,
    "name": {"type": "string"},
    "address": {"type": "string", "description": "Street and number."},
    "city": {"type": "string"},
    "postalCode": {"type": "string"},
    "state": {"type": "string"},
    "country": {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 3166-1 alpha-3."},
    "coordinates": ref("GeoLocation"),
    "timeZone": {"type": "string", "description": "IANA time zone, e.g. Europe/Amsterdam."},
    "openingTimes": ref("Hours"),
    "operator": _object(["name"], {"name": {"type": "string"}}),
    "price": {"oneOf": [ref("PriceSummary"), {"type": "null"}]},
}
_SUMMARY_REQUIRED = [
    "id",
    "name",
    "address",
    "city",
    "country",
    "coordinates",
    "timeZone",
    "openingTimes",
    "price",
]

_EVSE_REQUIRED = ["uid", "status", "chargerId", "connectorId", "connectors", "lastUpdated"]
_EVSE_PROPERTIES: dict[str, Any] = {
    "uid": {**UUID_SCHEMA, "description": "The EVSE's stable id: what its QR code carries."},
    "status": {
        "type": "string",
        "enum": list(EVSE_STATUSES),
        "description": "OCPI EVSE status. UNKNOWN when the charger is offline. CHARGING covers every state "
        "with a vehicle at the EVSE, including one plugged in and waiting to be authorised, in which the "
        "driver of that vehicle can still start with POST /sessions/start.",
    },
    "chargerId": {"type": "string", "description": "`chargerId` for POST /sessions/start."},
    "connectorId": {
        "type": "integer",
        "minimum": 1,
        "description": "`connectorId` for POST /sessions/start: the EVSE's number on its charger.",
    },
    "connectors": {"type": "array", "minItems": 1, "items": ref("Connector")},
    "lastUpdated": _TIME,
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "GeoLocation": _object(
        ["latitude", "longitude"],
        {
            "latitude": {"type": "string", "pattern": r"^-?[0-9]{1,2}\.[0-9]{5,7}$"},
            "longitude": {"type": "string", "pattern": r"^-?[0-9]{1,3}\.[0-9]{5,7}$"},
        },
        "OCPI GeoLocation: WGS 84 decimal degrees as strings.",
    ),
    "Hours": _object(
        ["twentyfourseven"],
        {
            "twentyfourseven": {"type": "boolean"},
            "regularHours": {
                "type": "array",
                "items": _object(
                    ["weekday", "periodBegin", "periodEnd"],
                    {
                        "weekday": {"type": "integer", "minimum": 1, "maximum": 7},
                        "periodBegin": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                        "periodEnd": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$"},
                    },
                ),
            },
        },
        "OCPI Hours, in the station's local time (periodEnd 00:00 means midnight at the end of the day).",
    ),
    "PriceRange": _object(
        ["min", "max", "minInclVat", "maxInclVat"],
        {"min": _DECIMAL, "max": _DECIMAL, "minInclVat": _DECIMAL, "maxInclVat": _DECIMAL},
        "The lowest and highest price of one dimension over the tariff's elements (which one applies depends "
        "on the time and the session), excluding and including VAT.",
    ),
    "PriceSummary": _object(
        ["tariffId", "name", "currency", "vatPercent", "conditional"],
        {
            "tariffId": UUID_SCHEMA,
            "name": {"type": "string"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "vatPercent": _DECIMAL,
            "conditional": {
                "type": "boolean",
                "description": "Prices depend on time of day, energy or duration.",
            },
            "energyPerKwh": ref("PriceRange"),
            "timePerHour": ref("PriceRange"),
            "parkingPerHour": ref("PriceRange"),
            "flatPerSession": ref("PriceRange"),
            "parkingGracePeriodSeconds": {"type": "integer", "minimum": 0},
        },
        "The station's tariff in brief; amounts are exact decimal strings in `currency`.",
    ),
    "Connector": _object(
        ["id", "standard", "format", "powerType", "maxElectricPower", "tariffIds", "lastUpdated"],
        {
            "id": {"type": "string"},
            "standard": {"type": "string", "enum": [s.value for s in ConnectorStandard]},
            "format": {"type": "string", "enum": ["SOCKET", "CABLE"]},
            "powerType": {"type": "string", "enum": list(_POWER_TYPES)},
            "maxElectricPower": {"type": "integer", "minimum": 1, "description": "Watts."},
            "tariffIds": {"type": "array", "items": UUID_SCHEMA},
            "lastUpdated": _TIME,
        },
        "OCPI Connector.",
    ),
    "Evse": _object(_EVSE_REQUIRED, _EVSE_PROPERTIES, "OCPI EVSE, with what starting a session on it takes."),
    "StationSummary": _object(_SUMMARY_REQUIRED, _SUMMARY_PROPERTIES),
    "Location": _object(
        [*_SUMMARY_REQUIRED, "publish", "evses", "lastUpdated"],
        {
            **_SUMMARY_PROPERTIES,
            "publish": {"type": "boolean", "const": True},
            "evses": {"type": "array", "items": ref("Evse")},
            "lastUpdated": _TIME,
        },
        "OCPI Location (camelCase) with our price summary.",
    ),
    "NearbyStation": _object(
        [
            *_SUMMARY_REQUIRED,
            "distanceM",
            "evseCount",
            "availableEvseCount",
            "maxElectricPower",
            "connectorStandards",
            "powerTypes",
            "lastUpdated",
        ],
        {
            **_SUMMARY_PROPERTIES,
            "distanceM": {"type": "integer", "minimum": 0, "description": "Metres from the searched point."},
            "evseCount": {"type": "integer", "minimum": 1},
            "availableEvseCount": {"type": "integer", "minimum": 0},
            "maxElectricPower": {"type": "integer", "minimum": 1, "description": "Watts, of any connector."},
            "connectorStandards": {"type": "array", "items": {"type": "string"}},
            "powerTypes": {"type": "array", "items": {"type": "string"}},
            "lastUpdated": _TIME,
        },
    ),
    "NearbyStations": _object(["stations"], {"stations": {"type": "array", "items": ref("NearbyStation")}}),
    "EvseDetail": _object(
        [*_EVSE_REQUIRED, "station"],
        {**_EVSE_PROPERTIES, "station": ref("StationSummary")},
        "An EVSE (what its QR code leads to) with its station in brief.",
    ),
}

_NEARBY_PARAMETERS: list[dict[str, Any]] = [
    {
        **query_parameter(
            "lat",
            {"type": "number", "minimum": -GEO_MAX_LATITUDE, "maximum": GEO_MAX_LATITUDE},
            "Latitude of the searched point (WGS 84).",
        ),
        "required": True,
    },
    {
        **query_parameter(
            "lon",
            {"type": "number", "minimum": -180, "maximum": 180},
            "Longitude of the searched point (WGS 84).",
        ),
        "required": True,
    },
    query_parameter(
        "radiusKm",
        {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RADIUS_KM, "default": DEFAULT_RADIUS_KM},
        "Search radius in kilometres.",
    ),
    query_parameter(
        "connector",
        {
            "type": "array",
            "maxItems": MAX_CONNECTOR_FILTERS,
            "items": {"type": "string", "enum": [s.value for s in ConnectorStandard]},
        },
        "Connector standards the car takes (OCPI ConnectorType; repeat the parameter for several): a "
        "station fits with a connector of any of them.",
    ),
    query_parameter("powerType", {"type": "string", "enum": list(_POWER_TYPES)}, "OCPI PowerType."),
    query_parameter(
        "minPowerKw",
        {"type": "number", "minimum": 0, "maximum": MAX_MIN_POWER_KW},
        "Lowest maximum power of a fitting connector, in kW.",
    ),
    query_parameter(
        "available",
        {"type": "boolean", "default": False},
        "true: only stations with a fitting connector on an EVSE that is AVAILABLE now.",
    ),
    query_parameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "At most this many stations.",
    ),
    MIN_POSITION_PARAMETER,
]

_RATE_LIMITED = {"429": "Too many requests from this client address (see Retry-After)"}

PATHS: dict[str, dict[str, Any]] = {
    "/stations/nearby": {
        "get": operation(
            "Stations near a point, nearest first, that fit the filters (all of them on one connector)",
            {
                "200": {
                    "description": "The stations, nearest first",
                    "headers": _POSITION_HEADERS,
                    **json_content(ref("NearbyStations")),
                }
            },
            parameters=_NEARBY_PARAMETERS,
            secured=False,
            errors=_RATE_LIMITED,
        )
    },
    "/stations/{id}": {
        "get": operation(
            "A published station as an OCPI Location, with live EVSE status and its price summary",
            {
                "200": {
                    "description": "The station",
                    "headers": _ETAG_HEADERS,
                    **json_content(ref("Location")),
                },
                "304": {"description": "Unchanged since the ETag in If-None-Match", "headers": _ETAG_HEADERS},
            },
            parameters=[path_parameter("id"), MIN_POSITION_PARAMETER],
            secured=False,
            errors={"404": "No published station with this id", **_RATE_LIMITED},
        )
    },
    "/evses/{evseUid}": {
        "get": operation(
            "The EVSE a QR code names: live status, what starting a session there takes, its station",
            {
                "200": {
                    "description": "The EVSE",
                    "headers": _ETAG_HEADERS,
                    **json_content(ref("EvseDetail")),
                },
                "304": {"description": "Unchanged since the ETag in If-None-Match", "headers": _ETAG_HEADERS},
            },
            parameters=[path_parameter("evseUid"), MIN_POSITION_PARAMETER],
            secured=False,
            errors={"404": "No EVSE with this uid at a published station", **_RATE_LIMITED},
        )
    },
}
