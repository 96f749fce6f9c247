"""The coalescer: concurrent requests share a batch; one after another, none is ever left waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from csms.batching import Coalescer


async def _doubled(requests: Sequence[int]) -> list[int]:
    await asyncio.sleep(0)
    return [2 * n for n in requests]


async def test_concurrent_requests_share_batches_and_get_their_own_results() -> None:
    coalescer: Coalescer[int, int] = Coalescer(_doubled, name="test")
    results = await asyncio.gather(*(coalescer.submit(n) for n in range(100)))
    assert results == [2 * n for n in range(100)]
    assert coalescer.batches == 1


async def test_a_request_right_after_a_batch_ends_is_still_sent() -> None:
    # Each request is made the moment the previous one's result arrives, while its batch's sender is ending.
    coalescer: Coalescer[int, int] = Coalescer(_doubled, name="test")
    for n in range(200):
        assert await asyncio.wait_for(coalescer.submit(n), 1) == 2 * n


async def test_a_failed_batch_fails_its_requests_and_the_next_one_runs() -> None:
    async def fussy(requests: Sequence[int]) -> list[int]:
        if 13 in requests:
            raise ValueError("unlucky")
        return list(requests)

    coalescer: Coalescer[int, int] = Coalescer(fussy, name="test")
    results = await asyncio.gather(coalescer.submit(1), coalescer.submit(13), return_exceptions=True)
    assert [type(r) for r in results] == [ValueError, ValueError]
    assert await coalescer.submit(2) == 2
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(fussy, name="test", max_in_flight=0)
