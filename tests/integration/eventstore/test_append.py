"""Appending: versions, optimistic concurrency, atomic multi-stream commits, group commit."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from csms.eventstore import ConcurrencyError, EventStore, Submission
from csms.eventstore.recorder import APPEND_LOCK, APPEND_LOCK_ROWS
from tests.integration.eventstore.conftest import new_event


async def test_append_assigns_versions_and_reads_back_in_order(store: EventStore) -> None:
    stream = uuid.uuid4()
    first = await store.append(stream, 0, [new_event(1), new_event(2)])
    second = await store.append(stream, 2, [new_event(3)])

    assert (first.version, second.version) == (2, 3)
    assert second.position == first.position + 1
    events = await store.read_stream(stream)
    assert [e.stream_version for e in events] == [1, 2, 3]
    assert [e.data["n"] for e in events] == [1, 2, 3]
    assert events[0].metadata == {"correlation_id": "c-1"}
    assert events[0].recorded_at.tzinfo is not None


async def test_stale_expected_version_names_stream_and_both_versions(store: EventStore) -> None:
    stream = uuid.uuid4()
    await store.append(stream, 0, [new_event(1), new_event(2)])

    with pytest.raises(ConcurrencyError) as raised:
        await store.append(stream, 1, [new_event(3)])

    assert raised.value.stream_id == stream
    assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
    assert str(stream) in str(raised.value)
    assert "expected version 1" in str(raised.value)
    assert "at version 2" in str(raised.value)
    assert len(await store.read_stream(stream)) == 2


async def test_appending_to_a_new_stream_twice_conflicts(store: EventStore) -> None:
    stream = uuid.uuid4()
    results = await asyncio.gather(
        store.append(stream, 0, [new_event(1)]),
        store.append(stream, 0, [new_event(2)]),
        return_exceptions=True,
    )
    assert sum(isinstance(r, ConcurrencyError) for r in results) == 1
    assert len(await store.read_stream(stream)) == 1


async def test_append_all_is_atomic_across_streams(store: EventStore) -> None:
    charger, session = uuid.uuid4(), uuid.uuid4()
    await store.append(charger, 0, [new_event(1)])

    with pytest.raises(ConcurrencyError):
        await store.append_all(
            [Submission(session, 0, [new_event(2)]), Submission(charger, 0, [new_event(3)])]
        )
    assert await store.read_stream(session) == []

    results = await store.append_all(
        [Submission(session, 0, [new_event(2)]), Submission(charger, 1, [new_event(3)])]
    )
    assert [(r.stream_id, r.version) for r in results] == [(session, 1), (charger, 2)]
    assert results[1].position == results[0].position + 1


async def test_group_commit_batches_concurrent_callers_and_fails_only_the_stale_one(
    store_pool: asyncpg.Pool, database_url: str
) -> None:
    batches: list[tuple[int, int]] = []
    store = EventStore(
        store_pool,
        database_url,
        window_seconds=0.2,  # wide enough that all 20 callers join one batch on a busy machine
        max_batch=1000,
        on_batch=lambda submissions, events, _seconds: batches.append((submissions, events)),
    )
    try:
        stale_stream = uuid.uuid4()
        await store.append(stale_stream, 0, [new_event(0)])
        batches.clear()
        streams = [uuid.uuid4() for _ in range(19)]
        calls = [store.append(s, 0, [new_event(i), new_event(i)]) for i, s in enumerate(streams)]
        calls.insert(7, store.append(stale_stream, 0, [new_event(99)]))

        results = await asyncio.gather(*calls, return_exceptions=True)

        failures = [r for r in results if isinstance(r, BaseException)]
        assert len(failures) == 1
        assert isinstance(failures[0], ConcurrencyError)
        assert failures[0].stream_id == stale_stream
        assert batches == [(20, 39)]
        for stream in streams:
            assert [e.stream_version for e in await store.read_stream(stream)] == [1, 2]
        assert len(await store.read_stream(stale_stream)) == 1
        positions = sorted(r.position for r in results if not isinstance(r, BaseException))
        assert positions == list(range(positions[0], positions[0] + 38, 2))
    finally:
        await store.close()


async def test_a_rejected_submission_does_not_fail_its_batch(
    store_pool: asyncpg.Pool, database_url: str
) -> None:
    """Data Postgres refuses (here: a NUL character in JSON) fails its caller alone."""
    store = EventStore(store_pool, database_url, window_seconds=0.2)
    try:
        good = [uuid.uuid4() for _ in range(5)]
        bad = uuid.uuid4()
        from csms.eventstore import NewEvent

        calls = [store.append(s, 0, [new_event(1)]) for s in good]
        calls.append(store.append(bad, 0, [NewEvent("Test.Bad", b'{"text": "\\u0000"}')]))
        results = await asyncio.gather(*calls, return_exceptions=True)

        assert all(not isinstance(r, BaseException) for r in results[:5])
        assert isinstance(results[5], asyncpg.PostgresError)
        for stream in good:
            assert len(await store.read_stream(stream)) == 1
    finally:
        await store.close()


async def test_n_writers_m_appends_with_conflicts_lose_and_duplicate_nothing(
    store: EventStore,
) -> None:
    streams = [uuid.uuid4() for _ in range(3)]
    writers, appends_each = 12, 25
    conflicts = 0

    async def writer(w: int) -> int:
        nonlocal conflicts
        done = 0
        for m in range(appends_each):
            stream = streams[(w + m) % len(streams)]
            while True:
                version = len(await store.read_stream(stream))
                try:
                    await store.append(stream, version, [new_event(w * 1000 + m)])
                except ConcurrencyError:
                    conflicts += 1
                    continue
                done += 1
                break
        return done

    committed = sum(await asyncio.gather(*(writer(w) for w in range(writers))))

    assert committed == writers * appends_each
    assert conflicts > 0, "the test must exercise conflicts to prove anything"
    seen: set[int] = set()
    total = 0
    for stream in streams:
        events = await store.read_stream(stream)
        assert [e.stream_version for e in events] == list(range(1, len(events) + 1))
        seen.update(e.data["n"] for e in events)
        total += len(events)
    assert total == committed
    assert len(seen) == committed  # each (writer, m) exactly once


async def test_one_batch_undoes_a_stale_commit_and_numbers_the_rest_without_gaps(
    store: EventStore, store_pool: asyncpg.Pool
) -> None:
    """Commits in one transaction see each other's versions; a commit stale half-way leaves no trace."""
    from csms.eventstore.recorder import write_batch

    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await store.append(b, 0, [new_event(0)])
    start = await store.head_position()
    batch = [
        [Submission(a, 0, [new_event(1), new_event(2)])],
        # a goes to 2 and 3 would be fine, but b is at 1, not 0: the whole commit is left out.
        [Submission(a, 2, [new_event(3)]), Submission(b, 0, [new_event(4)])],
        # So a is still at 2 for the next commit, and c and b go in with it.
        [
            Submission(c, 0, [new_event(5)]),
            Submission(a, 2, [new_event(6)]),
            Submission(b, 1, [new_event(7)]),
        ],
        [Submission(a, 4, [new_event(8)])],  # stale: a is at 3
    ]
    async with store_pool.acquire() as connection:
        outcomes = await write_batch(connection, batch)

    assert isinstance(outcomes[1], ConcurrencyError)
    assert (outcomes[1].stream_id, outcomes[1].expected_version, outcomes[1].actual_version) == (b, 0, 1)
    assert isinstance(outcomes[3], ConcurrencyError)
    assert (outcomes[3].stream_id, outcomes[3].expected_version, outcomes[3].actual_version) == (a, 4, 3)
    assert not isinstance(outcomes[0], ConcurrencyError)
    assert not isinstance(outcomes[2], ConcurrencyError)
    assert [(r.stream_id, r.version, r.position) for r in outcomes[0] + outcomes[2]] == [
        (a, 2, start + 2),
        (c, 1, start + 3),
        (a, 3, start + 4),
        (b, 2, start + 5),
    ]
    stored = await store.read_all(start)
    assert [(e.position, e.stream_id, e.stream_version) for e in stored] == [
        (start + 1, a, 1),
        (start + 2, a, 2),
        (start + 3, c, 1),
        (start + 4, a, 3),
        (start + 5, b, 2),
    ]


async def test_an_append_waits_while_an_earlier_one_to_its_stream_is_in_flight(
    store_pool: asyncpg.Pool, database_url: str
) -> None:
    """Two batches may be in flight at once, but never two to one stream: those commit in order."""
    store = EventStore(store_pool, database_url)
    stream = uuid.uuid4()

    async def waiting_at_the_lock() -> int:
        value = await store_pool.fetchval(
            f"SELECT count(*) FROM pg_locks WHERE NOT granted AND {APPEND_LOCK_ROWS}"
        )
        return int(value)

    try:
        async with store_pool.acquire() as blocker, blocker.transaction():
            await blocker.execute(f"SELECT pg_advisory_xact_lock({APPEND_LOCK})")
            first = asyncio.create_task(store.append(stream, 0, [new_event(1)]))
            await asyncio.sleep(0.2)  # sent alone, not batched with the next one
            second = asyncio.create_task(store.append(stream, 1, [new_event(2)]))
            await asyncio.sleep(0.2)
            # The first batch waits at the lock; a second slot is free, but the append to the same stream
            # stays queued until the first commits.
            assert await waiting_at_the_lock() == 1
        results = await asyncio.gather(first, second)
        assert [(r.version, r.position) for r in results] == [
            (1, results[0].position),
            (2, results[0].position + 1),
        ]
    finally:
        await store.close()
