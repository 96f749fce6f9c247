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

    Each notification names the new head and the topics of the batch that moved it (migration 0009), so a
    waiter for some topics wakes only for a batch holding one of them: most appends (meter values, say) are
    of no interest to most subscribers, and each wake-up costs a subscriber two reads of the log. A payload
    without topics (a batch too varied to name them all) wakes everyone. Notifications can be lost (a
    dropped connection, a restart), so waiters also wake on a timer: NOTIFY is for latency, polling is for
    correctness.
    """

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._connection: asyncpg.Connection | None = None
        self._waiters: dict[asyncio.Event, frozenset[str] | None] = {}
        self.head = 0
        self._untopical_head = 0  # the last head notified without topics: news for every waiter
        self._topic_heads: dict[str, int] = {}

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
        head, topics = parse_notification(str(payload))
        if head is not None:
            self.head = max(self.head, head)
            if topics is None:
                self._untopical_head = max(self._untopical_head, head)
            for topic in topics or ():
                self._topic_heads[topic] = max(self._topic_heads.get(topic, 0), head)
        for waiter, wanted in self._waiters.items():
            if wanted is None or topics is None or not wanted.isdisjoint(topics):
                waiter.set()

    def head_for(self, topics: frozenset[str] | None) -> int:
        """The highest head notified by a batch holding one of `topics` (any batch, for None)."""
        if topics is None:
            return self.head
        return max(self._untopical_head, max((self._topic_heads.get(t, 0) for t in topics), default=0))

    async def wait_beyond(self, position: int, max_wait: float, topics: frozenset[str] | None = None) -> None:
        """Return when a notification says an event past `position` was appended (of one of `topics`, when
        given), or after `max_wait` seconds."""
        if self.head_for(topics) > position:
            return
        waiter = asyncio.Event()
        self._waiters[waiter] = topics
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.wait(), max_wait)
        finally:
            del self._waiters[waiter]


def parse_notification(payload: str) -> tuple[int | None, frozenset[str] | None]:
    """A notification's head and batch topics: "1234 Charger.Booted Charger.Seen". Without topics (or
    unreadable), None for them: the batch may hold any."""
    head, *topics = payload.split() or [""]
    if not head.isdigit():
        return None, None
    return int(head), frozenset(topics) if topics else None


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
        self._wake_for = None if topics is None else frozenset(topics)
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
            await self._watcher.wait_beyond(self.position, self._poll_interval, self._wake_for)
