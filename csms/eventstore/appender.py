"""Group commit: concurrent appends share one transaction, one round trip of inserts and one fsync."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from csms.eventstore.errors import EventStoreError
from csms.eventstore.recorder import Commit, Outcome, Submission, write_batch
from csms.eventstore.records import AppendResult, NewEvent

BatchObserver = Callable[[int, int, float], None]
"""Called after each committed batch with (submissions, events, seconds): the metrics hook."""


@dataclass(slots=True)
class _Pending:
    commit: Commit
    size: int
    future: asyncio.Future[list[AppendResult]] = field(repr=False)


class GroupCommitAppender:
    """Batches appends from many concurrent callers into single transactions.

    Each `append` waits until its own events are committed (durable) or rejected. Appends that arrive
    while a batch is being committed go together in the next one; after an idle spell the first one
    waits (at most `window_seconds`, or until `max_batch` events wait) while others keep joining it.
    A stale expected version fails only its own caller: the recorder leaves that submission out.

    The writer keeps one pooled connection while appends keep coming and gives it back after
    `idle_release_seconds` without any: borrowing one per batch would put the pool's reset query (a round
    trip) between every commit and the next.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        window_seconds: float = 0.002,
        max_batch: int = 500,
        on_batch: BatchObserver | None = None,
        idle_release_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._idle_release = idle_release_seconds
        self._connection: PoolConnectionProxy | None = None
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
        self._queue.append(_Pending(tuple(submissions), size, future))
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
                        await self._release()
                        await self._wakeup.wait()
                    await self._gather_company()
                    continue
                batch = self._take_batch()
                await self._commit(batch)
        finally:
            await self._release()

    async def _woken_within(self, seconds: float) -> bool:
        if self._connection is None:
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
        batch: list[_Pending] = []
        events = 0
        # Always take at least one submission, even one larger than max_batch.
        while self._queue and (not batch or events + self._queue[0].size <= self._max_batch):
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
                _settle(batch[0].future, error)
                return
            # A bad submission (say, data the database rejects) must not fail its neighbours:
            # retry each alone. The failed transaction committed nothing, so this cannot duplicate.
            for pending in batch:
                try:
                    (outcome,) = await self._write([pending.commit])
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as single_error:
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
        if self._connection is None:
            self._connection = await self._pool.acquire()
        try:
            return await write_batch(self._connection, commits)
        except asyncpg.PostgresError:
            raise  # the server refused the statement and rolled it back; the connection is fine
        except BaseException:
            # Broken, or interrupted half-way through a statement: never reuse it (the pool replaces it).
            await self._release()
            raise

    async def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.release(connection)


def _settle(future: asyncio.Future[list[AppendResult]], outcome: Outcome | BaseException) -> None:
    if future.done():  # the caller was cancelled; its events are committed (or not) regardless
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
