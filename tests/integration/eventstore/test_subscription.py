"""Subscriptions tail the log from a tracked position; tracking commits with the consumer's effects."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from csms.eventstore import EventStore, TrackingConflictError
from csms.eventstore.recorder import NOTIFY_CHANNEL
from csms.eventstore.subscription import HeadWatcher
from tests.integration.eventstore.conftest import new_event


async def test_subscription_resumes_from_the_tracked_position(
    store: EventStore, store_pool: asyncpg.Pool
) -> None:
    consumer = f"test-{uuid.uuid4()}"
    start = await store.head_position()
    async with store_pool.acquire() as connection, connection.transaction():
        await store.save_tracking(connection, consumer, start)
    stream = uuid.uuid4()
    await store.append(stream, 0, [new_event(i) for i in range(5)])

    async with await store.subscribe(consumer) as subscription:
        first = await subscription.next_batch()
    assert [e.data["n"] for e in first] == [0, 1, 2, 3, 4]

    # Processed the first two, recorded in the consumer's own transaction; then "crashed".
    async with store_pool.acquire() as connection, connection.transaction():
        await store.save_tracking(connection, consumer, first[1].position)

    async with await store.subscribe(consumer) as subscription:
        again = await subscription.next_batch()
    assert [e.data["n"] for e in again] == [2, 3, 4]


async def test_tracking_cannot_go_backwards_or_repeat(store: EventStore, store_pool: asyncpg.Pool) -> None:
    consumer = f"test-{uuid.uuid4()}"
    async with store_pool.acquire() as connection, connection.transaction():
        await store.save_tracking(connection, consumer, 10)

    async def apply_again(connection: asyncpg.pool.PoolConnectionProxy) -> None:
        async with connection.transaction():
            await connection.execute("CREATE TEMP TABLE effect (x int)")
            await store.save_tracking(connection, consumer, 10)

    async with store_pool.acquire() as connection:
        with pytest.raises(TrackingConflictError):
            await apply_again(connection)
        # The effect written in the same transaction was rolled back with it.
        assert await connection.fetchval("SELECT to_regclass('pg_temp.effect')") is None
    assert await store.load_tracking(consumer) == 10


async def test_notify_wakes_a_waiting_subscription_without_polling(
    store_pool: asyncpg.Pool, database_url: str
) -> None:
    store = EventStore(store_pool, database_url, poll_interval=60.0)
    try:
        async with await store.subscribe(
            f"test-{uuid.uuid4()}", start_after=await store.head_position()
        ) as subscription:
            waiting = asyncio.create_task(subscription.next_batch())
            await asyncio.sleep(0.2)
            assert not waiting.done()
            stream = uuid.uuid4()
            await store.append(stream, 0, [new_event(7)])
            # Far below the 60 s poll interval: only the NOTIFY can have woken it.
            events = await asyncio.wait_for(waiting, 10)
        assert [(e.stream_id, e.data["n"]) for e in events] == [(stream, 7)]
    finally:
        await store.close()


async def test_topic_filtered_subscription_skips_other_topics(store: EventStore) -> None:
    start = await store.head_position()
    stream = uuid.uuid4()
    await store.append(
        stream, 0, [new_event(1, "Test.Other"), new_event(2, "Test.Wanted"), new_event(3, "Test.Other")]
    )
    async with await store.subscribe(
        f"test-{uuid.uuid4()}", start_after=start, topics=["Test.Wanted"]
    ) as subscription:
        events = await subscription.next_batch()
    assert [e.data["n"] for e in events] == [2]


async def test_the_append_notification_names_the_new_head_and_the_batch_topics(
    store: EventStore, database_url: str
) -> None:
    payloads: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    try:
        await listener.add_listener(NOTIFY_CHANNEL, lambda *args: payloads.put_nowait(str(args[3])))
        await store.append(
            uuid.uuid4(),
            0,
            [new_event(1, "Test.Seen"), new_event(2, "Test.Booted"), new_event(3, "Test.Seen")],
        )
        payload = await asyncio.wait_for(payloads.get(), 10)
    finally:
        await listener.close()

    assert payload == f"{await store.head_position()} Test.Booted Test.Seen"


async def test_a_waiter_for_some_topics_sleeps_through_batches_of_others(
    store: EventStore, database_url: str
) -> None:
    watcher = HeadWatcher(database_url)
    await watcher.start()
    try:
        head = await store.head_position()
        wanted = asyncio.create_task(watcher.wait_beyond(head, 60.0, frozenset({"Test.Wanted", "Test.Also"})))
        anything = asyncio.create_task(watcher.wait_beyond(head, 60.0))

        await store.append(uuid.uuid4(), 0, [new_event(1, "Test.Other")])
        await asyncio.wait_for(anything, 10)
        await asyncio.sleep(0.2)  # the same notification reached both waiters by now
        assert not wanted.done()

        await store.append(uuid.uuid4(), 0, [new_event(2, "Test.Other"), new_event(3, "Test.Also")])
        await asyncio.wait_for(wanted, 10)
        # A later waiter whose position is behind that batch returns at once.
        await asyncio.wait_for(watcher.wait_beyond(head, 60.0, frozenset({"Test.Also"})), 1)
    finally:
        await watcher.close()
