"""A process's start time and file descriptors are read from the system, and what cannot be read is NaN."""

from __future__ import annotations

import contextlib
import math
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from prometheus_client import REGISTRY

from csms.observability.process_metrics import (
    cpu_seconds,
    max_fds,
    open_fds,
    sample_process,
    start_time_seconds,
)


@contextlib.contextmanager
def _child() -> Iterator[subprocess.Popen[bytes]]:
    """A Python process that waits on its standard input."""
    with subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    ) as child:
        try:
            yield child
        finally:
            child.kill()  # leaving the `with` closes its pipe and reaps it


def _value(name: str) -> float:
    value = REGISTRY.get_sample_value(name)
    assert value is not None, name
    return value


def test_the_start_time_is_when_the_process_started() -> None:
    before = time.time()
    with _child() as child:
        # The boot time it is counted from has a resolution of a second.
        assert before - 1 <= start_time_seconds(psutil.Process(child.pid)) <= time.time() + 1


def test_the_start_time_is_set_as_the_module_is_imported() -> None:
    # Under `--workers` a sibling may export it before this process runs any role: never as 0.
    assert _value("csms_process_start_time_seconds") == start_time_seconds(psutil.Process())


def test_a_start_time_the_system_will_not_tell_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    process = psutil.Process()

    def denied() -> float:
        raise psutil.AccessDenied(process.pid)

    monkeypatch.setattr(process, "create_time", denied)
    before = time.time()
    assert before <= start_time_seconds(process) <= time.time()


def test_open_file_descriptors_are_counted(tmp_path: Path) -> None:
    process = psutil.Process()
    before = open_fds(process)
    assert before is not None
    with (tmp_path / "file").open("w"):
        assert open_fds(process) == before + 1
    assert open_fds(process) == before


def test_a_gone_process_has_no_count_of_descriptors() -> None:
    with _child() as child:
        process = psutil.Process(child.pid)
    assert open_fds(process) is None


def test_the_limit_is_the_soft_one_and_follows_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert max_fds() == (None if soft == resource.RLIM_INFINITY else soft)
    lowered = (soft if soft != resource.RLIM_INFINITY else 1 << 20) - 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert max_fds() == lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_process_is_sampled_into_the_gauges() -> None:
    process = psutil.Process()
    sample_process(process)
    assert _value("csms_process_resident_memory_bytes") > 0
    assert _value("csms_process_open_fds") > 0
    assert _value("csms_process_max_fds") == max_fds()


def test_an_unlimited_soft_limit_is_nan_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    # 0 would make `open / max` infinite and page someone; NaN makes the ratio NaN, which never alerts.
    unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    monkeypatch.setattr(resource, "getrlimit", lambda _which: unlimited)
    assert max_fds() is None
    sample_process(psutil.Process())
    assert math.isnan(_value("csms_process_max_fds"))


def test_the_cpu_time_used_since_the_last_sample_is_added_to_the_counter() -> None:
    process = psutil.Process()
    sample_process(process)
    counted = _value("csms_process_cpu_seconds_total")
    before = cpu_seconds(process)
    assert before is not None
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn a fifth of a second
        pass
    sample_process(process)

    used = cpu_seconds(process)
    assert used is not None
    added = _value("csms_process_cpu_seconds_total") - counted
    assert 0.2 - 0.02 <= added <= used - before + 0.05  # what was used, give or take the clock's ticks
    with _child() as child:
        gone = psutil.Process(child.pid)
    assert cpu_seconds(gone) is None
    sample_process(process)  # nothing more is counted twice
    assert _value("csms_process_cpu_seconds_total") - counted <= (cpu_seconds(process) or 0) - before + 0.05
