"""Station discovery's state and rendering as pure code: domain events in, OCPI-shaped JSON documents out.

The projector (`projections/station_discovery.py`) loads these states from Redis, applies a batch of events
to them here, and writes back what `render` produces. Nothing here does I/O or reads a clock, so the mapping
(OCPP status to OCPI status, tariffs to price summaries, which station is visible) is tested on its own.

Every state remembers the stream version of the last event applied to it and ignores events at or below it,
so applying an event twice (or a batch again) leaves the state as once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

import orjson

from csms.domain import OpeningHours
from csms.domain.location import Address
from csms.domain.tariff import TariffElement
from projections import station_keys as keys

# OCPI 2.3.0, Locations module, "Status enum" (mod_locations_status_enum): the EVSE statuses we show.
AVAILABLE = "AVAILABLE"
CHARGING = "CHARGING"
RESERVED = "RESERVED"
INOPERATIVE = "INOPERATIVE"
OUTOFORDER = "OUTOFORDER"
UNKNOWN = "UNKNOWN"
EVSE_STATUSES = (AVAILABLE, CHARGING, RESERVED, INOPERATIVE, OUTOFORDER, UNKNOWN)

# OCPP connector status (1.6 ChargePointStatus §7.7, 2.0.1 ConnectorStatusEnumType) -> OCPI EVSE status
# (OCPI 2.3.0 mod_locations_status_enum). Every state with a vehicle at the connector is "in use" (CHARGING):
# Preparing (plugged in, not yet authorised), SuspendedEV/EVSE (a session paused), Finishing (the session is
# over but the car is still there) and 2.0.1's Occupied. A driver looking for a free charger cannot use any
# of them. The one driver who can start in Preparing (the one whose car is plugged in) is let through by
# the write side, which decides on the Charger aggregate, not on this status.
OCPP_TO_OCPI: Mapping[str, str] = {
    "Available": AVAILABLE,
    "Preparing": CHARGING,
    "Charging": CHARGING,
    "SuspendedEV": CHARGING,
    "SuspendedEVSE": CHARGING,
    "Finishing": CHARGING,
    "Occupied": CHARGING,
    "Reserved": RESERVED,
    "Unavailable": INOPERATIVE,  # "temporarily not available for use, but not broken"
    "Faulted": OUTOFORDER,  # "some part/components may be broken"
}

# An EVSE charges one vehicle at a time through any one of its connectors: it is in use if any connector
# is, else free if any connector is, else the least bad of the rest.
_EVSE_PRECEDENCE = (CHARGING, RESERVED, AVAILABLE, INOPERATIVE, OUTOFORDER, UNKNOWN)

# Redis GEO cannot index the polar caps (EPSG:900913 limits): such a station keeps its documents but cannot be
# found by distance.
GEO_MAX_LATITUDE = 85.05112878

_EVSE_NAMESPACE = UUID("3c1f9a52-2b7e-4d8a-9c61-0f5e8d2b7a14")


def evse_uid(charger_id: str, evse_id: int) -> str:
    """The EVSE's OCPI `uid`, which its QR code carries: a name-based UUID of the charger and EVSE ids.

    Stable for as long as the EVSE exists (recomputed, never stored), 36 characters (OCPI CiString(36)),
    unique platform-wide, and it reveals nothing about the charger's OCPP identity.
    """
    return str(uuid5(_EVSE_NAMESPACE, f"{charger_id}:{evse_id}"))


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class ConnectorSpec:
    connector_id: int
    standard: str
    format: str
    power_type: str
    max_power_w: int


@dataclass(slots=True)
class EvseSpec:
    evse_id: int
    connectors: list[ConnectorSpec]


@dataclass(slots=True)
class ChargerState:
    """What discovery needs of a Charger: its layout, connectivity and last reported statuses."""

    charger_id: str
    charge_point_id: str
    version: int
    evses: list[EvseSpec]
    layout_updated: str  # ISO time the layout was registered or last configured
    updated: str  # ISO time of the last event that changed anything here
    connected: bool = False
    operative: bool = True
    decommissioned: bool = False
    statuses: dict[str, str] = field(default_factory=dict)  # "evse:connector" -> OCPP status


@dataclass(slots=True)
class StationState:
    """A station as discovery knows it, its chargers included (a charger never moves to another station)."""

    station_id: str
    version: int = 0
    created: bool = False  # False for a placeholder a charger created before its station was seen
    company_id: str | None = None
    name: str = ""
    address: dict[str, str | None] = field(default_factory=dict)
    latitude: str = "0"
    longitude: str = "0"
    time_zone: str = "UTC"
    opening_times: dict[str, Any] = field(default_factory=lambda: {"twentyfourseven": True})
    published: bool = False
    removed: bool = False
    tariff_id: str | None = None
    updated: str = ""
    chargers: dict[str, ChargerState] = field(default_factory=dict)
    # What was last written for readers, so that what is no longer there can be deleted.
    rendered_uids: list[str] = field(default_factory=list)
    rendered_facets: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TariffState:
    """A tariff reduced to what a price summary shows: per dimension the lowest and highest price."""

    tariff_id: str
    version: int
    name: str
    currency: str
    vat_percent: str
    parking_grace_period_s: int
    prices: dict[str, tuple[str, str]]  # TariffDimension -> (min, max), excluding VAT
    conditional: bool  # some element has restrictions: the price depends on time, energy or duration
    updated: str


@dataclass(slots=True)
class CompanyState:
    company_id: str
    version: int
    name: str
    suspended: bool = False


def dump_station(state: StationState) -> bytes:
    return orjson.dumps(_as_plain(state))


def load_station(raw: bytes | str) -> StationState:
    data = orjson.loads(raw)
    chargers = {cid: _load_charger(c) for cid, c in data.pop("chargers").items()}
    return StationState(**data, chargers=chargers)


def _load_charger(data: dict[str, Any]) -> ChargerState:
    evses = [EvseSpec(e["evse_id"], [ConnectorSpec(**c) for c in e["connectors"]]) for e in data.pop("evses")]
    return ChargerState(**data, evses=evses)


def dump_tariff(state: TariffState) -> bytes:
    return orjson.dumps(_as_plain(state))


def load_tariff(raw: bytes | str) -> TariffState:
    data = orjson.loads(raw)
    data["prices"] = {dimension: (low, high) for dimension, (low, high) in data["prices"].items()}
    return TariffState(**data)


def dump_company(state: CompanyState) -> bytes:
    return orjson.dumps(_as_plain(state))


def load_company(raw: bytes | str) -> CompanyState:
    return CompanyState(**orjson.loads(raw))


def _as_plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {name: _as_plain(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, dict):
        return {k: _as_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- applying events


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _later(current: str, moment: datetime) -> str:
    # Stored times are all ISO strings of aware datetimes; compare as datetimes, not as text.
    candidate = _iso(moment)
    if not current or datetime.fromisoformat(current) < moment:
        return candidate
    return current


def apply_station_event(state: StationState, topic: str, event: Any, version: int) -> bool:
    """Apply a `Station.*` event (by its topic); False when it was applied before (nothing changes)."""
    if version <= state.version:
        return False
    state.version = version
    state.updated = _later(state.updated, event.timestamp)
    if topic == "Station.Created":
        state.created = True
        state.company_id = str(event.company_id)
        state.name = event.name
        state.address = _address(event.address)
        state.latitude, state.longitude = _coordinates(event.coordinates)
        state.time_zone = event.time_zone
        state.opening_times = opening_times(event.opening_hours)
    elif topic == "Station.Updated":
        if event.name is not None:
            state.name = event.name
        if event.address is not None:
            state.address = _address(event.address)
        if event.coordinates is not None:
            state.latitude, state.longitude = _coordinates(event.coordinates)
        if event.time_zone is not None:
            state.time_zone = event.time_zone
        if event.opening_hours is not None:
            state.opening_times = opening_times(event.opening_hours)
    elif topic == "Station.Published":
        state.published = True
    elif topic == "Station.Unpublished":
        state.published = False
    elif topic == "Station.TariffAssigned":
        state.tariff_id = str(event.tariff_id)
    elif topic == "Station.TariffUnassigned":
        state.tariff_id = None
    elif topic == "Station.Removed":
        state.removed = True
        state.published = False
    return True


def new_charger(event: Any, version: int) -> ChargerState:
    """The state a `Charger.Registered` event starts."""
    moment = _iso(event.timestamp)
    return ChargerState(
        charger_id=str(event.originator_id),
        charge_point_id=event.charge_point_id,
        version=version,
        evses=_evses(event.evses),
        layout_updated=moment,
        updated=moment,
    )


def apply_charger_event(state: ChargerState, topic: str, event: Any, version: int) -> bool:
    """Apply a `Charger.*` event other than Registered; False when applied before or irrelevant here."""
    if version <= state.version:
        return False
    state.version = version
    if topic == "Charger.EvsesConfigured":
        state.evses = _evses(event.evses)
        state.layout_updated = _iso(event.timestamp)
        # Statuses of EVSEs that no longer exist would only mislead if an EVSE with that id came back.
        kept = {str(evse.evse_id) for evse in state.evses} | {"0"}
        state.statuses = {k: v for k, v in state.statuses.items() if k.split(":")[0] in kept}
    elif topic == "Charger.ConnectorStatusChanged":
        state.statuses[f"{event.evse_id}:{event.connector_id}"] = str(event.status.value)
    elif topic == "Charger.Connected":
        state.connected = True
    elif topic == "Charger.Disconnected":
        state.connected = False
    elif topic == "Charger.AvailabilityChanged":
        state.operative = event.availability.value == "Operative"
    elif topic == "Charger.Decommissioned":
        state.decommissioned = True
    else:
        return True
    state.updated = _later(state.updated, event.timestamp)
    return True


def new_tariff(event: Any, version: int) -> TariffState:
    prices, conditional = _price_ranges(event.elements)
    return TariffState(
        tariff_id=str(event.originator_id),
        version=version,
        name=event.name,
        currency=str(event.currency.value),
        vat_percent=_decimal_text(event.vat_percent),
        parking_grace_period_s=event.parking_grace_period_s,
        prices=prices,
        conditional=conditional,
        updated=_iso(event.timestamp),
    )


def apply_tariff_event(state: TariffState, topic: str, event: Any, version: int) -> bool:
    """Apply a `Tariff.*` event other than Created; True when the price summary may have changed."""
    if version <= state.version:
        return False
    state.version = version
    if topic == "Tariff.Renamed":
        state.name = event.name
    elif topic == "Tariff.ElementsReplaced":
        state.prices, state.conditional = _price_ranges(event.elements)
    elif topic == "Tariff.VatChanged":
        state.vat_percent = _decimal_text(event.vat_percent)
    elif topic == "Tariff.ParkingGracePeriodChanged":
        state.parking_grace_period_s = event.parking_grace_period_s
    else:
        return False  # Archived: running and future sessions at its stations are still priced by it
    state.updated = _later(state.updated, event.timestamp)
    return True


def new_company(event: Any, version: int) -> CompanyState:
    return CompanyState(company_id=str(event.originator_id), version=version, name=event.name)


def apply_company_event(state: CompanyState, topic: str, event: Any, version: int) -> bool:
    if version <= state.version:
        return False
    state.version = version
    if topic == "Company.Renamed":
        state.name = event.name
    elif topic == "Company.Suspended":
        state.suspended = True
    elif topic == "Company.Reactivated":
        state.suspended = False
    return True


def _address(address: Address) -> dict[str, str | None]:
    return {
        "street": address.street,
        "city": address.city,
        "postalCode": address.postal_code,
        "state": address.state,
        "country": address.country,
    }


def _coordinates(coordinates: Any) -> tuple[str, str]:
    return ocpi_degrees(coordinates.latitude), ocpi_degrees(coordinates.longitude)


def ocpi_degrees(value: Decimal) -> str:
    """Decimal degrees as OCPI GeoLocation writes them: 5 to 7 decimals (`-?[0-9]{1,3}\\.[0-9]{5,7}`)."""
    exponent = value.as_tuple().exponent
    decimals = -exponent if isinstance(exponent, int) else 7
    places = min(max(decimals, 5), 7)
    return format(value.quantize(Decimal(1).scaleb(-places)), "f")


def opening_times(hours: OpeningHours) -> dict[str, Any]:
    """OCPI Hours in camelCase: `twentyfourseven`, or `regularHours` with "HH:MM" periods."""
    if hours.twentyfourseven:
        return {"twentyfourseven": True}
    return {
        "twentyfourseven": False,
        "regularHours": [
            {
                "weekday": period.weekday,
                "periodBegin": period.period_begin.strftime("%H:%M"),
                "periodEnd": period.period_end.strftime("%H:%M"),
            }
            for period in hours.regular_hours
        ],
    }


def _evses(evses: Iterable[Any]) -> list[EvseSpec]:
    return [
        EvseSpec(
            evse.evse_id,
            [
                ConnectorSpec(
                    connector_id=c.connector_id,
                    standard=str(c.standard.value),
                    format=str(c.format.value),
                    power_type=str(c.power_type.value),
                    max_power_w=c.max_power_w,
                )
                for c in evse.connectors
            ],
        )
        for evse in evses
    ]


def _price_ranges(elements: Iterable[TariffElement]) -> tuple[dict[str, tuple[str, str]], bool]:
    found: dict[str, list[Decimal]] = {}
    conditional = False
    for element in elements:
        conditional = conditional or element.restrictions is not None
        for component in element.price_components:
            found.setdefault(str(component.type.value), []).append(component.price)
    prices = {
        dimension: (_decimal_text(min(values)), _decimal_text(max(values)))
        for dimension, values in found.items()
    }
    return prices, conditional


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")


# --------------------------------------------------------------------------- status


def evse_status(charger: ChargerState, evse: EvseSpec) -> str:
    """The OCPI status of one EVSE (OCPI 2.3.0 mod_locations_status_enum) from what its charger reported.

    Offline comes first: OCPI's UNKNOWN is "no status information available (also used when offline)", and
    a charger that is not connected cannot start anything whatever it said last. Then the operator's
    ChangeAvailability (Inoperative), then a status for the whole charger (OCPP 1.6 connectorId 0) or the
    whole EVSE (connector 0) when it says Unavailable or Faulted, then the EVSE's connectors.
    """
    if not charger.connected:
        return UNKNOWN
    if not charger.operative:
        return INOPERATIVE
    for scope in ("0:0", f"{evse.evse_id}:0"):
        overall = OCPP_TO_OCPI.get(charger.statuses.get(scope, ""))
        if overall in (INOPERATIVE, OUTOFORDER):
            return overall
    statuses = {
        OCPP_TO_OCPI.get(charger.statuses.get(f"{evse.evse_id}:{c.connector_id}", ""), UNKNOWN)
        for c in evse.connectors
    }
    return next(status for status in _EVSE_PRECEDENCE if status in statuses)


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True, slots=True)
class Rendered:
    """What readers get for one station; `doc` None means the station is not visible (all keys go)."""

    doc: bytes | None = None
    card: bytes | None = None
    geo: tuple[float, float] | None = None  # (longitude, latitude) when it belongs in the GEO sets
    evses: Mapping[str, bytes] = field(default_factory=dict)
    facets: Mapping[str, int] = field(default_factory=dict)  # facet -> highest power (W) of its connectors


def is_visible(station: StationState, company: CompanyState | None) -> bool:
    """Published, not removed, and its company not suspended.

    A suspended company may not operate (the write side refuses to start sessions at its chargers), so its
    stations leave discovery while it is suspended and come back, unchanged, when it is reactivated.
    """
    suspended = company is not None and company.suspended
    return station.created and station.published and not station.removed and not suspended


def price_summary(tariff: TariffState | None) -> dict[str, Any] | None:
    """The tariff in a line: currency, VAT, and per dimension the lowest and highest price, with and
    without VAT. A range, not one figure: which element applies depends on the time of day and the
    session (OCPI restrictions), and `conditional` says so. Units are OCPI's: energy per kWh, time and
    parking per hour, flat per session. Amounts are decimal strings (exact)."""
    if tariff is None:
        return None
    vat = Decimal(tariff.vat_percent)
    summary: dict[str, Any] = {
        "tariffId": tariff.tariff_id,
        "name": tariff.name,
        "currency": tariff.currency,
        "vatPercent": tariff.vat_percent,
        "conditional": tariff.conditional,
    }
    for dimension, name in _PRICE_FIELDS:
        if dimension in tariff.prices:
            low, high = tariff.prices[dimension]
            summary[name] = {
                "min": low,
                "max": high,
                "minInclVat": _with_vat(low, vat),
                "maxInclVat": _with_vat(high, vat),
            }
    if "PARKING_TIME" in tariff.prices:
        summary["parkingGracePeriodSeconds"] = tariff.parking_grace_period_s
    return summary


_PRICE_FIELDS = (
    ("ENERGY", "energyPerKwh"),
    ("TIME", "timePerHour"),
    ("PARKING_TIME", "parkingPerHour"),
    ("FLAT", "flatPerSession"),
)


def _with_vat(amount: str, vat_percent: Decimal) -> str:
    # Exact (a product of two finite decimals); rounding to the currency is for the payment, not a list price.
    return _decimal_text((Decimal(amount) * (100 + vat_percent) / 100).normalize())


def render(station: StationState, tariff: TariffState | None, company: CompanyState | None) -> Rendered:
    if not is_visible(station, company):
        return Rendered()
    price = price_summary(tariff)
    updated = max([station.updated, *(c.updated for c in station.chargers.values())], key=_moment)
    if tariff is not None:
        updated = max(updated, tariff.updated, key=_moment)
    summary: dict[str, Any] = {
        "id": station.station_id,
        "name": station.name,
        "address": station.address["street"],
        "city": station.address["city"],
        **({"postalCode": station.address["postalCode"]} if station.address.get("postalCode") else {}),
        **({"state": station.address["state"]} if station.address.get("state") else {}),
        "country": station.address["country"],
        "coordinates": {"latitude": station.latitude, "longitude": station.longitude},
        "timeZone": station.time_zone,
        "openingTimes": station.opening_times,
        **({"operator": {"name": company.name}} if company is not None else {}),
        "price": price,
    }
    tariff_ids = [tariff.tariff_id] if tariff is not None else []
    evses: list[dict[str, Any]] = []
    facets: dict[str, int] = {}
    standards: set[str] = set()
    power_types: set[str] = set()
    max_power = 0
    for charger in sorted(station.chargers.values(), key=lambda c: c.charge_point_id):
        if charger.decommissioned:
            continue  # gone for good: its EVSEs are no longer shown, nor found by their QR codes
        for evse in sorted(charger.evses, key=lambda e: e.evse_id):
            status = evse_status(charger, evse)
            evses.append(_evse_document(charger, evse, status, tariff_ids))
            families = (keys.ALL, keys.AVAILABLE) if status == AVAILABLE else (keys.ALL,)
            for connector in evse.connectors:
                standards.add(connector.standard)
                power_types.add(connector.power_type)
                max_power = max(max_power, connector.max_power_w)
                for family in families:
                    for facet_name in (
                        keys.facet(family),
                        keys.facet(family, standard=connector.standard),
                        keys.facet(family, power_type=connector.power_type),
                        keys.facet(family, connector.standard, connector.power_type),
                    ):
                        facets[facet_name] = max(facets.get(facet_name, 0), connector.max_power_w)
    available = sum(1 for evse in evses if evse["status"] == AVAILABLE)
    document = {**summary, "publish": True, "evses": evses, "lastUpdated": updated}
    card = {
        **summary,
        "evseCount": len(evses),
        "availableEvseCount": available,
        "maxElectricPower": max_power,
        "connectorStandards": sorted(standards),
        "powerTypes": sorted(power_types),
        "lastUpdated": updated,
    }
    latitude, longitude = float(station.latitude), float(station.longitude)
    geo = (longitude, latitude) if evses and abs(latitude) <= GEO_MAX_LATITUDE else None
    evse_docs = {evse["uid"]: orjson.dumps({**evse, "station": summary}) for evse in evses}
    return Rendered(
        doc=orjson.dumps(document),
        card=orjson.dumps(card),
        geo=geo,
        evses=evse_docs,
        facets=facets if geo is not None else {},
    )


def _evse_document(
    charger: ChargerState, evse: EvseSpec, status: str, tariff_ids: list[str]
) -> dict[str, Any]:
    return {
        "uid": evse_uid(charger.charger_id, evse.evse_id),
        "status": status,
        # The body of POST /sessions/start for this EVSE: the charger's OCPP identity and the EVSE's number on
        # it (OCPP 1.6 numbers EVSEs as connectors).
        "chargerId": charger.charge_point_id,
        "connectorId": evse.evse_id,
        "connectors": [
            {
                "id": str(connector.connector_id),
                "standard": connector.standard,
                "format": connector.format,
                "powerType": connector.power_type,
                "maxElectricPower": connector.max_power_w,
                "tariffIds": tariff_ids,
                "lastUpdated": charger.layout_updated,
            }
            for connector in sorted(evse.connectors, key=lambda c: c.connector_id)
        ],
        "lastUpdated": charger.updated,
    }


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text) if text else datetime.min.replace(tzinfo=UTC)
