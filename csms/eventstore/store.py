"""The event store's public face: append with group commit, read streams and the log, subscribe, track."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from uuid import UUID

import asyncpg

from csms.eventstore import recorder
from csms.eventstore.appender import BatchObserver, GroupCommitAppender
from csms.eventstore.connection import connect
from csms.eventstore.metrics import record_batch
from csms.eventstore.recorder import Submission
from csms.eventstore.records import AppendResult, NewEvent, RecordedEvent
from csms.eventstore.stream_reads import CoalescedStreamReads
from csms.eventstore.subscription import HeadWatcher, Subscription


class EventStore:
    """Postgres event store over one asyncpg pool (see `csms.eventstore.connection.create_pool`)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        database_url: str,
        *,
        window_seconds: float = 0.002,
        max_batch: int = 500,
        poll_interval: float = 1.0,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.pool = pool
        self._appender = GroupCommitAppender(
            functools.partial(connect, database_url),
            window_seconds=window_seconds,
            max_batch=max_batch,
            on_batch=_observers(on_batch),
        )
        self._stream_reads = CoalescedStreamReads(pool)
        self._watcher = HeadWatcher(database_url)
        self._watcher_started = False
        self._poll_interval = poll_interval

    async def close(self) -> None:
        """Commit pending appends and stop listening; the pool belongs to the caller."""
        await self._appender.close()
        await self._watcher.close()

    async def append(
        self, stream_id: UUID, expected_version: int, events: Sequence[NewEvent]
    ) -> AppendResult:
        """Append to one stream; raises `ConcurrencyError` if it is not at `expected_version`."""
        return await self._appender.append(stream_id, expected_version, events)

    async def append_all(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        """Append to several streams in one atomic commit."""
        return await self._appender.append_all(submissions)

    async def read_stream(
        self, stream_id: UUID, *, after_version: int = 0, to_version: int | None = None
    ) -> list[RecordedEvent]:
        if to_version is None:  # the common read (a whole stream, or its tail): batched with concurrent ones
            return await self._stream_reads.read(stream_id, after_version)
        return await recorder.read_stream(
            self.pool, stream_id, after_version=after_version, to_version=to_version
        )

    async def read_streams(self, after_versions: Mapping[UUID, int]) -> dict[UUID, list[RecordedEvent]]:
        """Several streams' events above a version each, read in one round trip."""
        return await recorder.read_streams(self.pool, after_versions)

    async def read_all(
        self, after_position: int = 0, limit: int = 1000, topics: Sequence[str] | None = None
    ) -> list[RecordedEvent]:
        return await recorder.read_all(self.pool, after_position, limit, topics)

    async def head_position(self) -> int:
        return await recorder.head_position(self.pool)

    async def load_tracking(self, consumer: str) -> int:
        return await recorder.load_tracking(self.pool, consumer)

    @staticmethod
    async def save_tracking(connection: recorder.Connection, consumer: str, position: int) -> None:
        """Record `consumer`'s position inside the caller's transaction (see `recorder.save_tracking`)."""
        await recorder.save_tracking(connection, consumer, position)

    async def subscribe(
        self,
        consumer: str,
        *,
        topics: Sequence[str] | None = None,
        start_after: int | None = None,
        batch_size: int = 500,
    ) -> Subscription:
        """A subscription for `consumer`, starting after its tracked position (or `start_after`).

        Use it as `async with await store.subscribe(name) as events: async for event in events: ...`.
        """
        if not self._watcher_started:
            await self._watcher.start()
            self._watcher_started = True
        return Subscription(
            self.pool,
            self._watcher,
            consumer,
            start_after=start_after,
            topics=topics,
            batch_size=batch_size,
            poll_interval=self._poll_interval,
        )


def _observers(extra: BatchObserver | None) -> BatchObserver:
    """Every batch goes to the store's metrics, and to the caller's observer when there is one."""
    if extra is None:
        return record_batch

    def both(submissions: int, events: int, seconds: float) -> None:
        record_batch(submissions, events, seconds)
        extra(submissions, events, seconds)

    return both
