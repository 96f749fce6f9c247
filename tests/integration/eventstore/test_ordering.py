"""Readers tailing the log by position never skip an event that commits late."""

from __future__ import annotations

import asyncio
import sys
import uuid

import asyncpg

from csms.eventstore import EventStore
from csms.eventstore.recorder import Submission, write_batch
from tests.integration.eventstore.conftest import new_event


async def test_reader_does_not_skip_an_event_whose_writer_sleeps_before_commit(
    store: EventStore, store_pool: asyncpg.Pool
) -> None:
    start = await store.head_position()
    slow_stream, fast_stream = uuid.uuid4(), uuid.uuid4()

    async with store_pool.acquire() as slow:
        outer = slow.transaction()
        await outer.start()
        # The slow writer has taken its position and inserted, but not committed.
        await write_batch(slow, [[Submission(slow_stream, 0, [new_event(1)])]])
        fast = asyncio.create_task(store.append(fast_stream, 0, [new_event(2)]))
        await asyncio.sleep(0.3)

        # Nothing is visible yet, and the fast writer has not jumped ahead of the slow one.
        assert await store.read_all(start) == []
        assert not fast.done()

        await outer.commit()
    fast_result = await fast

    events = await store.read_all(start)
    assert [e.stream_id for e in events] == [slow_stream, fast_stream]
    assert [e.position for e in events] == [start + 1, start + 2]
    assert fast_result.position == start + 2


async def test_positions_stay_gap_free_for_a_tailing_reader_with_several_writer_processes(
    store: EventStore, database_url: str
) -> None:
    start = await store.head_position()
    processes, batches, size = 3, 60, 3
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.integration.eventstore.append_worker",
            "append",
            database_url,
            str(batches),
            str(size),
            stdout=asyncio.subprocess.DEVNULL,
        )
        for _ in range(processes)
    ]
    expected = processes * batches * size
    observed: list[int] = []
    position = start
    # Tail the log the way a projector does: read after the last position seen, as fast as possible.
    while len(observed) < expected:
        for event in await store.read_all(position, limit=50):
            observed.append(event.position)
            position = event.position
        await asyncio.sleep(0)
    for worker in workers:
        assert await worker.wait() == 0

    assert observed == list(range(start + 1, start + expected + 1))
    streams: dict[uuid.UUID, list[int]] = {}
    for event in await store.read_all(start, limit=expected):
        streams.setdefault(event.stream_id, []).append(event.stream_version)
    assert len(streams) == processes * batches
    assert all(versions == [1, 2, 3] for versions in streams.values())
