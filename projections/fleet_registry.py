"""The operators' registry of their fleet: companies, stations and chargers as rows for the manage views.

One row per aggregate, holding what an operator's list and detail screens show: a station's address, time
zone, publication and tariff; a charger's layout, boot details, availability, the last connect and
disconnect the domain recorded and its connectors' last statuses. Live connectivity (last heartbeat, which
gateway holds the socket) is not here: heartbeats are not events, and the read API takes them from the
gateway's presence hashes in Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from csms.domain import BootInfo, Evse
from csms.eventstore.recorder import Connection
from projections.fleet_rows import Row, RowTable, fold_into
from projections.projector import ProjectedEvent, Tables

NAME = "fleet_registry"

_COMPANY_TOPICS = frozenset(
    {"Company.Created", "Company.Renamed", "Company.Suspended", "Company.Reactivated"}
)
_STATION_TOPICS = frozenset(
    {
        "Station.Created",
        "Station.Updated",
        "Station.Published",
        "Station.Unpublished",
        "Station.TariffAssigned",
        "Station.TariffUnassigned",
        "Station.Removed",
    }
)
_CHARGER_TOPICS = frozenset(
    {
        "Charger.Registered",
        "Charger.EvsesConfigured",
        "Charger.AvailabilityChanged",
        "Charger.Decommissioned",
        "Charger.BootRecorded",
        "Charger.Connected",
        "Charger.Disconnected",
        "Charger.ConnectorStatusChanged",
    }
)

COMPANIES = RowTable(
    key="company_id",
    columns=("company_id", "name", "suspended", "suspension_reason", "created_at", "updated_at", "version"),
)
STATIONS = RowTable(
    key="station_id",
    columns=(
        "station_id",
        "company_id",
        "name",
        "street",
        "postal_code",
        "city",
        "state",
        "country",
        "latitude",
        "longitude",
        "time_zone",
        "published",
        "tariff_id",
        "removed",
        "created_at",
        "updated_at",
        "version",
    ),
)
CHARGERS = RowTable(
    key="charger_id",
    columns=(
        "charger_id",
        "charge_point_id",
        "company_id",
        "station_id",
        "evses",
        "ocpp_version",
        "vendor",
        "model",
        "serial_number",
        "firmware_version",
        "availability",
        "connected",
        "last_connected_at",
        "last_disconnected_at",
        "decommissioned",
        "connector_statuses",
        "registered_at",
        "updated_at",
        "version",
    ),
    json_columns=frozenset({"evses", "connector_statuses"}),
)

_TABLES: Mapping[str, Sequence[str]] = {
    "fleet_stations": [
        """
        CREATE TABLE {table} (
            station_id uuid PRIMARY KEY,
            company_id uuid NOT NULL,
            name text NOT NULL,
            street text NOT NULL,
            postal_code text,
            city text NOT NULL,
            state text,
            country text NOT NULL,           -- ISO 3166-1 alpha-3
            latitude numeric NOT NULL,       -- exact, as the domain keeps it (Decimal)
            longitude numeric NOT NULL,
            time_zone text NOT NULL,         -- IANA, the zone the station's days and tariffs are read in
            published boolean NOT NULL,
            tariff_id uuid,
            removed boolean NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version bigint NOT NULL         -- the station stream's version last folded in
        )
        """,
        # Operators page through their own stations by name.
        "CREATE INDEX ON {table} (company_id, name, station_id)",
        "CREATE INDEX ON {table} (name, station_id)",
    ],
    "fleet_chargers": [
        """
        CREATE TABLE {table} (
            charger_id uuid PRIMARY KEY,     -- the Charger aggregate's id
            -- Its OCPP identity (the API's `chargerId`). Not UNIQUE: the write side keeps identities unique
            -- (the stream id derives from it), and a projector's apply must never fail on what was recorded.
            charge_point_id text NOT NULL,
            company_id uuid NOT NULL,
            station_id uuid NOT NULL,
            evses jsonb NOT NULL,            -- the layout as the API shows it (evseId, connectors)
            ocpp_version text,               -- the subprotocol of its latest connection
            vendor text,
            model text,
            serial_number text,
            firmware_version text,
            availability text NOT NULL,      -- Operative / Inoperative
            connected boolean NOT NULL,      -- as of the last Connected / Disconnected event
            last_connected_at timestamptz,
            last_disconnected_at timestamptz,
            decommissioned boolean NOT NULL,
            connector_statuses jsonb NOT NULL,  -- the last report per connector, as the API shows it
            registered_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version bigint NOT NULL
        )
        """,
        "CREATE INDEX ON {table} (charge_point_id)",
        "CREATE INDEX ON {table} (company_id, charge_point_id)",
        "CREATE INDEX ON {table} (station_id, charge_point_id)",
    ],
    "fleet_companies": [
        """
        CREATE TABLE {table} (
            company_id uuid PRIMARY KEY,
            name text NOT NULL,
            suspended boolean NOT NULL,
            suspension_reason text,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            version bigint NOT NULL
        )
        """,
        "CREATE INDEX ON {table} (name, company_id)",
    ],
}


class FleetRegistry:
    """Projector `fleet_registry`: tables `fleet_stations`, `fleet_chargers` and `fleet_companies`."""

    name = NAME
    topics = _COMPANY_TOPICS | _STATION_TOPICS | _CHARGER_TOPICS
    tables = _TABLES

    async def apply(self, connection: Connection, tables: Tables, events: Sequence[ProjectedEvent]) -> None:
        for topics, table, name, fold in (
            (_COMPANY_TOPICS, COMPANIES, "fleet_companies", _fold_company),
            (_STATION_TOPICS, STATIONS, "fleet_stations", _fold_station),
            (_CHARGER_TOPICS, CHARGERS, "fleet_chargers", _fold_charger),
        ):
            mine = [event for event in events if event.topic in topics]
            await fold_into(connection, table, tables[name], mine, fold)


def _fold_company(row: Row | None, projected: ProjectedEvent) -> Row | None:
    event: Any = projected.event
    if projected.topic == "Company.Created":
        return {
            "company_id": projected.stream_id,
            "name": event.name,
            "suspended": False,
            "suspension_reason": None,
            "created_at": event.timestamp,
            "updated_at": event.timestamp,
        }
    if row is None:
        return None
    match projected.topic:
        case "Company.Renamed":
            row["name"] = event.name
        case "Company.Suspended":
            row["suspended"], row["suspension_reason"] = True, event.reason
        case "Company.Reactivated":
            row["suspended"], row["suspension_reason"] = False, None
    row["updated_at"] = event.timestamp
    return row


def _fold_station(row: Row | None, projected: ProjectedEvent) -> Row | None:
    event: Any = projected.event
    if projected.topic == "Station.Created":
        row = {
            "station_id": projected.stream_id,
            "company_id": event.company_id,
            "name": event.name,
            "time_zone": event.time_zone,
            "published": False,
            "tariff_id": None,
            "removed": False,
            "created_at": event.timestamp,
        }
        _set_address(row, event.address)
        row["latitude"], row["longitude"] = event.coordinates.latitude, event.coordinates.longitude
    elif row is None:
        return None
    match projected.topic:
        case "Station.Updated":
            # None means unchanged: the event carries only the fields that changed.
            if event.name is not None:
                row["name"] = event.name
            if event.address is not None:
                _set_address(row, event.address)
            if event.coordinates is not None:
                row["latitude"], row["longitude"] = event.coordinates.latitude, event.coordinates.longitude
            if event.time_zone is not None:
                row["time_zone"] = event.time_zone
        case "Station.Published":
            row["published"] = True
        case "Station.Unpublished":
            row["published"] = False
        case "Station.TariffAssigned":
            row["tariff_id"] = event.tariff_id
        case "Station.TariffUnassigned":
            row["tariff_id"] = None
        case "Station.Removed":
            row["removed"], row["published"] = True, False
    row["updated_at"] = event.timestamp
    return row


def _set_address(row: Row, address: Any) -> None:
    row["street"], row["postal_code"], row["city"] = address.street, address.postal_code, address.city
    row["state"], row["country"] = address.state, address.country


def _fold_charger(row: Row | None, projected: ProjectedEvent) -> Row | None:
    event: Any = projected.event
    if projected.topic == "Charger.Registered":
        row = {
            "charger_id": projected.stream_id,
            "charge_point_id": event.charge_point_id,
            "company_id": event.company_id,
            "station_id": event.station_id,
            "evses": _evses(event.evses),
            "ocpp_version": None,
            "vendor": None,
            "model": None,
            "serial_number": None,
            "firmware_version": None,
            "availability": "Operative",
            "connected": False,
            "last_connected_at": None,
            "last_disconnected_at": None,
            "decommissioned": False,
            "connector_statuses": [],
            "registered_at": event.timestamp,
        }
    elif row is None:
        return None
    match projected.topic:
        case "Charger.EvsesConfigured":
            row["evses"] = _evses(event.evses)
        case "Charger.AvailabilityChanged":
            row["availability"] = event.availability.value
        case "Charger.Decommissioned":
            row["decommissioned"] = True
        case "Charger.BootRecorded":
            boot: BootInfo = event.boot
            row["vendor"], row["model"] = boot.vendor, boot.model
            row["serial_number"], row["firmware_version"] = boot.serial_number, boot.firmware_version
        case "Charger.Connected":
            row["connected"], row["ocpp_version"] = True, event.protocol.value
            row["last_connected_at"] = event.timestamp
        case "Charger.Disconnected":
            row["connected"], row["last_disconnected_at"] = False, event.timestamp
        case "Charger.ConnectorStatusChanged":
            row["connector_statuses"] = _with_status(row["connector_statuses"], event)
    row["updated_at"] = event.timestamp
    return row


def _evses(evses: Sequence[Evse]) -> list[dict[str, Any]]:
    """The layout in the API's shape (camelCase, OCPI names and values), ready to serve as stored."""
    return [
        {
            "evseId": evse.evse_id,
            "connectors": [
                {
                    "connectorId": connector.connector_id,
                    "standard": connector.standard.value,
                    "format": connector.format.value,
                    "powerType": connector.power_type.value,
                    "maxPowerW": connector.max_power_w,
                }
                for connector in evse.connectors
            ],
        }
        for evse in evses
    ]


def _with_status(statuses: list[dict[str, Any]], event: Any) -> list[dict[str, Any]]:
    """The connector statuses with this report's replacing the connector's previous one, ordered by EVSE and
    connector ((0, 0) is the charger as a whole)."""
    key = (event.evse_id, event.connector_id)
    kept = [s for s in statuses if (s["evseId"], s["connectorId"]) != key]
    kept.append(
        {
            "evseId": event.evse_id,
            "connectorId": event.connector_id,
            "status": event.status.value,
            "errorCode": event.error_code,
            "reportedAt": event.reported_at.isoformat(),
        }
    )
    return sorted(kept, key=lambda s: (s["evseId"], s["connectorId"]))
