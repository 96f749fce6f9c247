"""Group commit: concurrent appends share one transaction, one round trip of inserts and one fsync."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from csms.eventstore.errors import EventStoreError
from csms.eventstore.metrics import record_append_error
from csms.eventstore.recorder import Commit, Outcome, Submission, write_batch
from csms.eventstore.records import AppendResult, NewEvent

_log = logging.getLogger(__name__)

Connector = Callable[[], Awaitable[asyncpg.Connection]]
"""Opens a connection for the writer (`csms.eventstore.connection.connect`)."""

BatchObserver = Callable[[int, int, float], None]
"""Called after each committed batch with (submissions, events, seconds): the metrics hook."""


@dataclass(slots=True)
class _Pending:
    commit: Commit
    size: int
    streams: frozenset[UUID]
    future: asyncio.Future[list[AppendResult]] = field(repr=False)


class GroupCommitAppender:
    """Batches appends from many concurrent callers into single transactions.

    Each `append` waits until its own events are committed (durable) or rejected. Appends that arrive
    while batches are being committed go together in the next one; after an idle spell the first one
    waits (at most `window_seconds`, or until `max_batch` events wait) while others keep joining it.
    A stale expected version fails only its own caller: the recorder leaves that submission out.

    Up to `max_in_flight` batches are sent at once, each on its own connection. They still commit one
    at a time, in the order Postgres grants them the table lock, but the next one is already waiting at
    the lock when the previous one commits instead of setting out only after its reply came back: the
    round trip to the server and back to a busy event loop is no longer paid between two commits. Batches
    in flight together never share a stream, so appends to one stream commit in the order they were made
    (an append waits while an earlier one to its stream is in flight); appends to different streams that
    were in flight together were concurrent, and commit in either order.

    The writer has connections of its own, opened with `connect` as batches need them, kept while appends
    keep coming and closed after `idle_release_seconds` without any. Borrowing one from the pool per batch
    would put the pool's reset query (a round trip) on every batch's way, and keeping pooled ones would take
    them from the readers (a fleet connecting at once reads every charger's stream through the pool).
    """

    def __init__(
        self,
        connect: Connector,
        *,
        window_seconds: float = 0.002,
        max_batch: int = 500,
        on_batch: BatchObserver | None = None,
        max_in_flight: int = 2,
        idle_release_seconds: float = 1.0,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._connect = connect
        self._max_in_flight = max_in_flight
        self._idle_release = idle_release_seconds
        self._in_flight: dict[asyncio.Task[None], frozenset[UUID]] = {}
        """Batches being committed, with their streams."""
        self._spare: list[asyncpg.Connection] = []
        """Connections kept between batches."""
        self._window = window_seconds
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._queued_events = 0
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def append(
        self, stream_id: UUID, expected_version: int, events: Sequence[NewEvent]
    ) -> AppendResult:
        """Append `events` to `stream_id` if it is at `expected_version`; return once committed.

        Raises `ConcurrencyError` (stale version) or the database error that failed the batch.
        """
        (result,) = await self.append_all([Submission(stream_id, expected_version, events)])
        return result

    async def append_all(self, submissions: Sequence[Submission]) -> list[AppendResult]:
        """Append to several streams atomically: all commit or, on any stale version, none does."""
        if self._closed:
            raise EventStoreError("the appender is closed")
        size = sum(len(s.events) for s in submissions)
        if size == 0:
            raise ValueError("nothing to append")
        if self._writer is None:
            self._writer = asyncio.create_task(self._run(), name="event-store-group-commit")
        future: asyncio.Future[list[AppendResult]] = asyncio.get_running_loop().create_future()
        streams = frozenset(s.stream_id for s in submissions)
        self._queue.append(_Pending(tuple(submissions), size, streams, future))
        self._queued_events += size
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        self._closed = True
        self._wakeup.set()
        if self._writer is not None:
            await self._writer

    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closed:
                        return
                    self._wakeup.clear()
                    if not await self._woken_within(self._idle_release):
                        await self._release_spare()
                        await self._wakeup.wait()
                    await self._gather_company()
                    continue
                if len(self._in_flight) < self._max_in_flight:
                    batch = self._take_batch()
                    if batch:
                        task = asyncio.create_task(self._commit(batch))
                        self._in_flight[task] = frozenset().union(*(p.streams for p in batch))
                        task.add_done_callback(self._finished)
                        continue
                # No free slot, or the next append's stream is in a batch in flight: wait for one to end.
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._in_flight:
                await asyncio.wait(self._in_flight)
            await self._release_spare()

    def _finished(self, task: asyncio.Task[None]) -> None:
        del self._in_flight[task]
        if not task.cancelled() and (error := task.exception()) is not None:
            # Its callers have their answer (the error); the writer goes on with the next batches.
            _log.error("group commit failed", exc_info=error)

    async def _woken_within(self, seconds: float) -> bool:
        if not self._spare:
            await self._wakeup.wait()
            return True
        try:
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()
        except TimeoutError:
            return False
        return True

    async def _gather_company(self) -> None:
        """After an idle spell, let appends arriving together share the first one's commit.

        The writer yields to the event loop for as long as newcomers keep joining the queue, at most
        `window_seconds` and until `max_batch` events wait. Callers woken by the previous commit
        (and requests that arrived in the same tick) all get in; a lone caller pays one loop tick,
        not the whole window. Appends arriving while a commit is in flight go in the next batch.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._window
        queued = -1
        while len(self._queue) != queued and self._queued_events < self._max_batch and loop.time() < deadline:
            queued = len(self._queue)
            await asyncio.sleep(0)

    def _take_batch(self) -> list[_Pending]:
        """The appends at the head of the queue, up to `max_batch` events and up to the first one whose
        stream is in a batch in flight (none at all if it is the very first)."""
        busy = frozenset().union(*self._in_flight.values())
        batch: list[_Pending] = []
        events = 0
        # Always take at least one submission, even one larger than max_batch.
        while self._queue and (not batch or events + self._queue[0].size <= self._max_batch):
            if busy and not busy.isdisjoint(self._queue[0].streams):
                break
            pending = self._queue.popleft()
            events += pending.size
            batch.append(pending)
        self._queued_events -= events
        return batch

    async def _commit(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            outcomes = await self._write([p.commit for p in batch])
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as error:
            if len(batch) == 1:
                record_append_error(type(error).__name__)
                _settle(batch[0].future, error)
                return
            # A bad submission (say, data the database rejects) must not fail its neighbours:
            # retry each alone. The failed transaction committed nothing, so this cannot duplicate.
            for pending in batch:
                try:
                    (outcome,) = await self._write([pending.commit])
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as single_error:
                    record_append_error(type(single_error).__name__)
                    _settle(pending.future, single_error)
                else:
                    _settle(pending.future, outcome)
            return
        except BaseException as error:
            for pending in batch:
                _settle(pending.future, error)
            raise
        for pending, outcome in zip(batch, outcomes, strict=True):
            _settle(pending.future, outcome)
        if self._on_batch is not None:
            events = sum(p.size for p in batch)
            self._on_batch(len(batch), events, loop.time() - started)

    async def _write(self, commits: list[Commit]) -> list[Outcome]:
        connection = self._spare.pop() if self._spare else await self._connect()
        try:
            outcomes = await write_batch(connection, commits)
        except asyncpg.PostgresError:
            self._spare.append(connection)  # the server refused the statement and rolled it back
            raise
        except BaseException:
            connection.terminate()  # broken, or interrupted half-way through a statement: never reuse it
            raise
        self._spare.append(connection)
        return outcomes

    async def _release_spare(self) -> None:
        while self._spare:
            connection = self._spare.pop()
            try:
                await connection.close(timeout=5)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                connection.terminate()


def _settle(future: asyncio.Future[list[AppendResult]], outcome: Outcome | BaseException) -> None:
    if future.done():  # the caller was cancelled; its events are committed (or not) regardless
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
