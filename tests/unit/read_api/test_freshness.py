"""Read-your-writes waits share their position reads: one read at a time per projection, whoever asks."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from read_api.freshness import Freshness


class _Positions:
    """A projection whose position moves one step per read; a read takes `seconds` (or until released)."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.reads = 0
        self.seconds = seconds
        self.release = asyncio.Event()
        self.release.set()
        self.failure: Exception | None = None

    async def position_of(self, projection: str) -> int:
        assert projection == "session_history"
        self.reads += 1
        await self.release.wait()
        await asyncio.sleep(self.seconds)
        if self.failure is not None:
            raise self.failure
        return self.reads


def _request(min_position: int | None = None) -> web.Request:
    query = "" if min_position is None else f"?minPosition={min_position}"
    return make_mocked_request("GET", f"/sessions/s{query}")


async def test_callers_asking_together_share_one_read() -> None:
    positions = _Positions()
    positions.release.clear()
    freshness = Freshness(positions.position_of)

    waits = [asyncio.ensure_future(freshness.wait(_request(), "session_history")) for _ in range(50)]
    await asyncio.sleep(0.01)
    positions.release.set()

    assert await asyncio.gather(*waits) == [1] * 50
    assert positions.reads == 1


async def test_waiters_for_a_position_poll_together_and_all_reach_it() -> None:
    positions = _Positions(seconds=0.005)
    freshness = Freshness(positions.position_of, max_wait=5.0, poll_interval=0.001)

    reached = await asyncio.gather(*(freshness.wait(_request(6), "session_history") for _ in range(20)))

    assert all(position >= 6 for position in reached)
    # Each waiter needed six positions; alone, the twenty would have read at least 120 times.
    assert positions.reads < 20


async def test_a_caller_that_gives_up_does_not_cancel_the_read_the_others_wait_for() -> None:
    positions = _Positions()
    positions.release.clear()
    freshness = Freshness(positions.position_of)
    leaving = asyncio.ensure_future(freshness.position("session_history"))
    staying = asyncio.ensure_future(freshness.position("session_history"))
    await asyncio.sleep(0.01)

    leaving.cancel()
    positions.release.set()

    assert await staying == 1
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_read_fails_every_caller_and_the_next_caller_reads_again() -> None:
    positions = _Positions(seconds=0.005)
    positions.failure = ConnectionResetError("database went away")
    freshness = Freshness(positions.position_of)

    failed = await asyncio.gather(
        *(freshness.position("session_history") for _ in range(3)), return_exceptions=True
    )
    positions.failure = None

    assert [type(error) for error in failed] == [ConnectionResetError] * 3
    assert await freshness.position("session_history") == 2
