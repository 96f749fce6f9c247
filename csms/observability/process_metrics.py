"""The process's start time, CPU time, memory and file descriptors as metrics that stay right when one role
runs as several processes.

prometheus-client's own `process_*` series describe the process that answers a scrape, and under
`csms serve --workers N` (its multi-process mode) they are not exported at all. These gauges are written by
every process into the shared metrics directory and exported per process (`pid` label) by whichever one is
scraped; a process that runs alone exports them as plain gauges. The CPU time is a counter, summed over the
role's processes (those that have exited included, so that it never goes down). They are read through psutil
(from /proc/self on Linux) and getrlimit, so they exist wherever the CSMS runs, not only where /proc does.
"""

from __future__ import annotations

import asyncio
import math
import resource
import time

import psutil
from prometheus_client import Counter, Gauge

START_TIME = Gauge(
    "csms_process_start_time_seconds",
    "Start time of a CSMS process since the Unix epoch.",
    multiprocess_mode="liveall",
)
RESIDENT_BYTES = Gauge(
    "csms_process_resident_memory_bytes",
    "Resident memory of a CSMS process.",
    multiprocess_mode="liveall",
)
OPEN_FDS = Gauge(
    "csms_process_open_fds",
    "File descriptors a CSMS process holds open.",
    multiprocess_mode="liveall",
)
CPU_SECONDS = Counter(
    "csms_process_cpu_seconds",
    "CPU time (user and system) spent by the CSMS processes.",
)
MAX_FDS = Gauge(
    "csms_process_max_fds",
    "The soft limit on a CSMS process's open file descriptors (NaN: unlimited).",
    multiprocess_mode="liveall",
)


def start_time_seconds(process: psutil.Process) -> float:
    """When `process` started, in seconds since the Unix epoch; now, if the system will not say."""
    try:
        return process.create_time()
    except psutil.Error:
        return time.time()


def open_fds(process: psutil.Process) -> int | None:
    """How many file descriptors `process` holds open; None if that cannot be read (it is gone)."""
    try:
        return process.num_fds()
    except psutil.Error:
        return None


def max_fds() -> int | None:
    """This process's soft limit on open file descriptors; None when unlimited."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


# Set as the gauge is made, not when the watcher starts: under `--workers` whichever process answers a scrape
# exports this one's series from the moment the gauge exists, and a start time seen going from 0 to its value
# would count as a restart.
START_TIME.set(start_time_seconds(psutil.Process()))


def cpu_seconds(process: psutil.Process) -> float | None:
    """The CPU time `process` has used, user and system; None if that cannot be read (it is gone)."""
    try:
        times = process.cpu_times()
    except psutil.Error:
        return None
    return float(times.user + times.system)


_counted_cpu: dict[int, float] = {}  # per process sampled: the CPU time already added to the counter


def sample_process(process: psutil.Process) -> None:
    """Set the gauges that change while the process runs, and add the CPU time used since the last sample."""
    used = cpu_seconds(process)
    if used is not None:
        counted = _counted_cpu.get(process.pid, 0.0)
        if used > counted:
            CPU_SECONDS.inc(used - counted)
            _counted_cpu[process.pid] = used
    RESIDENT_BYTES.set(process.memory_info().rss)
    # NaN, not 0, for what cannot be read: a limit of 0 would make `open / max` infinite, an alert.
    OPEN_FDS.set(_or_nan(open_fds(process)))
    MAX_FDS.set(_or_nan(max_fds()))


async def watch_process(interval: float = 5.0) -> None:
    """Sample this process's CPU time, memory and descriptors every `interval` seconds until cancelled."""
    process = psutil.Process()
    while True:
        sample_process(process)
        await asyncio.sleep(interval)


def _or_nan(value: int | None) -> float:
    return math.nan if value is None else float(value)
