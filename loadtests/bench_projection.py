"""`csms bench projection`: how far the read models lag behind a fleet (see `loadtests.projection_lag`),
and how fast `session_history` rebuilds from a large log, beside scans of that log.

A rebuild replays the whole log into a fresh generation, so its speed bounds how long a schema change or a
repaired projector takes to come back. The log is seeded through the real `ChargingSession` aggregate and
event store: fleets of concurrent sessions, each requested, started, metered once a minute, stopped, priced
and paid, interleaved in time order as a busy network writes them (mostly MeterValuesRecorded). In the same
run, on the same rows, two baselines bound what any projector here could do:

- **SELECT scan**: `read_all` of the projector's topics in the same batches, rows to records, nothing else.
- **read + decode**: the runner's `LogTail` (the scan plus decoding every event to its domain class).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import click

from csms.domain import (
    ChargingSession,
    Currency,
    IdToken,
    IdTokenType,
    MeterReading,
    Money,
    PriceComponent,
    StopReason,
    Tariff,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.eventstore.recorder import head_position, read_all
from loadtests.projection_lag import format_lag, lag_figures, measure_lag
from loadtests.scratch import scratch_database
from projections.log_tail import LogTail
from projections.postgres_target import PostgresTarget
from projections.rebuild import rebuild
from projections.session_history import SessionHistoryProjector

_T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
_READING_INTERVAL = timedelta(minutes=1)
_SAVE_CHUNK = 1000  # sessions per append: one commit of about as many events
_TARGET = 20_000.0
_GOAL = 50_000.0
_LAG_TARGET_P99 = 1.0  # seconds (250 ms is the goal)
_LAG_RAMP_RATE = 300.0  # chargers connecting per second, as `csms bench fleet` ramps


@dataclass
class Row:
    scenario: str
    events: int
    seconds: float
    target: str = ""
    met: bool | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def _tariff(company_id: UUID) -> Tariff:
    """The demo network's tariff: cheaper energy at night, parking fees after a grace period."""
    return Tariff.create(
        uuid4(),
        company_id,
        "Standard",
        Currency.EUR,
        Decimal("21"),
        (
            TariffElement(
                (PriceComponent(TariffDimension.ENERGY, Decimal("0.29")),),
                TariffRestrictions(start_time=clock_time(22, 0), end_time=clock_time(6, 0)),
            ),
            TariffElement(
                (
                    PriceComponent(TariffDimension.ENERGY, Decimal("0.45")),
                    PriceComponent(TariffDimension.PARKING_TIME, Decimal("6.00"), step_size=60),
                )
            ),
        ),
        _T0,
        parking_grace_period_s=1800,
    )


class _Fleet:
    """`concurrent` sessions at a time; each tick every one of them takes its next step."""

    def __init__(self, concurrent: int, readings: int, chargers: int = 10_000) -> None:
        self.company_id = uuid4()
        self.station_ids = [uuid4() for _ in range(max(1, chargers // 4))]
        self.charger_ids = [uuid4() for _ in range(chargers)]
        self.tariff = _tariff(self.company_id).snapshot()
        self.readings = readings
        self.slots: list[ChargingSession | None] = [None] * concurrent
        self.counts = [0] * concurrent
        self.started = 0

    def step(self, slot: int, at: datetime) -> ChargingSession:
        session = self.slots[slot]
        if session is None:
            # Staggered starts: slot k starts its first session k seconds into the run.
            charger = (slot + self.started) % len(self.charger_ids)
            session = ChargingSession.request(
                uuid4(),
                uuid4(),
                self.company_id,
                self.station_ids[charger // 4],
                self.charger_ids[charger],
                1,
                1,
                IdToken(f"APP{self.started:012d}", IdTokenType.APP),
                at,
            )
            session.accept(at)
            session.start(str(self.started), 1_000_000, at, self.tariff, "Europe/Amsterdam", at)
            self.started += 1
            self.slots[slot], self.counts[slot] = session, 0
        elif self.counts[slot] < self.readings:
            self.counts[slot] += 1
            register = 1_000_000 + self.counts[slot] * 183  # 11 kW for a minute
            session.record_meter_values(
                (
                    MeterReading(
                        at, energy_wh=register, power_w=11_000, soc_percent=20 + self.counts[slot] % 80
                    ),
                ),
                at,
            )
        else:
            session.stop(1_000_000 + self.counts[slot] * 183, at, StopReason.EV_DISCONNECTED, at)
            session.price(at)
            assert session.breakdown is not None
            session.payment_succeeded(
                f"pi_{session.id.hex}", Money(session.breakdown.total_incl_vat, Currency.EUR), at
            )
            self.slots[slot] = None
        return session


async def seed(store: EventStore, events: int, concurrent: int, readings: int) -> int:
    """Append at least `events` session events; returns how many were appended."""
    repository = Repository(store, EventCodec(EVENT_TYPES))
    fleet = _Fleet(concurrent, readings)
    appended = 0
    tick = 0
    while appended < events:
        at = _T0 + tick * _READING_INTERVAL
        touched = [fleet.step(slot, at + timedelta(seconds=slot % 60)) for slot in range(concurrent)]
        for first in range(0, len(touched), _SAVE_CHUNK):
            chunk = touched[first : first + _SAVE_CHUNK]
            pending = sum(len(session.pending_events) for session in chunk)
            await repository.save(*chunk)
            appended += pending
        tick += 1
    return appended


async def _scan(pool: asyncpg.Pool, topics: list[str], batch_size: int) -> Row:
    started = time.perf_counter()
    position = count = 0
    while True:
        recorded = await read_all(pool, position, batch_size, topics)
        if not recorded:
            break
        count += len(recorded)
        position = recorded[-1].position
    return Row("SELECT scan (read_all)", count, time.perf_counter() - started)


async def _decode(pool: asyncpg.Pool, codec: EventCodec, topics: list[str], batch_size: int) -> Row:
    tail = LogTail(pool, codec, topics, batch_size)
    head = await head_position(pool)
    started = time.perf_counter()
    position = count = 0
    while position < head:
        batch = await tail.read(position)
        count += len(batch.events)
        position = batch.checked_to
    return Row("read + decode (LogTail)", count, time.perf_counter() - started)


async def run(
    database_url: str, events: int, concurrent: int, readings: int, batch_sizes: tuple[int, ...]
) -> tuple[int, list[Row]]:
    async with scratch_database(database_url) as url:
        pool = await create_pool(url, max_size=8, min_size=2)
        store = EventStore(pool, url)
        try:
            seeding = time.perf_counter()
            appended = await seed(store, events, concurrent, readings)
            click.echo(f"seeded {appended:,} events in {time.perf_counter() - seeding:.0f} s", err=True)
            await pool.execute("VACUUM ANALYZE events")
            codec = EventCodec(EVENT_TYPES)
            projector = SessionHistoryProjector()
            topics = sorted(projector.topics)
            target = PostgresTarget(projector, pool)
            await target.active_generation()
            rows: list[Row] = []
            for batch_size in batch_sizes:
                report = await rebuild(target, pool, url, codec, batch_size=batch_size, retire_after=0.0)
                rows.append(
                    Row(
                        f"rebuild session_history (batches of {batch_size:,})",
                        report.events,
                        report.seconds,
                        f">= {_TARGET:,.0f}/s (goal {_GOAL:,.0f}/s)",
                        report.events_per_second >= _TARGET,
                    )
                )
            sessions = await pool.fetchval("SELECT count(*) FROM session_history")
            click.echo(f"rebuilt {sessions:,} sessions", err=True)
            rows.append(await _decode(pool, codec, topics, batch_sizes[0]))
            rows.append(await _scan(pool, topics, batch_sizes[0]))
            return appended, rows
        finally:
            await store.close()
            await pool.close()


def format_table(rows: list[Row]) -> str:
    scan = rows[-1].rate
    lines = [
        "| scenario | events | seconds | events/s | vs SELECT scan | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            f"| {r.scenario} | {r.events:,} | {r.seconds:.1f} | {r.rate:,.0f} | {r.rate / scan:.2f}x"
            f" | {r.target} | {met} |"
        )
    return "\n".join(lines)


@click.command("projection")
@click.option(
    "--events", default=1_000_000, show_default=True, help="Events to seed the log with (at least)."
)
@click.option("--concurrent", default=2_000, show_default=True, help="Sessions charging at the same time.")
@click.option("--readings", default=45, show_default=True, help="Meter values per session (one a minute).")
@click.option(
    "--batch-size",
    "batch_sizes",
    multiple=True,
    type=int,
    default=(2_000, 10_000),
    show_default=True,
    help="Events per rebuild batch (repeat to compare; the scans use the first).",
)
@click.option(
    "--lag-chargers",
    default=10_000,
    show_default=True,
    help="Chargers feeding the gateway while projection lag is sampled (0: skip the lag part).",
)
@click.option("--lag-minutes", default=2.0, show_default=True, help="Lag sampling window.")
@click.option("--skip-rebuild", is_flag=True, help="Measure the lag only.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def projection(
    ctx: click.Context,
    events: int,
    concurrent: int,
    readings: int,
    batch_sizes: tuple[int, ...],
    lag_chargers: int,
    lag_minutes: float,
    skip_rebuild: bool,
    json_file: Path | None,
) -> None:
    """Projection lag under a charger fleet's load, and rebuild speed of session_history beside scans of
    the same log."""
    database_url: str = ctx.obj["database_url"]
    output: dict[str, Any] = {}
    failed = False
    if lag_chargers > 0:
        lag = asyncio.run(
            measure_lag(database_url, ctx.obj["redis_url"], lag_chargers, lag_minutes, _LAG_RAMP_RATE)
        )
        click.echo(format_lag(lag, _LAG_TARGET_P99))
        output["lag"] = lag_figures(lag)
        failed |= any(f.percentile(0.99) >= _LAG_TARGET_P99 for f in lag.projections)
    if not skip_rebuild:
        appended, rows = asyncio.run(run(database_url, events, concurrent, readings, batch_sizes))
        click.echo(format_table(rows))
        output["rebuild"] = {
            "events": appended,
            "concurrent": concurrent,
            "readings": readings,
            "batch_sizes": list(batch_sizes),
            "rows": [{**asdict(r), "events_per_second": r.rate} for r in rows],
        }
        failed |= any(r.met is False for r in rows)
    if json_file is not None:
        json_file.write_text(json.dumps(output, indent=2))
    if failed:
        ctx.exit(1)
