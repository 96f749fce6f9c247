"""Fixtures for event store tests: a real store on the run's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import orjson
import pytest

from csms.eventstore import EventStore, NewEvent, create_pool


@pytest.fixture
async def store_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=20)
    yield pool
    await pool.close()


@pytest.fixture
async def store(store_pool: asyncpg.Pool, database_url: str) -> AsyncIterator[EventStore]:
    event_store = EventStore(store_pool, database_url, window_seconds=0.002, poll_interval=0.5)
    yield event_store
    await event_store.close()


def new_event(n: int = 0, topic: str = "Test.Happened") -> NewEvent:
    return NewEvent(topic=topic, data=orjson.dumps({"n": n}), metadata={"correlation_id": f"c-{n}"})
