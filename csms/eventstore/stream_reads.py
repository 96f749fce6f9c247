"""Reads of single streams made at the same time, sent to Postgres together.

When a gateway restarts, thousands of chargers authenticate at once and each needs its Charger, read whole
from a cold cache; during a session every command first reads its aggregates' tails. Each read alone is a
round trip, and the round trips (asyncpg's work on both ends, a pool checkout) were the largest part of a
reconnect storm's CPU. Reads that arrive while others are in flight wait for the next batch and go in one
`read_streams` query, up to `max_in_flight` batches at a time; a read alone costs what it did.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

import asyncpg

from csms.eventstore import recorder
from csms.eventstore.records import RecordedEvent

_Waiting = tuple[UUID, int, "asyncio.Future[list[RecordedEvent]]"]


class CoalescedStreamReads:
    def __init__(self, pool: asyncpg.Pool, *, max_in_flight: int = 4, max_batch: int = 500) -> None:
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._pool = pool
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._senders: set[asyncio.Task[None]] = set()
        self.queries = 0  # round trips made, for tests and curiosity

    async def read(self, stream_id: UUID, after_version: int) -> list[RecordedEvent]:
        """The stream's events above `after_version`, in version order."""
        future: asyncio.Future[list[RecordedEvent]] = asyncio.get_running_loop().create_future()
        self._waiting.append((stream_id, after_version, future))
        if len(self._senders) < self._max_in_flight:
            sender = asyncio.create_task(self._send(), name="event-store-stream-reads")
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        return await future

    async def _send(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            after: dict[UUID, int] = {}
            for stream_id, after_version, _future in batch:
                after[stream_id] = min(after_version, after.get(stream_id, after_version))
            self.queries += 1
            try:
                found = await recorder.read_streams(self._pool, after)
            except BaseException as error:  # every reader of the batch hears it
                for _stream_id, _after_version, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for stream_id, after_version, future in batch:
                if not future.done():
                    future.set_result([e for e in found[stream_id] if e.stream_version > after_version])
