"""The projection runner on real Postgres and Redis: exactly-once application, one active instance,
recovery after lost data, rebuild with a swap while reads go on, status, and the log's head it exports.

The test projectors record every event they apply under a primary key (Postgres) or in a set beside a
counter (Redis), so a second application of any event shows up as a constraint violation or a count
that no longer matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

import asyncpg
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from csms.domain import Driver
from csms.domain.company import Company
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.eventstore.recorder import Connection
from csms.eventstore.subscription import HeadWatcher
from projections.metrics import LogHead
from projections.postgres_target import PostgresTarget
from projections.projector import ProjectedEvent, RedisView, Tables
from projections.rebuild import rebuild
from projections.redis_target import RedisTarget, active_prefix
from projections.runner import ProjectionRunner, Target
from projections.status import projection_status

_TOPICS = frozenset({"Company.Created", "Company.Renamed"})


class SeenInPostgres:
    """Records (position, company, name) for the companies it watches; a replayed event violates the key."""

    def __init__(self, name: str, companies: set[uuid.UUID], *, fail_on: str | None = None) -> None:
        self.name = name
        self.topics = _TOPICS
        self.tables: Mapping[str, Sequence[str]] = {
            f"{name}_seen": [
                "CREATE TABLE {table} (position bigint PRIMARY KEY, company uuid NOT NULL,"
                " label text NOT NULL)"
            ]
        }
        self.companies = companies
        self.fail_on = fail_on

    def table(self) -> str:
        return f"{self.name}_seen"

    async def apply(self, connection: Connection, tables: Tables, events: Sequence[ProjectedEvent]) -> None:
        rows = [(e.position, e.stream_id, e.event.name) for e in events if e.stream_id in self.companies]
        await connection.executemany(
            f"INSERT INTO {tables[self.table()]} (position, company, label) VALUES ($1, $2, $3)", rows
        )
        if self.fail_on is not None and any(label == self.fail_on for _, _, label in rows):
            raise RuntimeError("projector failed after writing")


class SeenInRedis:
    def __init__(self, name: str, companies: set[uuid.UUID]) -> None:
        self.name = name
        self.topics = _TOPICS
        self.companies = companies

    async def apply(self, view: RedisView, events: Sequence[ProjectedEvent]) -> None:
        for event in events:
            if event.stream_id in self.companies:
                view.tx.sadd(view.key("seen"), event.position)
                view.tx.incr(view.key("count"))


class Fixture:
    def __init__(
        self, pool: asyncpg.Pool, store: EventStore, database_url: str, watcher: HeadWatcher
    ) -> None:
        self.pool = pool
        self.store = store
        self.database_url = database_url
        self.watcher = watcher
        self.repository = Repository(store, EventCodec(EVENT_TYPES))
        self.companies: set[uuid.UUID] = set()
        self.codec = EventCodec(EVENT_TYPES)

    async def add_companies(self, count: int, label: str = "Company") -> list[uuid.UUID]:
        ids = []
        for n in range(count):
            company = Company.create(uuid.uuid4(), f"{label} {n}", datetime.now(UTC))
            self.companies.add(company.id)  # before it is in the log, where a running projector may see it
            await self.repository.save(company)
            ids.append(company.id)
        return ids

    async def head(self) -> int:
        return await self.store.head_position()

    def runner(self, target: Target, head: LogHead | None = None) -> ProjectionRunner:
        return ProjectionRunner(
            target,
            self.pool,
            self.database_url,
            self.watcher,
            self.codec,
            batch_size=7,
            poll_interval=0.2,
            standby_retry=0.1,
            heartbeat_interval=0.2,
            idle_advance_interval=0.0,
            head=head,
        )


@pytest.fixture
async def fx(database_url: str) -> AsyncIterator[Fixture]:
    pool = await create_pool(database_url, max_size=10)
    store = EventStore(pool, database_url, poll_interval=0.2)
    watcher = HeadWatcher(database_url)
    await watcher.start()
    try:
        yield Fixture(pool, store, database_url, watcher)
    finally:
        await watcher.close()
        await store.close()
        await pool.close()


@contextlib.asynccontextmanager
async def running(runner: ProjectionRunner) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(runner.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def caught_up(target: Target, position: int) -> None:
    """Wait until the active generation of `target` has recorded `position`."""
    async with asyncio.timeout(20):
        while True:
            generation = await target.active_generation()
            if await target.position(generation) >= position:
                return
            await asyncio.sleep(0.02)


def _name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


async def _seen_rows(pool: asyncpg.Pool, projector: SeenInPostgres) -> list[tuple[int, uuid.UUID]]:
    rows = await pool.fetch(f"SELECT position, company FROM {projector.table()} ORDER BY position")
    return [(row["position"], row["company"]) for row in rows]


async def test_a_postgres_projector_sees_every_event_once_through_its_view(fx: Fixture) -> None:
    projector = SeenInPostgres(_name(), fx.companies)
    target = PostgresTarget(projector, fx.pool)
    await fx.add_companies(10)
    async with running(fx.runner(target)):
        await caught_up(target, await fx.head())
        await fx.add_companies(15)
        await caught_up(target, await fx.head())
    rows = await _seen_rows(fx.pool, projector)
    assert {company for _, company in rows} == fx.companies
    assert len(rows) == 25


async def test_a_failing_batch_rolls_back_its_rows_with_its_position(fx: Fixture) -> None:
    projector = SeenInPostgres(_name(), fx.companies, fail_on="Bad 0")
    target = PostgresTarget(projector, fx.pool)
    await fx.add_companies(3)
    generation = await target.active_generation()
    first = await fx.head()
    await fx.add_companies(1, label="Bad")
    batch_events = [
        event
        for event in await fx.store.read_all(0, 100_000, sorted(_TOPICS))
        if event.stream_id in fx.companies
    ]
    from projections.log_tail import LogTail

    tail = LogTail(fx.pool, fx.codec, _TOPICS, 100_000)
    projected = [tail.project(event) for event in batch_events]
    assert await target.apply(generation, [e for e in projected if e.position <= first], 0, first)
    with pytest.raises(RuntimeError, match="projector failed"):
        await target.apply(generation, [e for e in projected if e.position > first], first, await fx.head())
    # Neither the rows nor the position of the failed batch were kept: a retry applies it exactly once.
    assert await target.position(generation) == first
    assert len(await _seen_rows(fx.pool, projector)) == 3
    projector.fail_on = None
    rest = [e for e in projected if e.position > first]
    assert await target.apply(generation, rest, first, await fx.head())
    assert len(await _seen_rows(fx.pool, projector)) == 4


async def test_a_batch_from_a_stale_position_is_refused(fx: Fixture) -> None:
    projector = SeenInPostgres(_name(), fx.companies)
    target = PostgresTarget(projector, fx.pool)
    await fx.add_companies(2)
    head = await fx.head()
    generation = await target.active_generation()
    assert await target.apply(generation, [], 0, head)
    # Another writer still at 0 (it lost its lock and did not notice) writes nothing.
    assert not await target.apply(generation, [], 0, head + 1)
    assert await target.position(generation) == head


async def test_only_one_instance_applies_and_a_standby_takes_over(fx: Fixture) -> None:
    projector = SeenInPostgres(_name(), fx.companies)
    runners = [fx.runner(PostgresTarget(projector, fx.pool)) for _ in range(2)]
    await fx.add_companies(5)
    async with running(runners[0]) as first_task, running(runners[1]) as second_task:
        waits = [asyncio.create_task(runner.leading.wait()) for runner in runners]
        _, pending = await asyncio.wait(waits, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        for waiting in pending:
            waiting.cancel()
        leader, standby = runners if runners[0].leading.is_set() else runners[::-1]
        leader_task = first_task if leader is runners[0] else second_task
        await caught_up(leader.target, await fx.head())
        assert not standby.leading.is_set()
        leader_task.cancel()  # the active instance dies: its connection, and so its lock, goes away
        with contextlib.suppress(asyncio.CancelledError):
            await leader_task
        async with asyncio.timeout(10):
            await standby.leading.wait()
        await fx.add_companies(5)
        await caught_up(standby.target, await fx.head())
    rows = await _seen_rows(fx.pool, projector)
    assert len(rows) == 10
    assert {company for _, company in rows} == fx.companies


async def test_a_redis_projector_stores_its_position_with_its_data(
    fx: Fixture, redis: Redis, redis_key_prefix: str
) -> None:
    projector = SeenInRedis(_name(), fx.companies)
    target = RedisTarget(projector, redis, redis_key_prefix)
    await fx.add_companies(12)
    async with running(fx.runner(target)):
        await caught_up(target, await fx.head())
        prefix = await active_prefix(redis, redis_key_prefix, projector.name)
        assert int(await redis.get(prefix + "count") or 0) == 12
        # Redis loses everything (a restart without persistence): the model replays itself from 0.
        async for key in redis.scan_iter(match=f"{redis_key_prefix}rm:{projector.name}:*"):
            await redis.delete(key)
        await fx.add_companies(3)
        await caught_up(target, await fx.head())
    prefix = await active_prefix(redis, redis_key_prefix, projector.name)
    assert int(await redis.get(prefix + "count") or 0) == 15
    assert await redis.scard(prefix + "seen") == 15


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_rebuild_swaps_in_a_fresh_generation_while_reads_go_on(
    fx: Fixture, redis: Redis, redis_key_prefix: str, kind: str
) -> None:
    name = _name()
    target: Target
    if kind == "postgres":
        postgres_projector = SeenInPostgres(name, fx.companies)
        target = PostgresTarget(postgres_projector, fx.pool)

        async def count() -> int:
            return int(await fx.pool.fetchval(f"SELECT count(*) FROM {postgres_projector.table()}"))
    else:
        target = RedisTarget(SeenInRedis(name, fx.companies), redis, redis_key_prefix)

        async def count() -> int:
            return int(await redis.scard(await active_prefix(redis, redis_key_prefix, name) + "seen"))

    await fx.add_companies(40)
    runner = fx.runner(target)
    reads: list[int] = []
    stop_reading = asyncio.Event()

    async def read_continuously() -> None:
        while not stop_reading.is_set():
            reads.append(await count())
            await asyncio.sleep(0.005)

    async with running(runner):
        await caught_up(target, await fx.head())
        assert await count() == 40
        reader = asyncio.create_task(read_continuously())
        report = await rebuild(target, fx.pool, fx.database_url, fx.codec, batch_size=5, retire_after=0.2)
        await fx.add_companies(5)
        await caught_up(target, await fx.head())
        stop_reading.set()
        await reader
        final = await count()
    assert report.generation == 2
    assert report.replaced == 1
    assert report.events >= 40
    assert final == 45
    # Before, during and after the swap a reader saw a whole model (never a half-built one), growing only.
    assert reads
    assert all(40 <= seen <= 45 for seen in reads)
    assert reads == sorted(reads)


async def test_status_reports_position_lag_and_holder(fx: Fixture) -> None:
    projector = SeenInPostgres(_name(), fx.companies)
    target = PostgresTarget(projector, fx.pool)
    await fx.add_companies(3)
    [before] = await projection_status(fx.pool, [target])
    assert before.state == "never run"
    assert before.position == 0
    assert before.lag_events > 0
    assert before.lag_seconds > 0
    async with running(fx.runner(target)):
        await caught_up(target, await fx.head())
        [status] = await projection_status(fx.pool, [target])
    assert status.state == "running"
    assert status.holder is not None
    assert status.position == status.head
    assert status.lag_events == 0
    assert status.lag_seconds == 0


def _head_gauge() -> float | None:
    return REGISTRY.get_sample_value("csms_eventstore_head_position")


async def test_the_head_of_the_log_is_exported_as_the_runners_read_it(fx: Fixture) -> None:
    head = LogHead()  # one per process, shared by its runners
    runners = [fx.runner(PostgresTarget(SeenInPostgres(_name(), fx.companies), fx.pool), head) for _ in "ab"]
    await fx.add_companies(4)
    async with running(runners[0]), running(runners[1]):
        for runner in runners:
            await caught_up(runner.target, await fx.head())
        # A runner reads the head before it applies up to it.
        assert _head_gauge() == await fx.head()

        # An event of no topic of theirs moves the head too: lag in events is head minus position.
        at = datetime.now(UTC)
        await fx.repository.save(Driver.register(uuid.uuid4(), f"{uuid.uuid4().hex}@example.com", "D", at))
        appended = await fx.head()
        await caught_up(runners[0].target, appended)
        assert _head_gauge() == appended

    # A runner whose read answered later with an older head does not set the gauge back.
    head.saw(appended - 1)
    assert _head_gauge() == appended
