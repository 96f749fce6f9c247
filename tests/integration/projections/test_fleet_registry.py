"""The fleet registry read model on real Postgres: rows follow the aggregates, and a batch applied twice
changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest

from csms.domain import Address, Availability, ConnectorStatus, OcppVersion
from csms.eventstore import EventStore, create_pool
from projections.fleet_registry import FleetRegistry
from projections.postgres_target import PostgresTarget
from tests.integration.projections.fleet_world import T0, FleetWorld, catch_up, events_of


@pytest.fixture
async def store_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture
async def world(store_pool: asyncpg.Pool, database_url: str) -> AsyncIterator[FleetWorld]:
    store = EventStore(store_pool, database_url)
    yield FleetWorld(store)
    await store.close()


@pytest.fixture
def target(pool: asyncpg.Pool) -> PostgresTarget:
    # The plain `pool` (no jsonb codec): the projector must not depend on how its connection decodes JSON.
    return PostgresTarget(FleetRegistry(), pool)


async def row(pool: asyncpg.Pool, view: str, key: str, value: object) -> dict[str, Any]:
    record = await pool.fetchrow(f"SELECT * FROM {view} WHERE {key} = $1", value)
    assert record is not None, f"no {view} row for {value}"
    return dict(record)


async def test_companies_follow_renames_and_suspensions(
    world: FleetWorld, target: PostgresTarget, pool: asyncpg.Pool, store_pool: asyncpg.Pool
) -> None:
    company = await world.company("Before")
    company.rename("After", T0 + timedelta(minutes=1))
    company.suspend("unpaid invoices", T0 + timedelta(minutes=2))
    await world.save(company)
    await catch_up(target, store_pool)

    suspended = await row(pool, "fleet_companies", "company_id", company.id)
    assert (suspended["name"], suspended["suspended"], suspended["suspension_reason"]) == (
        "After",
        True,
        "unpaid invoices",
    )
    assert suspended["updated_at"] == T0 + timedelta(minutes=2)

    company.reactivate(T0 + timedelta(minutes=3))
    await world.save(company)
    await catch_up(target, store_pool)
    reactivated = await row(pool, "fleet_companies", "company_id", company.id)
    assert (reactivated["suspended"], reactivated["suspension_reason"]) == (False, None)


async def test_stations_follow_updates_publication_tariff_and_removal(
    world: FleetWorld, target: PostgresTarget, pool: asyncpg.Pool, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company)
    station = await world.station(company, name="Museumplein", tariff=tariff)
    await catch_up(target, store_pool)

    created = await row(pool, "fleet_stations", "station_id", station.id)
    assert created["company_id"] == company.id
    assert (created["name"], created["street"], created["city"], created["postal_code"]) == (
        "Museumplein",
        "Museumplein 1",
        "Amsterdam",
        "1071 DJ",
    )
    assert (created["country"], created["time_zone"]) == ("NLD", "Europe/Amsterdam")
    assert (created["latitude"], created["longitude"]) == (Decimal("52.357910"), Decimal("4.881340"))
    assert (created["published"], created["tariff_id"], created["removed"]) == (True, tariff.id, False)

    later = T0 + timedelta(days=1)
    station.update(
        later, name="Rijksmuseum", address=Address("Stadhouderskade 42", "Amsterdam", None, "NLD", "NH")
    )
    station.unassign_tariff(later)
    station.remove(later)
    await world.save(station)
    await catch_up(target, store_pool)

    removed = await row(pool, "fleet_stations", "station_id", station.id)
    assert (removed["name"], removed["street"], removed["postal_code"], removed["state"]) == (
        "Rijksmuseum",
        "Stadhouderskade 42",
        None,
        "NH",
    )
    assert (removed["published"], removed["tariff_id"], removed["removed"]) == (False, None, True)
    assert removed["time_zone"] == "Europe/Amsterdam"  # not part of the update: unchanged
    assert (removed["created_at"], removed["updated_at"]) == (T0, later)


async def test_chargers_follow_boot_connectivity_availability_and_connector_statuses(
    world: FleetWorld, target: PostgresTarget, pool: asyncpg.Pool, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    station = await world.station(company)
    charger = await world.charger(station)
    at = T0 + timedelta(hours=1)
    charger.connected(OcppVersion.OCPP201, at, uuid.uuid4())
    charger.record_boot("ACME", "Wallbox 22", "SN-1", "1.2.3", at)
    # Many reports in one batch: the latest per connector wins, in the domain's order.
    for minute, status in enumerate(
        (ConnectorStatus.AVAILABLE, ConnectorStatus.OCCUPIED, ConnectorStatus.FAULTED)
    ):
        moment = at + timedelta(minutes=minute)
        charger.report_connector_status(
            2, 1, status, "GroundFailure" if status is ConnectorStatus.FAULTED else None, moment, moment
        )
    charger.report_connector_status(1, 1, ConnectorStatus.CHARGING, None, at, at)
    charger.change_availability(Availability.INOPERATIVE, at)
    await world.save(charger)
    await catch_up(target, store_pool)

    online = await row(pool, "fleet_chargers", "charger_id", charger.id)
    assert (online["charge_point_id"], online["company_id"], online["station_id"]) == (
        charger.charge_point_id,
        company.id,
        station.id,
    )
    assert (online["vendor"], online["model"], online["serial_number"], online["firmware_version"]) == (
        "ACME",
        "Wallbox 22",
        "SN-1",
        "1.2.3",
    )
    assert (online["ocpp_version"], online["connected"], online["last_connected_at"]) == (
        "ocpp2.0.1",
        True,
        at,
    )
    assert online["availability"] == "Inoperative"
    statuses = orjson.loads(
        await pool.fetchval(
            "SELECT connector_statuses::text FROM fleet_chargers WHERE charger_id = $1", charger.id
        )
    )
    assert statuses == [
        {
            "evseId": 1,
            "connectorId": 1,
            "status": "Charging",
            "errorCode": None,
            "reportedAt": at.isoformat(),
        },
        {
            "evseId": 2,
            "connectorId": 1,
            "status": "Faulted",
            "errorCode": "GroundFailure",
            "reportedAt": (at + timedelta(minutes=2)).isoformat(),
        },
    ]
    evses = orjson.loads(
        await pool.fetchval("SELECT evses::text FROM fleet_chargers WHERE charger_id = $1", charger.id)
    )
    assert [evse["evseId"] for evse in evses] == [1, 2]
    assert evses[0]["connectors"] == [
        {
            "connectorId": 1,
            "standard": "IEC_62196_T2",
            "format": "SOCKET",
            "powerType": "AC_3_PHASE",
            "maxPowerW": 22000,
        }
    ]

    gone = at + timedelta(hours=2)
    charger.disconnected(gone, "closed by the charger")
    charger.decommission(gone)
    await world.save(charger)
    await catch_up(target, store_pool)
    offline = await row(pool, "fleet_chargers", "charger_id", charger.id)
    assert (offline["connected"], offline["last_connected_at"], offline["last_disconnected_at"]) == (
        False,
        at,
        gone,
    )
    assert offline["decommissioned"] is True


async def test_applying_the_same_events_again_changes_no_row(
    world: FleetWorld, target: PostgresTarget, pool: asyncpg.Pool, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    station = await world.station(company)
    charger = await world.charger(station)
    charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, T0, T0)
    company.rename("Renamed", T0)
    await world.save(charger, company)
    await catch_up(target, store_pool)
    streams = {company.id, station.id, charger.id}
    before = await snapshot(pool, streams)

    events = await events_of(store_pool, target.projector, streams)
    assert len(events) >= 6
    generation = await target.active_generation()
    async with pool.acquire() as connection, connection.transaction():
        await target.projector.apply(connection, target.tables(generation), events)
        # And in pieces, the way a smaller batch size would have delivered them.
        for event in events:
            await target.projector.apply(connection, target.tables(generation), [event])

    assert await snapshot(pool, streams) == before


async def snapshot(pool: asyncpg.Pool, streams: set[uuid.UUID]) -> list[list[dict[str, Any]]]:
    ids = list(streams)
    return [
        [
            dict(r)
            for r in await pool.fetch(
                f"SELECT *, {extra} FROM {view} WHERE {key} = ANY($1::uuid[]) ORDER BY 1", ids
            )
        ]
        for view, key, extra in (
            ("fleet_companies", "company_id", "1"),
            ("fleet_stations", "station_id", "1"),
            ("fleet_chargers", "charger_id", "evses::text AS e, connector_statuses::text AS s"),
        )
    ]
