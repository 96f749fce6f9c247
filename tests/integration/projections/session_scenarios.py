"""Charging sessions recorded through the real `ChargingSession` aggregate and event store, for the session
read model's tests (projector and read API). Every id is fresh: the database is shared by the whole run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from csms.domain import (
    ChargingSession,
    Currency,
    IdToken,
    IdTokenType,
    MeterReading,
    PriceComponent,
    StopReason,
    Tariff,
    TariffDimension,
    TariffElement,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.eventstore.recorder import head_position
from projections.log_tail import LogTail
from projections.postgres_target import PostgresTarget
from projections.projector import ProjectedEvent
from projections.session_history import SessionHistoryProjector

CODEC = EventCodec(EVENT_TYPES)
T0 = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
TIME_ZONE = "Europe/Amsterdam"


@asynccontextmanager
async def event_store(database_url: str) -> AsyncIterator[EventStore]:
    """A store on a pool with the runtime's JSON codecs (projectors read the log through it)."""
    pool = await create_pool(database_url, max_size=10)
    store = EventStore(pool, database_url, window_seconds=0.001, poll_interval=0.2)
    try:
        yield store
    finally:
        await store.close()
        await pool.close()


def energy_tariff(company_id: uuid.UUID, per_kwh: str = "0.30", per_hour: str = "1.20") -> Tariff:
    """0.30/kWh and 1.20/h while charging, 21% VAT."""
    element = TariffElement(
        (
            PriceComponent(TariffDimension.ENERGY, Decimal(per_kwh)),
            PriceComponent(TariffDimension.TIME, Decimal(per_hour), step_size=60),
        )
    )
    return Tariff.create(uuid.uuid4(), company_id, "Standard", Currency.EUR, Decimal("21"), (element,), T0)


class Sessions:
    """Records sessions step by step; `save` appends what the aggregates have pending."""

    def __init__(self, store: EventStore, company_id: uuid.UUID | None = None) -> None:
        self.store = store
        self.repository = Repository(store, CODEC)
        self.company_id = company_id or uuid.uuid4()
        self.station_id = uuid.uuid4()
        self.charger_id = uuid.uuid4()
        self.tariff = energy_tariff(self.company_id)

    async def save(self, *sessions: ChargingSession) -> int:
        """Append the pending events; the log position of the last one (0 when nothing was pending)."""
        results = await self.repository.save(*sessions)
        return max((result.position for result in results), default=0)

    def requested(self, driver_id: uuid.UUID, at: datetime = T0) -> ChargingSession:
        return ChargingSession.request(
            uuid.uuid4(),
            driver_id,
            self.company_id,
            self.station_id,
            self.charger_id,
            1,
            1,
            IdToken(f"APP-{uuid.uuid4().hex[:12]}", IdTokenType.APP),
            at,
        )

    def started(
        self, driver_id: uuid.UUID, at: datetime = T0, meter_start_wh: int = 1_000
    ) -> ChargingSession:
        session = self.requested(driver_id, at)
        session.accept(at)
        session.start("tx-1", meter_start_wh, at, self.tariff.snapshot(), TIME_ZONE, at)
        return session

    @staticmethod
    def meter(session: ChargingSession, minutes: int, register_wh: int, power_w: int = 11_000) -> None:
        at = T0 + timedelta(minutes=minutes)
        session.record_meter_values(
            (MeterReading(at, energy_wh=register_wh, power_w=power_w, soc_percent=min(100, 20 + minutes)),),
            at,
        )

    @staticmethod
    def stop_and_price(session: ChargingSession, minutes: int, meter_stop_wh: int) -> None:
        at = T0 + timedelta(minutes=minutes)
        session.stop(meter_stop_wh, at, StopReason.EV_DISCONNECTED, at)
        session.price(at)

    async def full(
        self, driver_id: uuid.UUID, at: datetime = T0, *, paid: bool | None = True
    ) -> ChargingSession:
        """A session from request to payment (declined when `paid` is False, pending when None)."""
        session = self.started(driver_id, at)
        for minute in range(1, 6):
            self.meter(session, minute, 1_000 + 1_000 * minute)
        self.stop_and_price(session, 10, 6_000)
        assert session.breakdown is not None
        if paid is True:
            session.payment_succeeded(f"pi_{uuid.uuid4().hex[:16]}", session.breakdown.total, T0)
        elif paid is False:
            session.payment_failed("card_declined", "Your card was declined.", T0)
        await self.save(session)
        return session


def session_target(pool: asyncpg.Pool) -> PostgresTarget:
    return PostgresTarget(SessionHistoryProjector(), pool)


async def catch_up(target: PostgresTarget, pool: asyncpg.Pool, batch_size: int = 500) -> int:
    """Apply the log up to its head to the active generation, as the runner does; the position reached."""
    generation = await target.active_generation()
    position = await target.position(generation)
    tail = LogTail(pool, CODEC, target.projector.topics, batch_size=batch_size)
    head = await head_position(pool)
    while position < head:
        batch = await tail.read(position)
        if not await target.apply(generation, batch.events, position, batch.checked_to):
            # Another test's catch-up moved the shared position first: carry on from there.
            position = await target.position(generation)
            continue
        position = batch.checked_to
    return position


async def events_of(pool: asyncpg.Pool, streams: set[uuid.UUID]) -> list[ProjectedEvent]:
    """The projector's events of `streams`, decoded as the runner hands them over, in log order."""
    tail = LogTail(pool, CODEC, SessionHistoryProjector.topics, batch_size=500)
    rows = await pool.fetch(
        "SELECT min(position) AS first, max(position) AS last FROM events WHERE stream_id = ANY($1::uuid[])",
        list(streams),
    )
    first, last = rows[0]["first"], rows[0]["last"]
    collected: list[ProjectedEvent] = []
    position = first - 1
    while position < last:
        batch = await tail.read(position)
        collected.extend(e for e in batch.events if e.stream_id in streams and e.position <= last)
        position = batch.checked_to
    return collected
