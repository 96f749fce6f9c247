"""How long the garbage collector stops the world: with 10,000 connections a full collection walks millions of
objects, and every charger waits for it.

A `gc.callbacks` hook times each collection into a histogram by generation, and logs the long ones. Measured
under `csms bench fleet` (10,000 chargers), full collections grew to 1.3 s while finding nothing to collect:
the heap is long-lived state (connections, cached aggregates). `freeze_long_lived` therefore moves what has
survived into the collector's permanent generation every so often (`gc.freeze()`), after a young collection:
full collections then walk only what is new. Frozen objects are still freed by reference counting when they
die; only a reference cycle among them would outlive its use, and the pauses' own counts show the old
generation holding next to no cyclic garbage.

A periodic freeze does not help while the heap grows fast (a reconnect storm: 10,000 connections in seconds):
between two freezes every full collection walks everything that arrived since, and there are several. Measured
under `csms bench fleet`'s ramp-up, full collections took 5.6 s of 25 s. `freeze_after_full_collections`
therefore also freezes right after each full collection, whose survivors are by definition reachable: the next
full collection walks only what survived since, so its cost follows the growth since the last one, not the
heap. (A script growing a heap to 9 million objects: the longest full collection 776 ms without, 14 ms with.)

The freeze runs every second by default, not every minute: Python starts a young collection when its
allocations outnumber its deallocations by a threshold, and a server in its steady state replaces objects
(a cached aggregate's new copy frees the old one) rather than adding them. The young generation then grows
unchecked, between collections, to tens of thousands of objects: sampled under `csms bench fleet`, 30,500
young objects holding 128,000 references (waiting receive coroutines, their futures and timers, aggregate
copies), and young and middle collections that paused the gateway 10 to 90 ms every few seconds. Collected
and frozen every second, the young generation holds at most a second's survivors: fleet p99 fell from
78-155 ms to 21 ms. The price is the collector's: a cycle among objects older than a second is never
collected, so the code that owns long-lived objects must not leave cycles behind when it drops them: the
gateway breaks those aiohttp leaves around a closed connection (`write_api.ocpp.gateway`), and error answers
are returned, not raised, to aiohttp (`csms.web.problems`). Both were found by unfreezing a role after load
and collecting with `gc.DEBUG_SAVEALL`; afterwards 300 dropped chargers and 300 error answers on keep-alive
connections left no cycle (before: about 46 and 49 objects each). There is no gauge of the frozen objects:
`gc.get_freeze_count()` walks the whole permanent generation, and called every second it stopped the gateway
170-230 ms each time under `csms bench fleet` (10,000 chargers).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Histogram

_log = logging.getLogger(__name__)

PAUSES = Histogram(
    "csms_gc_pause_seconds",
    "Time the garbage collector held the process, by generation collected.",
    ["generation"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LONG_PAUSE_SECONDS = 0.1
_started: list[float] = []


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started.append(time.perf_counter())
        return
    if not _started:
        return
    pause = time.perf_counter() - _started.pop()
    generation = int(info.get("generation", -1))
    PAUSES.labels(str(generation)).observe(pause)
    if pause >= LONG_PAUSE_SECONDS:
        _log.warning(
            "long garbage collection pause",
            extra={
                "generation": generation,
                "pause_ms": round(pause * 1000, 1),
                "collected": info.get("collected"),
            },
        )


GcCallback = Callable[[str, dict[str, Any]], None]


def _hook(callback: GcCallback) -> None:
    if callback not in gc.callbacks:
        gc.callbacks.append(callback)


def _unhook(callback: GcCallback) -> None:
    if callback in gc.callbacks:
        gc.callbacks.remove(callback)


def watch_gc_pauses() -> None:
    """Start timing collections in this process (idempotent)."""
    _hook(_on_gc)


def stop_watching_gc_pauses() -> None:
    _unhook(_on_gc)


def _freeze_after_full(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def freeze_after_full_collections() -> None:
    """From now on, freeze the survivors of every full collection (idempotent)."""
    _hook(_freeze_after_full)


def stop_freezing_after_full_collections() -> None:
    _unhook(_freeze_after_full)


YOUNG_COLLECTIONS_PER_OLDER = 3
"""Young collections between two collections of the middle generation (Python's default: 10): with a larger
young threshold, fewer keep each of them short."""


def collect_young_every(objects: int) -> None:
    """Run a young collection every `objects` net allocations of tracked objects.

    Python's 700 suits programs whose objects either die at once or live for ever. A server's are in between:
    a CALL's coroutine, futures, buffered frames and the aggregate copy it caches live for some milliseconds,
    while hundreds of other CALLs allocate; at 700 most of them outlive one or two young collections and are
    walked by each, and then again by the middle generation's. A larger threshold lets them die first, but a
    young collection's pause grows with it: each surviving object costs microseconds in a large heap, where
    every reference it holds is a cache miss. Measured on the gateway: under `csms bench ingest` collections
    took 114 ms of every second at 700, 30 ms at 2,000 (with a middle collection every third young one) and
    8 ms at 20,000; under `csms bench fleet` (10,000 chargers) the longest pauses were about 50 ms, 90 ms and
    190 ms. The default, 2,000, is the middle way.
    """
    gc.set_threshold(objects, YOUNG_COLLECTIONS_PER_OLDER, gc.get_threshold()[2])


def freeze_survivors() -> None:
    """Collect the young generations, then move every surviving object out of the collector's reach."""
    gc.collect(1)
    gc.freeze()


async def freeze_long_lived(interval: float) -> None:
    """`freeze_survivors` every `interval` seconds, until cancelled."""
    while True:
        await asyncio.sleep(interval)
        freeze_survivors()
