"""Rebuilding a read model: replay the whole log into a fresh generation, then swap it in.

The generation serving reads is untouched until the swap, so reads go on throughout and never see a half-built
model. The active instance keeps applying new events to the old generation meanwhile; after the swap its next
batch is refused, and it moves to the new generation at the position the rebuild reached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from csms.eventstore import EventCodec
from projections.leadership import Leadership
from projections.log_tail import LogTail
from projections.runner import Target


class RebuildError(RuntimeError):
    """The rebuild could not run or was overtaken (another rebuild of the same projector)."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    name: str
    generation: int  # now serving
    replaced: int
    position: int
    events: int  # events applied (the projector's topics only)
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


async def rebuild(
    target: Target,
    pool: asyncpg.Pool,
    database_url: str,
    codec: EventCodec,
    *,
    batch_size: int = 5000,
    retire_after: float = 5.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> RebuildReport:
    """Rebuild `target` from position 0 and swap it in; `retire_after` seconds later drop the old generation.

    The wait lets readers that looked up the old generation a moment ago finish with it.
    """
    lock = Leadership(database_url, f"csms.projection-rebuild:{target.name}")
    if not await lock.try_acquire():
        raise RebuildError(f"a rebuild of {target.name} is already running")
    try:
        started = time.perf_counter()
        tail = LogTail(pool, codec, target.projector.topics, batch_size)
        generation = await target.start_rebuild()
        position = applied = 0
        batch = await tail.read(position)
        while batch.checked_to > position:
            # Read the next batch while this one is applied: Postgres produces rows on one core while this
            # process decodes and applies on the other.
            upcoming = asyncio.create_task(tail.read(batch.checked_to))
            try:
                applied_now = await target.apply(
                    generation, batch.events, position, batch.checked_to, rebuilding=True
                )
            except BaseException:
                upcoming.cancel()
                raise
            if not applied_now:
                upcoming.cancel()
                raise RebuildError(f"{target.name}: generation {generation} was taken over by another")
            position = batch.checked_to
            applied += len(batch.events)
            if on_progress is not None:
                on_progress(position, applied)
            batch = await upcoming
        replaced = await target.activate(generation)
        seconds = time.perf_counter() - started
        await asyncio.sleep(retire_after)
        await target.retire(replaced)
        return RebuildReport(target.name, generation, replaced, position, applied, seconds)
    finally:
        await lock.release()
