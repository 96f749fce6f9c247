"""Concurrent callers' Redis commands go out together, each caller's effect intact, failures to everyone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from csms.redis_support import CoalescedPipeline


class CountingPipelines:
    """The real client, counting the pipelines executed through it."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.executed = 0

    def pipeline(self, *, transaction: bool) -> Pipeline:
        pipe = self.redis.pipeline(transaction=transaction)
        execute = pipe.execute

        async def counted(raise_on_error: bool = True) -> list[object]:
            self.executed += 1
            return await execute(raise_on_error)

        pipe.execute = counted  # type: ignore[method-assign]
        return pipe


def setting(key: str, value: str) -> Callable[[Pipeline], object]:
    return lambda pipe: pipe.set(key, value)


def deleting(key: str) -> Callable[[Pipeline], object]:
    return lambda pipe: pipe.delete(key)


async def test_concurrent_callers_share_round_trips_and_each_gets_its_write(
    redis: Redis, redis_key_prefix: str
) -> None:
    counting = CountingPipelines(redis)
    coalesced = CoalescedPipeline(counting, transaction=True)  # type: ignore[arg-type]
    keys = [f"{redis_key_prefix}coalesced:{n}" for n in range(200)]

    await asyncio.gather(*(coalesced.execute(setting(key, key)) for key in keys))

    assert await redis.mget(keys) == [key.encode() for key in keys]
    assert counting.executed == 1  # all 200 asked before the first round trip began: one batch

    # Callers arriving while a batch is in flight form the next one.
    first = asyncio.create_task(coalesced.execute(lambda pipe: pipe.set(keys[0], "again")))
    await asyncio.sleep(0)  # the first batch is on its way
    await asyncio.gather(first, *(coalesced.execute(deleting(key)) for key in keys[1:]))
    assert counting.executed == 3
    assert await redis.exists(*keys) == 1


async def test_a_failed_batch_fails_each_of_its_callers_and_the_next_batch_still_runs(
    redis: Redis, redis_key_prefix: str
) -> None:
    coalesced = CoalescedPipeline(redis, transaction=False)
    key = f"{redis_key_prefix}coalesced:text"
    await redis.set(key, "not a number")

    results = await asyncio.gather(
        coalesced.execute(lambda pipe: pipe.set(f"{redis_key_prefix}coalesced:first", 1)),
        coalesced.execute(lambda pipe: pipe.incr(key)),  # fails: the value is not an integer
        coalesced.execute(lambda pipe: pipe.set(f"{redis_key_prefix}coalesced:third", 3)),
        return_exceptions=True,
    )
    # One batch (all three asked before it went): the bad command fails it for everyone in it.
    assert all(isinstance(result, ResponseError) for result in results)
    await coalesced.execute(lambda pipe: pipe.set(f"{redis_key_prefix}coalesced:later", 4))
    assert await redis.get(f"{redis_key_prefix}coalesced:later") == b"4"


async def test_nothing_is_sent_for_nobody(redis: Redis) -> None:
    counting = CountingPipelines(redis)
    CoalescedPipeline(counting, transaction=True)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    assert counting.executed == 0
