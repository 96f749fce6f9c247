"""A separate OS process that appends through the real appender: used by ordering and crash tests.

Modes:
  append DSN COUNT SIZE      append COUNT batches of SIZE events, one new stream each; print progress
  hold DSN STREAM SIZE       insert SIZE events inside an open transaction, print HOLDING, then sleep
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import orjson

from csms.eventstore import EventStore, NewEvent, Submission, create_pool
from csms.eventstore.recorder import write_batch


async def append(dsn: str, count: int, size: int) -> None:
    pool = await create_pool(dsn, max_size=4)
    store = EventStore(pool, dsn, window_seconds=0.001)
    try:

        async def one(i: int) -> None:
            events = [NewEvent("Test.Worker", orjson.dumps({"i": i, "k": k})) for k in range(size)]
            await store.append(uuid.uuid4(), 0, events)
            print(f"committed {i}", flush=True)

        await asyncio.gather(*(one(i) for i in range(count)))
    finally:
        await store.close()
        await pool.close()


async def hold(dsn: str, stream: str, size: int) -> None:
    pool = await create_pool(dsn, max_size=1)
    async with pool.acquire() as connection:
        outer = connection.transaction()
        await outer.start()
        events = [NewEvent("Test.Held", orjson.dumps({"k": k})) for k in range(size)]
        await write_batch(connection, [[Submission(uuid.UUID(stream), 0, events)]])
        print("HOLDING", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    mode, dsn = sys.argv[1], sys.argv[2]
    if mode == "append":
        asyncio.run(append(dsn, int(sys.argv[3]), int(sys.argv[4])))
    else:
        asyncio.run(hold(dsn, sys.argv[3], int(sys.argv[4])))
