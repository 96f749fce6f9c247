"""Tail the global log from a consumer's tracked position, woken by NOTIFY, polling as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import TracebackType

import asyncpg

from csms.eventstore.recorder import NOTIFY_CHANNEL, head_position, load_tracking, read_all
from csms.eventstore.records import RecordedEvent


class HeadWatcher:
    """One LISTEN connection per process that tells waiting subscriptions the log moved on.

    Notifications can be lost (a dropped connection, a restart), so waiters also wake on a timer:
    NOTIFY is for latency, polling is for correctness.
    """

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._connection: asyncpg.Connection | None = None
        self._waiters: set[asyncio.Event] = set()
        self.head = 0

    async def start(self) -> None:
        self._connection = await asyncpg.connect(self._database_url)
        await self._connection.add_listener(NOTIFY_CHANNEL, self._on_notify)

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await self._connection.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            await self._connection.close()
            self._connection = None

    def _on_notify(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        with contextlib.suppress(ValueError, TypeError):
            self.head = max(self.head, int(str(payload)))
        for waiter in self._waiters:
            waiter.set()

    async def wait_beyond(self, position: int, max_wait: float) -> None:
        """Return when a notification says the head passed `position`, or after `max_wait` seconds."""
        if self.head > position:
            return
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), max_wait)
        finally:
            self._waiters.discard(waiter)


class Subscription:
    """An async iterator over the log's events after a position, for one named consumer.

    The subscription remembers how far it has *delivered*; the consumer records how far it has
    *processed* with `save_tracking` in its own transaction. A restarted consumer resumes from its
    tracked position, so every event is processed, and (with tracking in the same transaction as the
    effect) processed once.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        watcher: HeadWatcher,
        consumer: str,
        *,
        start_after: int | None = None,
        topics: Sequence[str] | None = None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
    ) -> None:
        self.consumer = consumer
        self._pool = pool
        self._watcher = watcher
        self._start_after = start_after
        self._topics = topics
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self.position = 0

    async def __aenter__(self) -> Subscription:
        if self._start_after is None:
            self.position = await load_tracking(self._pool, self.consumer)
        else:
            self.position = self._start_after
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[RecordedEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[RecordedEvent]:
        while True:
            for event in await self.next_batch():
                yield event

    async def next_batch(self) -> list[RecordedEvent]:
        """The next events after the delivered position, waiting (NOTIFY or poll) until there are some."""
        while True:
            # For a filtered read, note the head *before* reading: positions up to it are committed
            # (the recorder's lock guarantees nothing lower can appear later), so after an empty read
            # the subscription may skip to it instead of rescanning other topics' events.
            head = await head_position(self._pool) if self._topics is not None else 0
            events = await read_all(self._pool, self.position, self._batch_size, self._topics)
            if events:
                self.position = events[-1].position
                return events
            self.position = max(self.position, head)
            await self._watcher.wait_beyond(self.position, self._poll_interval)
