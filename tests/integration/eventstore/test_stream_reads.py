"""Concurrent single-stream reads share round trips and each still gets exactly its stream's events."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import orjson
import pytest

from csms.eventstore import EventStore, NewEvent
from csms.eventstore.stream_reads import CoalescedStreamReads


def _events(count: int) -> list[NewEvent]:
    return [NewEvent(topic="Test.Happened", data=orjson.dumps({"n": n})) for n in range(count)]


async def test_concurrent_reads_share_round_trips_and_get_their_own_events(store: EventStore) -> None:
    streams = {uuid.uuid4(): count for count in range(1, 41)}
    for stream_id, count in streams.items():
        await store.append(stream_id, 0, _events(count))
    reads = CoalescedStreamReads(store.pool, max_in_flight=2)
    wanted = [(stream_id, after) for stream_id, count in streams.items() for after in (0, count // 2)]

    results = await asyncio.gather(*(reads.read(stream_id, after) for stream_id, after in wanted))

    for (stream_id, after), events in zip(wanted, results, strict=True):
        assert [e.stream_id for e in events] == [stream_id] * (streams[stream_id] - after)
        assert [e.stream_version for e in events] == list(range(after + 1, streams[stream_id] + 1))
    assert reads.queries <= 3  # 80 reads asked at once: a batch in flight and what waited for it
    assert await reads.read(uuid.uuid4(), 0) == []  # an unknown stream is empty, alone in its batch


async def test_a_failed_batch_fails_its_readers_and_later_reads_work(store: EventStore) -> None:
    stream_id = uuid.uuid4()
    await store.append(stream_id, 0, _events(2))
    reads = CoalescedStreamReads(store.pool)
    with pytest.raises(asyncpg.DataError):
        await reads.read(stream_id, -(2**40))  # out of range for the int[] parameter: the query fails
    assert [e.stream_version for e in await reads.read(stream_id, 1)] == [2]
