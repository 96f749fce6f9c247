"""The session_history read model: rows folded from session events, idempotent, exactly once, rebuildable."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from csms.domain import ChargingSession, IdToken, IdTokenType, MeterReading
from csms.domain.money import Money
from csms.eventstore import EventStore
from csms.eventstore.recorder import Connection, head_position
from csms.eventstore.subscription import HeadWatcher
from projections.postgres_target import PostgresTarget
from projections.projector import ProjectedEvent, Tables
from projections.rebuild import rebuild
from projections.runner import ProjectionRunner
from projections.session_cost import cost_so_far
from projections.session_history import SessionHistoryProjector
from tests.integration.projections.session_scenarios import (
    CODEC,
    T0,
    TIME_ZONE,
    Sessions,
    catch_up,
    energy_tariff,
    event_store,
    events_of,
    session_target,
)

Row = dict[str, Any]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    async with event_store(database_url) as event_store_:
        yield event_store_


def private_name() -> str:
    """A copy of the model of this test's own (tables, view and position), beside the shared one."""
    return f"session_history_t{uuid.uuid4().hex[:10]}"


async def rows(pool: asyncpg.Pool, relation: str, ids: set[uuid.UUID]) -> dict[uuid.UUID, Row]:
    records = await pool.fetch(f"SELECT * FROM {relation} WHERE session_id = ANY($1::uuid[])", list(ids))
    return {record["session_id"]: dict(record) for record in records}


async def tariff_text(pool: asyncpg.Pool, session_id: uuid.UUID) -> str:
    text: str = await pool.fetchval(
        "SELECT tariff::text FROM session_history WHERE session_id = $1", session_id
    )
    return text


async def varied_sessions(store: EventStore) -> tuple[Sessions, list[ChargingSession]]:
    """Sessions in every state the model shows, including one started with an RFID card nobody holds."""
    sessions = Sessions(store)
    paid = await sessions.full(uuid.uuid4())
    declined = await sessions.full(uuid.uuid4(), paid=False)
    unpaid = await sessions.full(uuid.uuid4(), paid=None)
    charging = sessions.started(uuid.uuid4())
    for minute in (1, 2, 3):
        sessions.meter(charging, minute, 1_000 + 700 * minute)
    rejected = sessions.requested(uuid.uuid4())
    rejected.reject("Occupied", T0)
    rfid = ChargingSession.start_at_charger(
        uuid.uuid4(),
        None,
        sessions.company_id,
        sessions.station_id,
        sessions.charger_id,
        2,
        1,
        IdToken("04A2B3C4D5E6F7", IdTokenType.ISO14443),
        "1234",
        50_000,
        T0,
        sessions.tariff.snapshot(),
        TIME_ZONE,
        T0,
    )
    # Power only, then energy: each reading carries what the charger measured.
    rfid.record_meter_values((MeterReading(T0 + timedelta(minutes=1), power_w=7_000),), T0)
    rfid.record_meter_values((MeterReading(T0 + timedelta(minutes=2), energy_wh=50_400),), T0)
    await sessions.save(charging, rejected, rfid)
    return sessions, [paid, declined, unpaid, charging, rejected, rfid]


async def test_rows_show_each_session_as_its_aggregate_sees_it(database_url: str, store: EventStore) -> None:
    _, recorded = await varied_sessions(store)
    await catch_up(session_target(store.pool), store.pool)
    found = await rows(store.pool, "session_history", {s.id for s in recorded})

    paid, declined, unpaid, charging, rejected, rfid = (found[s.id] for s in recorded)
    assert (paid["status"], paid["payment_status"]) == ("PAID", "succeeded")
    assert (declined["status"], declined["payment_status"]) == ("PAYMENT_FAILED", "failed")
    assert declined["payment_failure_code"] == "card_declined"
    assert (unpaid["status"], unpaid["payment_status"]) == ("PRICED", "pending")
    for session in recorded:
        assert found[session.id]["energy_wh"] == session.energy_wh, session.status
    assert recorded[0].breakdown is not None
    assert paid["total_incl_vat"] == recorded[0].breakdown.total_incl_vat
    assert (charging["status"], charging["energy_wh"], charging["power_w"]) == ("STARTED", 2_100, 11_000)
    # 2.1 kWh at 0.30 and 3 minutes at 1.20/h: 0.63 + 0.06, excl. VAT.
    live = cost_so_far({**charging, "tariff": await tariff_text(store.pool, recorded[3].id)})
    assert live is not None
    assert live.total_excl_vat == Decimal("0.69")
    assert (rejected["status"], rejected["rejection_reason"], rejected["started_at"]) == (
        "REJECTED",
        "Occupied",
        None,
    )
    assert (rfid["origin"], rfid["driver_id"], rfid["id_token_type"]) == ("CHARGER", None, "ISO14443")
    assert (rfid["energy_wh"], rfid["power_w"]) == (400, 7_000)
    for session, row in zip(recorded, (paid, declined, unpaid, charging, rejected, rfid), strict=True):
        last = await store.pool.fetchval("SELECT max(position) FROM events WHERE stream_id = $1", session.id)
        assert row["position"] == last


async def _fold(
    pool: asyncpg.Pool, events: Sequence[ProjectedEvent], batches: list[list[ProjectedEvent]]
) -> Any:
    """Apply `batches` to a fresh private table, each in its own transaction; the rows they leave."""
    name = private_name()
    projector = SessionHistoryProjector(name)
    tables = Tables([name], 1)
    async with pool.acquire() as connection:
        for statement in projector.tables[name]:
            await connection.execute(statement.format(table=tables[name]))
        try:
            for batch in batches:
                async with connection.transaction():
                    await projector.apply(connection, tables, batch)
            return await rows(pool, tables[name], {e.stream_id for e in events})
        finally:
            await connection.execute(f"DROP TABLE {tables[name]}")


async def test_applying_the_same_events_again_changes_nothing(store: EventStore) -> None:
    _, recorded = await varied_sessions(store)
    events = await events_of(store.pool, {s.id for s in recorded})
    once = await _fold(store.pool, events, [events])

    assert len(once) == len(recorded)
    assert await _fold(store.pool, events, [events, events]) == once
    # Any prefix replayed, in any batching: a runner that restarts, or a rebuild cut into other batches.
    half = len(events) // 2
    assert await _fold(store.pool, events, [events[: half + 3], events[half - 3 :]]) == once
    assert await _fold(store.pool, events, [[event] for event in events]) == once
    assert await _fold(store.pool, events, [events[:3], events, events[5:]]) == once


class CrashesOnPricing(SessionHistoryProjector):
    """Writes its rows, then fails before the runner can record the position, when a batch prices `victim`."""

    def __init__(self, name: str, victim: uuid.UUID) -> None:
        super().__init__(name)
        self.victim = victim

    async def apply(self, connection: Connection, tables: Tables, events: Sequence[ProjectedEvent]) -> None:
        await super().apply(connection, tables, events)
        if any(e.stream_id == self.victim and e.topic == "ChargingSession.Priced" for e in events):
            raise RuntimeError("the projector process died here")


@contextlib.asynccontextmanager
async def head_watcher(database_url: str) -> AsyncIterator[HeadWatcher]:
    watcher = HeadWatcher(database_url)
    await watcher.start()
    try:
        yield watcher
    finally:
        await watcher.close()


async def test_a_crash_between_rows_and_position_applies_nothing_twice(
    database_url: str, store: EventStore
) -> None:
    sessions = Sessions(store)
    victim = sessions.started(uuid.uuid4())
    sessions.meter(victim, 5, 4_000)
    await sessions.save(victim)
    name = private_name()
    crashing = PostgresTarget(CrashesOnPricing(name, victim.id), store.pool)
    await catch_up(crashing, store.pool)
    sessions.stop_and_price(victim, 10, 6_000)
    priced_at = await sessions.save(victim)

    async with head_watcher(database_url) as watcher:
        runner = ProjectionRunner(crashing, store.pool, database_url, watcher, CODEC, batch_size=50)
        with pytest.raises(RuntimeError, match="died"):
            await asyncio.wait_for(runner.run(), 60)

        generation = await crashing.active_generation()
        position = await crashing.position(generation)
        assert position < priced_at  # the failed batch recorded no position ...
        row = (await rows(store.pool, name, {victim.id}))[victim.id]
        assert row["status"] == "STARTED"  # ... and none of its rows
        assert row["position"] <= position
        beyond = await store.pool.fetchval(f"SELECT count(*) FROM {name} WHERE position > $1", position)
        assert beyond == 0

        # A new instance resumes from the recorded position.
        healthy = PostgresTarget(SessionHistoryProjector(name), store.pool)
        resumed = ProjectionRunner(healthy, store.pool, database_url, watcher, CODEC, batch_size=50)
        task = asyncio.create_task(resumed.run())
        try:
            await asyncio.wait_for(resumed.leading.wait(), 30)
            assert resumed.position == position
            head = await head_position(store.pool)
            async with asyncio.timeout(30):
                while resumed.position < head:
                    await watcher.wait_beyond(head, 0.05)  # the runner's progress sends no notification
            row = (await rows(store.pool, name, {victim.id}))[victim.id]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert victim.breakdown is not None
    assert (row["status"], row["position"], row["total_incl_vat"]) == (
        "PRICED",
        priced_at,
        victim.breakdown.total_incl_vat,
    )
    await _drop(store.pool, healthy, generation)


async def test_a_rebuild_swaps_in_the_same_rows_while_reads_go_on(
    database_url: str, store: EventStore
) -> None:
    _, recorded = await varied_sessions(store)
    ids = {s.id for s in recorded}
    name = private_name()
    target = PostgresTarget(SessionHistoryProjector(name), store.pool)
    await catch_up(target, store.pool)
    before = await rows(store.pool, name, ids)
    assert len(before) == len(recorded)
    summary = (
        "SELECT count(*) AS n, sum(energy_wh) AS energy, max(position) AS position"
        " FROM {} WHERE session_id = ANY($1)"
    )

    async def read() -> dict[str, Any]:
        return dict((await store.pool.fetch(summary.format(name), list(ids)))[0])

    expected = await read()

    reads: list[dict[str, Any]] = []
    rebuilding = asyncio.create_task(
        rebuild(target, store.pool, database_url, CODEC, batch_size=25, retire_after=0.0)
    )
    while not rebuilding.done():
        reads.append(await read())
        await asyncio.sleep(0)  # let the rebuild take its turn between reads
    report = rebuilding.result()
    reads.append(await read())

    assert report.generation == report.replaced + 1
    assert len(reads) > 2
    assert all(read == expected for read in reads)
    assert await rows(store.pool, name, ids) == before
    await _drop(store.pool, target, report.generation)


async def _drop(pool: asyncpg.Pool, target: PostgresTarget, generation: int) -> None:
    """Remove a private copy of the model (the shared test database outlives the test)."""
    async with pool.acquire() as connection:
        await connection.execute(f"DROP VIEW IF EXISTS {target.name}")
        await connection.execute(f"DROP TABLE IF EXISTS {target.name}__g{generation}")
        await connection.execute("DELETE FROM projections WHERE name = $1", target.name)
        await connection.execute("DELETE FROM tracking WHERE consumer LIKE $1", f"projection:{target.name}:%")


async def test_payment_outcomes_refunds_and_disputes_show_on_the_row(store: EventStore) -> None:
    sessions = Sessions(store)
    refunded = await sessions.full(uuid.uuid4())
    partly = await sessions.full(uuid.uuid4())
    free_sessions = Sessions(store)
    free_sessions.tariff = energy_tariff(free_sessions.company_id, per_kwh="0", per_hour="0")
    free = free_sessions.started(uuid.uuid4())
    free_sessions.stop_and_price(free, 5, 2_000)
    assert refunded.breakdown is not None
    assert free.breakdown is not None
    assert free.breakdown.total.amount == 0
    at = T0 + timedelta(hours=1)
    free.settle_without_payment(at)
    refunded.record_refund("re_all", refunded.breakdown.total, at)
    refunded.open_dispute("dp_1", refunded.breakdown.total, "fraudulent", at)
    refunded.close_dispute("dp_1", "won", at)
    tenth = Money(Decimal("0.10"), refunded.breakdown.total.currency)
    partly.record_refund("re_part", tenth, at)
    partly.record_refund("re_part", tenth, at)  # the provider reports it twice: one refund
    await sessions.save(free, refunded, partly)
    await catch_up(session_target(store.pool), store.pool)
    found = await rows(store.pool, "session_history", {free.id, refunded.id, partly.id})

    assert (found[free.id]["status"], found[free.id]["payment_status"]) == ("PAID", "not_required")
    assert found[free.id]["amount_paid"] == 0
    assert found[refunded.id]["payment_status"] == "refunded"
    assert found[refunded.id]["amount_refunded"] == refunded.breakdown.total.amount
    assert found[refunded.id]["dispute_status"] == "won"
    assert found[partly.id]["payment_status"] == "partially_refunded"
    assert found[partly.id]["amount_refunded"] == Decimal("0.10")
