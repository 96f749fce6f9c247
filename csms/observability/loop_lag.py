"""How late the event loop runs: the symptom every other slowness of an asyncio process ends up in.

A task asks to wake every `interval` seconds and records by how much it overslept; a long CPU-bound step,
a blocking call or a loop starved of CPU shows up here before it shows up in every latency.
"""

from __future__ import annotations

import asyncio
import time

from prometheus_client import Gauge, Histogram

LAG = Histogram(
    "csms_event_loop_lag_seconds",
    "How much later than asked the event loop ran a timer (sampled every half second).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
LAST_LAG = Gauge(
    "csms_event_loop_lag_last_seconds",
    "The most recent event loop lag sample (the worst of a role's processes).",
    multiprocess_mode="livemax",
)


async def watch_loop_lag(interval: float = 0.5) -> None:
    """Sample the event loop's lag until cancelled."""
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(interval)
        late = max(0.0, time.perf_counter() - asked - interval)
        LAG.observe(late)
        LAST_LAG.set(late)
