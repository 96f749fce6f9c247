"""Test helpers for the fleet read models: objects recorded through the real aggregates and event store, and
projectors caught up on the log the way the runner does it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from csms.domain import (
    Address,
    Charger,
    ChargingSession,
    Company,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    Coordinates,
    Currency,
    Evse,
    IdToken,
    IdTokenType,
    PowerType,
    PriceComponent,
    Station,
    StopReason,
    Tariff,
    TariffDimension,
    TariffElement,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository
from csms.eventstore.recorder import head_position
from projections.log_tail import LogTail
from projections.postgres_target import PostgresTarget
from projections.projector import PostgresProjector, ProjectedEvent

CODEC = EventCodec(EVENT_TYPES)
T0 = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def short_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class FleetWorld:
    """Records domain objects through their aggregates; every name and id is fresh, the database is shared."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.repository = Repository(store, CODEC)

    async def save(self, *aggregates: Any) -> int:
        """Append the aggregates' pending events; the log position of the last one."""
        results = await self.repository.save(*aggregates)
        return max(result.position for result in results)

    async def company(self, name: str | None = None) -> Company:
        company = Company.create(uuid.uuid4(), name or short_id("Company"), T0)
        await self.save(company)
        return company

    async def tariff(
        self, company: Company, per_kwh: str = "0.40", currency: Currency = Currency.EUR, vat: str = "21"
    ) -> Tariff:
        element = TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal(per_kwh)),))
        tariff = Tariff.create(uuid.uuid4(), company.id, "Standard", currency, Decimal(vat), (element,), T0)
        await self.save(tariff)
        return tariff

    async def station(
        self,
        company: Company,
        *,
        name: str | None = None,
        time_zone: str = "Europe/Amsterdam",
        tariff: Tariff | None = None,
        city: str = "Amsterdam",
    ) -> Station:
        station = Station.create(
            uuid.uuid4(),
            company.id,
            name or short_id("Station"),
            Address("Museumplein 1", city, "1071 DJ", "NLD"),
            Coordinates.parse("52.357910", "4.881340"),
            time_zone,
            T0,
        )
        if tariff is not None:
            station.assign_tariff(tariff.id, T0)
        station.publish(T0)
        await self.save(station)
        return station

    async def charger(self, station: Station, charge_point_id: str | None = None) -> Charger:
        connector = Connector(
            1, ConnectorStandard.IEC_62196_T2, ConnectorFormat.SOCKET, PowerType.AC_3_PHASE, 22000
        )
        identity = charge_point_id or short_id("CP")
        charger = Charger.register(
            uuid.uuid4(),
            station.company_id,
            station.id,
            identity,
            "argon2-hash-placeholder",
            (Evse(1, (connector,)), Evse(2, (connector,))),
            T0,
        )
        await self.save(charger)
        return charger

    async def session(
        self,
        station: Station,
        charger: Charger,
        tariff: Tariff,
        *,
        stopped_at: datetime,
        energy_wh: int = 10_000,
        duration: timedelta = timedelta(hours=1),
        paid: bool | None = True,
        driver_id: uuid.UUID | None = None,
    ) -> ChargingSession:
        """A whole app session: requested, accepted, started, stopped at `stopped_at`, priced, and then paid
        (True), declined (False) or left unpaid (None)."""
        started_at = stopped_at - duration
        session = ChargingSession.request(
            uuid.uuid4(),
            driver_id or uuid.uuid4(),
            station.company_id,
            station.id,
            charger.id,
            1,
            1,
            IdToken(short_id("APP")[:36], IdTokenType.APP),
            started_at,
        )
        session.accept(started_at)
        session.start("tx-1", 5_000, started_at, tariff.snapshot(), station.time_zone, started_at)
        session.stop(5_000 + energy_wh, stopped_at, StopReason.REMOTE, stopped_at)
        session.price(stopped_at)
        assert session.breakdown is not None
        if paid is True:
            session.payment_succeeded(short_id("pi"), session.breakdown.total, stopped_at)
        elif paid is False:
            session.payment_failed("card_declined", "Your card was declined.", stopped_at)
        await self.save(session)
        return session


async def catch_up(target: PostgresTarget, log_pool: asyncpg.Pool) -> int:
    """Apply the log up to its head to `target`'s active generation as the runner would; the position reached.

    `log_pool` reads the log: it needs the event store's jsonb codec (`create_pool`).

    The test database is shared by the whole run, so this also applies other tests' events: that is what a
    real projector does, and fresh ids keep them apart.
    """
    generation = await target.active_generation()
    position = await target.position(generation)
    tail = LogTail(log_pool, CODEC, target.projector.topics, batch_size=500)
    head = await head_position(log_pool)
    while position < head:
        batch = await tail.read(position)
        if not await target.apply(generation, batch.events, position, batch.checked_to):
            # Another test's catch-up (or a runner) moved the shared position first: go on from there.
            generation = await target.active_generation()
            position = await target.position(generation)
            continue
        position = batch.checked_to
    return position


async def events_of(
    log_pool: asyncpg.Pool, projector: PostgresProjector, streams: set[uuid.UUID]
) -> list[ProjectedEvent]:
    """Every event of `streams` the projector handles, in log order (`log_pool` as for `catch_up`)."""
    tail = LogTail(log_pool, CODEC, projector.topics, batch_size=500)
    rows = await log_pool.fetch(
        "SELECT position FROM events WHERE stream_id = ANY($1::uuid[]) ORDER BY position", list(streams)
    )
    if not rows:
        return []
    first = rows[0]["position"] - 1
    last = rows[-1]["position"]
    collected: list[ProjectedEvent] = []
    position = first
    while position < last:
        batch = await tail.read(position)
        collected.extend(e for e in batch.events if e.stream_id in streams and e.position <= last)
        position = batch.checked_to
    return collected
