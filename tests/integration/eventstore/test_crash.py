"""A process killed in the middle of an append leaves nothing partial behind."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

from csms.eventstore import EventStore
from tests.integration.eventstore.conftest import new_event


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.eventstore.append_worker",
        *args,
        stdout=asyncio.subprocess.PIPE,
    )


async def test_killed_inside_the_transaction_commits_nothing_and_releases_the_lock(
    store: EventStore, database_url: str
) -> None:
    stream = uuid.uuid4()
    start = await store.head_position()
    worker = await _spawn("hold", database_url, str(stream), "200")
    assert worker.stdout is not None
    assert (await asyncio.wait_for(worker.stdout.readline(), 30)).strip() == b"HOLDING"

    worker.send_signal(signal.SIGKILL)
    await worker.wait()

    # Postgres aborts the dead client's transaction: the next append gets the lock and the next position.
    result = await asyncio.wait_for(store.append(uuid.uuid4(), 0, [new_event()]), 30)
    assert result.position == start + 1
    assert await store.read_stream(stream) == []


async def test_killed_while_appending_leaves_only_whole_appends(store: EventStore, database_url: str) -> None:
    start = await store.head_position()
    worker = await _spawn("append", database_url, "2000", "10")
    assert worker.stdout is not None
    for _ in range(50):  # let it get well into the run
        await asyncio.wait_for(worker.stdout.readline(), 30)
    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    await asyncio.sleep(0.2)

    events = await store.read_all(start, limit=100_000)
    per_stream: dict[uuid.UUID, list[int]] = {}
    for event in events:
        per_stream.setdefault(event.stream_id, []).append(event.stream_version)
    assert len(per_stream) >= 50
    assert all(versions == list(range(1, 11)) for versions in per_stream.values())
    assert [e.position for e in events] == list(range(start + 1, start + len(events) + 1))
