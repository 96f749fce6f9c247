"""The benchmarks find the processes they meter by their command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from loadtests.scratch import pids_running


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--port", "48999"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_process_is_found_by_arguments_in_a_row_and_only_so(sleeper: subprocess.Popen[bytes]) -> None:
    assert pids_running("--port", "48999") == [sleeper.pid]
    assert pids_running("-c", "import time; time.sleep(60)", "--port") == [sleeper.pid]
    assert pids_running("48999", "--port") == []
    assert pids_running("--port", "48998") == []
