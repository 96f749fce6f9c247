"""The process's resident memory as a metric that stays right when one role runs as several processes.

prometheus-client's own `process_resident_memory_bytes` describes only the process that answers a scrape;
with `csms serve --workers N` that is one worker picked by the kernel. This gauge is written by every process
into the shared metrics directory and exported per process (`pid` label) by whichever one is scraped.
"""

from __future__ import annotations

import asyncio

import psutil
from prometheus_client import Gauge

RESIDENT_BYTES = Gauge(
    "csms_process_resident_memory_bytes",
    "Resident memory of a CSMS process.",
    multiprocess_mode="liveall",
)


async def watch_process_memory(interval: float = 5.0) -> None:
    """Sample this process's resident set size every `interval` seconds until cancelled."""
    process = psutil.Process()
    while True:
        RESIDENT_BYTES.set(process.memory_info().rss)
        await asyncio.sleep(interval)
