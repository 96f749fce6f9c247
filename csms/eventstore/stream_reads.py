"""Reads of single streams made at the same time, sent to Postgres together.

When a gateway restarts, thousands of chargers authenticate at once and each needs its Charger, read whole
from a cold cache; during a session every command first reads its aggregates' tails. Each read alone is a
round trip, and the round trips (asyncpg's work on both ends, a pool checkout) were the largest part of a
reconnect storm's CPU. Reads that arrive while others are in flight go in the next `read_streams` query
(see `csms.batching`), up to `max_in_flight` queries at a time; a read alone costs what it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from csms.batching import Coalescer
from csms.eventstore import recorder
from csms.eventstore.records import RecordedEvent


class CoalescedStreamReads:
    def __init__(self, pool: asyncpg.Pool, *, max_in_flight: int = 4, max_batch: int = 500) -> None:
        self._pool = pool
        self._batches: Coalescer[tuple[UUID, int], list[RecordedEvent]] = Coalescer(
            self._run, name="event-store-stream-reads", max_in_flight=max_in_flight, max_batch=max_batch
        )

    @property
    def queries(self) -> int:
        """Round trips made, for tests and curiosity."""
        return self._batches.batches

    async def read(self, stream_id: UUID, after_version: int) -> list[RecordedEvent]:
        """The stream's events above `after_version`, in version order."""
        return await self._batches.submit((stream_id, after_version))

    async def _run(self, reads: Sequence[tuple[UUID, int]]) -> list[list[RecordedEvent]]:
        after: dict[UUID, int] = {}
        for stream_id, after_version in reads:  # one stream asked twice is read once, from the lower version
            after[stream_id] = min(after_version, after.get(stream_id, after_version))
        found = await recorder.read_streams(self._pool, after)
        return [[e for e in found[stream_id] if e.stream_version > v] for stream_id, v in reads]
