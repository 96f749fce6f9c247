"""`csms bench append`: event store append throughput beside COPY (ceiling) and single-row inserts (floor).

Every figure is measured in the same run on the same database, so the ratios hold on a noisy machine
even when the absolute numbers move. Each scenario runs for a fixed time on freshly truncated tables.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import click
import orjson

from csms.eventstore import EventStore, NewEvent, create_pool
from loadtests.scratch import scratch_database

# A realistic event: the size and shape of a MeterValuesRecorded with its metadata.
_DATA = orjson.dumps(
    {
        "timestamp": "2026-11-28T12:00:00+00:00",
        "readings": [
            {"measured_at": "2026-11-28T12:00:00+00:00", "energy_wh": 123456, "power_w": 22000},
        ],
        "evse_id": 1,
        "connector_id": 1,
    }
)
_METADATA = {"correlation_id": "8c0a2b4e-4b1b-4a8e-9d47-3f0c3b1f2a11", "ocpp_message_id": "19223201"}
_TOPIC = "ChargingSession.MeterValuesRecorded"
_BATCH_SIZES = (1, 10, 100, 500)
_CONCURRENT_CALLERS = 64

Work = Callable[[], Awaitable[int]]
"""One unit of work; returns how many events it wrote."""


@dataclass
class Row:
    scenario: str
    ours: float
    ceiling: float | None
    floor: float
    target: str
    met: bool | None

    @property
    def vs_ceiling(self) -> float | None:
        return None if self.ceiling is None else self.ours / self.ceiling

    @property
    def vs_floor(self) -> float:
        return self.ours / self.floor


async def _rate(work: Work, seconds: float, concurrency: int = 1) -> float:
    """Events per second achieved by `concurrency` loops running `work` for `seconds`."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            counts[i] += await work()

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(concurrency)))
    return sum(counts) / (time.perf_counter() - started)


class Bench:
    """The three ways of writing the same rows, each into a table with the events table's indexes."""

    def __init__(self, pool: asyncpg.Pool, store: EventStore) -> None:
        self.pool = pool
        self.store = store
        self._position = 0

    async def reset(self) -> None:
        await self.pool.execute("TRUNCATE events, bench_copy, bench_floor")
        self._position = 0

    def ours(self, size: int) -> Work:
        events = [NewEvent(_TOPIC, _DATA, 1, _METADATA) for _ in range(size)]

        async def work() -> int:
            await self.store.append(uuid.uuid4(), 0, events)
            return size

        return work

    def copy(self, size: int) -> Work:
        async def work() -> int:
            stream = uuid.uuid4()
            first = self._position
            self._position += size
            records = [(first + k + 1, stream, k + 1, _TOPIC, 1, _DATA, _METADATA) for k in range(size)]
            async with self.pool.acquire() as connection, connection.transaction():
                await connection.copy_records_to_table(
                    "bench_copy",
                    records=records,
                    columns=[
                        "position",
                        "stream_id",
                        "stream_version",
                        "topic",
                        "schema_version",
                        "data",
                        "metadata",
                    ],
                )
            return size

        return work

    def floor(self) -> Work:
        async def work() -> int:
            self._position += 1
            await self.pool.execute(
                "INSERT INTO bench_floor (position, stream_id, stream_version, topic, schema_version,"
                " data, metadata) VALUES ($1, $2, 1, $3, 1, $4, $5)",
                self._position,
                uuid.uuid4(),
                _TOPIC,
                _DATA,
                _METADATA,
            )
            return 1

        return work


async def run(database_url: str, seconds: float, rounds: int) -> list[Row]:
    async with scratch_database(database_url) as url:
        pool = await create_pool(url, max_size=_CONCURRENT_CALLERS + 4, min_size=8)
        store = EventStore(pool, url)
        try:
            for table in ("bench_copy", "bench_floor"):
                await pool.execute(f"CREATE TABLE {table} (LIKE events INCLUDING ALL)")
            bench = Bench(pool, store)

            async def measure(work: Work, concurrency: int = 1) -> float:
                figures = []
                for _ in range(rounds):
                    await bench.reset()
                    figures.append(await _rate(work, seconds, concurrency))
                return statistics.median(figures)

            floor = await measure(bench.floor())
            rows: list[Row] = []
            for size in _BATCH_SIZES:
                ours = await measure(bench.ours(size))
                ceiling = await measure(bench.copy(size))
                row = Row(f"batches of {size}", ours, ceiling, floor, "", None)
                if size == 100:
                    row.target, row.met = ">= 0.5x ceiling", ours >= 0.5 * ceiling
                rows.append(row)
            concurrent = await measure(bench.ours(1), _CONCURRENT_CALLERS)
            rows.append(
                Row(
                    f"{_CONCURRENT_CALLERS} concurrent callers x 1 event",
                    concurrent,
                    None,
                    floor,
                    ">= 5x floor",
                    concurrent >= 5 * floor,
                )
            )
            return rows
        finally:
            await store.close()
            await pool.close()


def format_table(rows: list[Row]) -> str:
    header = (
        "| scenario | ours (events/s) | COPY ceiling (events/s) | ours / ceiling "
        "| single-row floor (events/s) | ours / floor | target | met |"
    )
    lines = [header, "|" + "---|" * 8]
    for r in rows:
        ceiling = "-" if r.ceiling is None else f"{r.ceiling:,.0f}"
        vs_ceiling = "-" if r.vs_ceiling is None else f"{r.vs_ceiling:.2f}x"
        met = "" if r.met is None else ("yes" if r.met else "NO")
        lines.append(
            f"| {r.scenario} | {r.ours:,.0f} | {ceiling} | {vs_ceiling} | {r.floor:,.0f}"
            f" | {r.vs_floor:.1f}x | {r.target} | {met} |"
        )
    return "\n".join(lines)


@click.command("append")
@click.option("--seconds", default=3.0, show_default=True, help="Duration of each measurement.")
@click.option("--rounds", default=1, show_default=True, help="Repeat each measurement; report the median.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def append(ctx: click.Context, seconds: float, rounds: int, json_file: Path | None) -> None:
    """Append throughput through the real group-commit appender, beside COPY and single-row inserts."""
    database_url: str = ctx.obj["database_url"]
    rows = asyncio.run(run(database_url, seconds, rounds))
    click.echo(format_table(rows))
    if json_file is not None:
        figures: list[dict[str, Any]] = [
            {**asdict(r), "vs_ceiling": r.vs_ceiling, "vs_floor": r.vs_floor} for r in rows
        ]
        json_file.write_text(json.dumps({"seconds": seconds, "rounds": rounds, "rows": figures}, indent=2))
    if any(r.met is False for r in rows):
        ctx.exit(1)
