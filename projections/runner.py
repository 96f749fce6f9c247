"""Running projectors: each one tails the log from its position and applies batches, one active instance each.

An instance that cannot take a projector's lock is its standby and tries again every `standby_retry`
seconds. The leader applies a batch, records the position with it (see the targets), and waits for the log
to move (NOTIFY, with polling as the fallback). A refused batch (a rebuild swapped generations, another
instance got ahead, Redis lost its data) makes it reload its generation and position and carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Protocol

import asyncpg

from csms.eventstore import EventCodec, TrackingConflictError
from csms.eventstore.subscription import HeadWatcher
from projections import metrics
from projections.leadership import Leadership
from projections.log_tail import LogTail
from projections.projector import ProjectedEvent, Projector

_log = logging.getLogger(__name__)


class Target(Protocol):
    """Where a projector's read model lives (`PostgresTarget`, `RedisTarget`)."""

    kind: str

    @property
    def name(self) -> str: ...

    @property
    def projector(self) -> Projector: ...

    async def active_generation(self) -> int: ...

    async def position(self, generation: int) -> int: ...

    async def apply(
        self,
        generation: int,
        events: Sequence[ProjectedEvent],
        from_position: int,
        to_position: int,
        *,
        rebuilding: bool = False,
    ) -> bool: ...

    async def rebuilding_generation(self) -> int | None: ...

    async def start_rebuild(self) -> int: ...

    async def activate(self, generation: int) -> int: ...

    async def retire(self, generation: int) -> None: ...


def lock_name(projection: str) -> str:
    return f"csms.projection:{projection}"


class ProjectionRunner:
    """Keeps one projector's read model up to date for as long as it runs (cancel it to stop)."""

    def __init__(
        self,
        target: Target,
        pool: asyncpg.Pool,
        database_url: str,
        watcher: HeadWatcher,
        codec: EventCodec,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        standby_retry: float = 2.0,
        heartbeat_interval: float = 5.0,
        idle_advance_interval: float = 1.0,
        head: metrics.LogHead | None = None,
    ) -> None:
        self.target = target
        self._watcher = watcher
        self._tail = LogTail(pool, codec, target.projector.topics, batch_size)
        self._topics = frozenset(target.projector.topics)
        self._leadership = Leadership(database_url, lock_name(target.name))
        self._poll_interval = poll_interval
        self._standby_retry = standby_retry
        self._heartbeat_interval = heartbeat_interval
        self._idle_advance_interval = idle_advance_interval
        # Shared by the runners of a process (see `projector_service`), so the gauge only moves forward.
        self._head = head or metrics.LogHead()
        self.leading = asyncio.Event()
        self.position = 0
        self.generation = 0

    async def run(self) -> None:
        try:
            while True:
                try:
                    if await self._leadership.try_acquire():
                        await self._lead()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                    _log.warning("projection %s: %s; retrying", self.target.name, error)
                finally:
                    self.leading.clear()
                    metrics.ACTIVE.labels(self.target.name).set(0)
                    await self._leadership.release()
                await asyncio.sleep(self._standby_retry)
        finally:
            await self._leadership.release()

    async def _lead(self) -> None:
        await self._leadership.heartbeat(self.target.name)
        _log.info("projection %s: active on this instance", self.target.name)
        applying = asyncio.create_task(self._apply_forever())
        try:
            while True:
                done, _ = await asyncio.wait({applying}, timeout=self._heartbeat_interval)
                if done:
                    applying.result()  # re-raises why it stopped
                    return
                await self._leadership.heartbeat(self.target.name)
        finally:
            applying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await applying

    async def _apply_forever(self) -> None:
        await self._reload()
        self.leading.set()
        name = self.target.name
        metrics.ACTIVE.labels(name).set(1)
        advanced_at = 0.0
        # How far the log has been read: at or past the recorded position. Between the two lie only events
        # of other topics, so the next read starts here, not at the position, and a quiet projector reads
        # each event of the log once instead of once per wake-up.
        checked = self.position
        while True:
            batch = await self._tail.read(checked)
            self._head.saw(batch.head)
            if batch.checked_to <= checked:
                metrics.LAG_SECONDS.labels(name).set(0)
                await self._watcher.wait_beyond(checked, self._poll_interval, self._topics)
                continue
            checked = batch.checked_to
            # Nothing of ours in what was read: record the move at most once per interval, so a quiet
            # projector's position (and its reported lag) follows the log without a write per wake-up.
            if not batch.events and time.monotonic() - advanced_at < self._idle_advance_interval:
                continue
            began = time.perf_counter()
            try:
                applied = await self.target.apply(self.generation, batch.events, self.position, checked)
            except TrackingConflictError:
                applied = False
            if not applied:
                metrics.RELOADS.labels(name).inc()
                _log.info("projection %s: generation or position moved; reloading", self.target.name)
                await self._reload()
                checked = self.position
                continue
            self.position = checked
            metrics.BATCH_SECONDS.labels(name).observe(time.perf_counter() - began)
            metrics.POSITION.labels(name).set(checked)
            if batch.events:
                metrics.EVENTS.labels(name).inc(len(batch.events))
                oldest = batch.events[0].recorded_at
                metrics.LAG_SECONDS.labels(name).set(max(0.0, time.time() - oldest.timestamp()))
            else:
                advanced_at = time.monotonic()

    async def _reload(self) -> None:
        self.generation = await self.target.active_generation()
        self.position = await self.target.position(self.generation)
