"""Reading the log for one projector: its topics, decoded to domain events, and how far it was checked."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg

from csms.eventstore import EventCodec
from csms.eventstore.recorder import head_position, read_all
from csms.eventstore.records import RecordedEvent
from projections.projector import ProjectedEvent


@dataclass(frozen=True, slots=True)
class Batch:
    """Events after a position, and how far the log was checked: `checked_to` >= the last event's position.

    With a topic filter, an empty batch still moves a projector on: every position up to `checked_to` was
    committed when it was read (the store's ordering lock) and none was for this projector. `head` is the
    last committed position seen while reading (beyond `checked_to` when the batch was full).
    """

    events: list[ProjectedEvent]
    checked_to: int
    head: int


class LogTail:
    def __init__(self, pool: asyncpg.Pool, codec: EventCodec, topics: Iterable[str], batch_size: int) -> None:
        self._pool = pool
        self._codec = codec
        self._topics = sorted(topics)
        self._batch_size = batch_size

    async def read(self, after: int) -> Batch:
        head = await head_position(self._pool)
        if head <= after:
            return Batch([], after, head)
        recorded = await read_all(self._pool, after, self._batch_size, self._topics)
        events = [self.project(event) for event in recorded]
        # Events committed after the head was read may be in the batch: the head is at least the last one.
        head = max(head, recorded[-1].position) if recorded else head
        if len(recorded) == self._batch_size:
            return Batch(events, recorded[-1].position, head)
        return Batch(events, head, head)

    def project(self, recorded: RecordedEvent) -> ProjectedEvent:
        return ProjectedEvent(
            position=recorded.position,
            recorded_at=recorded.recorded_at,
            stream_id=recorded.stream_id,
            stream_version=recorded.stream_version,
            topic=recorded.topic,
            event=self._codec.decode(recorded),
            metadata=recorded.metadata,
        )
