"""Daily station revenue on real Postgres: local days in the station's time zone, paid versus billed, and the
same rows however often a batch is applied."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from csms.domain import Currency, Money
from csms.eventstore import EventStore, create_pool
from projections.postgres_target import PostgresTarget
from projections.station_revenue import StationRevenue
from tests.integration.projections.fleet_world import FleetWorld, catch_up, events_of


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
def target(store_pool: asyncpg.Pool) -> PostgresTarget:
    return PostgresTarget(StationRevenue(), store_pool)


async def days(pool: asyncpg.Pool, *stations: uuid.UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT station_id, day, currency, company_id, sessions, energy_wh, revenue_excl_vat,"
        " revenue_incl_vat, paid_sessions, paid_incl_vat, refunded_incl_vat FROM station_daily"
        " WHERE station_id = ANY($1::uuid[]) ORDER BY station_id, day, currency",
        list(stations),
    )
    return [dict(row) for row in rows]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def test_a_session_counts_on_the_local_day_it_stopped_in_the_stations_time_zone(
    world: FleetWorld, target: PostgresTarget, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company)
    amsterdam = await world.station(company, time_zone="Europe/Amsterdam", tariff=tariff)
    new_york = await world.station(company, time_zone="America/New_York", tariff=tariff, city="New York")
    ams_charger, ny_charger = await world.charger(amsterdam), await world.charger(new_york)

    # Amsterdam is UTC+1 until 01:00 UTC on 29 March 2026, then UTC+2 (summer time).
    await world.session(
        amsterdam, ams_charger, tariff, stopped_at=utc("2026-03-28T22:59:59")
    )  # 23:59:59 on the 28th
    await world.session(
        amsterdam, ams_charger, tariff, stopped_at=utc("2026-03-28T23:00:00")
    )  # 00:00 on the 29th
    await world.session(
        amsterdam, ams_charger, tariff, stopped_at=utc("2026-03-29T21:30:00")
    )  # 23:30 CEST, the 29th
    await world.session(
        amsterdam, ams_charger, tariff, stopped_at=utc("2026-03-29T22:30:00")
    )  # 00:30 on the 30th
    # New York (UTC-4 in summer time): 03:00 UTC on the 29th is still the evening of the 28th there.
    await world.session(new_york, ny_charger, tariff, stopped_at=utc("2026-03-29T03:00:00"))
    await catch_up(target, store_pool)

    rows = await days(store_pool, amsterdam.id, new_york.id)
    by_station = {(row["station_id"], row["day"]): row["sessions"] for row in rows}
    assert by_station == {
        (amsterdam.id, date(2026, 3, 28)): 1,
        (amsterdam.id, date(2026, 3, 29)): 2,
        (amsterdam.id, date(2026, 3, 30)): 1,
        (new_york.id, date(2026, 3, 28)): 1,
    }


async def test_energy_billed_and_paid_revenue_add_up_per_day(
    world: FleetWorld, target: PostgresTarget, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company, per_kwh="0.40", vat="21")
    station = await world.station(company, tariff=tariff)
    charger = await world.charger(station)
    stop = utc("2026-04-02T10:00:00")
    paid = await world.session(station, charger, tariff, stopped_at=stop, energy_wh=10_000, paid=True)
    await world.session(
        station, charger, tariff, stopped_at=stop + timedelta(hours=1), energy_wh=2_500, paid=False
    )
    await world.session(
        station, charger, tariff, stopped_at=stop + timedelta(hours=2), energy_wh=500, paid=None
    )
    await catch_up(target, store_pool)

    assert paid.breakdown is not None
    assert paid.breakdown.total_incl_vat == Decimal("4.84")  # 10 kWh at 0.40 + 21%
    [row] = await days(store_pool, station.id)
    assert row == {
        "station_id": station.id,
        "day": date(2026, 4, 2),
        "currency": "EUR",
        "company_id": company.id,
        "sessions": 3,
        "energy_wh": 13_000,
        "revenue_excl_vat": Decimal("5.20"),  # 4.00 + 1.00 + 0.20
        "revenue_incl_vat": Decimal("6.29"),  # 4.84 + 1.21 + 0.24
        "paid_sessions": 1,
        "paid_incl_vat": Decimal("4.84"),
        "refunded_incl_vat": Decimal("0"),
    }


async def test_free_sessions_count_as_settled_and_refunds_as_given_back(
    world: FleetWorld, target: PostgresTarget, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company, per_kwh="0.40")
    free = await world.tariff(company, per_kwh="0")
    station = await world.station(company, tariff=tariff)
    charger = await world.charger(station)
    stop = utc("2026-04-06T10:00:00")
    refunded = await world.session(station, charger, tariff, stopped_at=stop)
    refunded.record_refund("re_1", Money(Decimal("1.50"), Currency.EUR), stop + timedelta(days=3))
    refunded.record_refund("re_2", Money(Decimal("0.50"), Currency.EUR), stop + timedelta(days=4))
    gift = await world.session(station, charger, free, stopped_at=stop, paid=None)
    gift.settle_without_payment(stop)
    await world.save(refunded, gift)
    await catch_up(target, store_pool)

    [row] = await days(store_pool, station.id)
    assert row["day"] == date(2026, 4, 6)  # the refunds count against the day the session was billed
    assert (row["sessions"], row["paid_sessions"]) == (2, 2)
    assert (row["revenue_incl_vat"], row["paid_incl_vat"], row["refunded_incl_vat"]) == (
        Decimal("4.84"),
        Decimal("4.84"),
        Decimal("2.00"),
    )


async def test_currencies_are_kept_apart(
    world: FleetWorld, target: PostgresTarget, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    euros = await world.tariff(company, per_kwh="0.40")
    pounds = await world.tariff(company, per_kwh="0.50", currency=Currency.GBP, vat="20")
    station = await world.station(company, tariff=euros)
    charger = await world.charger(station)
    stop = utc("2026-04-03T12:00:00")
    await world.session(station, charger, euros, stopped_at=stop)
    await world.session(station, charger, pounds, stopped_at=stop)
    await catch_up(target, store_pool)

    rows = await days(store_pool, station.id)
    assert [(row["currency"], row["sessions"], row["revenue_incl_vat"]) for row in rows] == [
        ("EUR", 1, Decimal("4.84")),
        ("GBP", 1, Decimal("6.00")),
    ]


async def test_applying_the_same_events_again_gives_the_same_rows(
    world: FleetWorld, target: PostgresTarget, store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company)
    station = await world.station(company, tariff=tariff)
    charger = await world.charger(station)
    sessions = [
        await world.session(
            station, charger, tariff, stopped_at=utc("2026-04-04T08:00:00") + timedelta(hours=n)
        )
        for n in range(3)
    ]
    sessions[0].record_refund("re_1", Money(Decimal("1.00"), Currency.EUR), utc("2026-04-05T08:00:00"))
    await world.save(sessions[0])
    await catch_up(target, store_pool)
    before = await days(store_pool, station.id)
    assert (before[0]["sessions"], before[0]["refunded_incl_vat"]) == (3, Decimal("1.00"))

    events = await events_of(store_pool, target.projector, {session.id for session in sessions})
    # Requested, started, stopped, priced, paid each (Accepted is not its topic), and the refund.
    assert len(events) == 3 * 5 + 1
    generation = await target.active_generation()
    async with store_pool.acquire() as connection, connection.transaction():
        await target.projector.apply(connection, target.tables(generation), events)
        for event in events:
            await target.projector.apply(connection, target.tables(generation), [event])

    assert await days(store_pool, station.id) == before
