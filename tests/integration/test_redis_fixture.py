"""The `redis` fixture: a working client whose run-prefixed keys are gone after each test.

The second test relies on running after the first (pytest keeps file order); run alone, it passes trivially.
"""

from __future__ import annotations

from redis.asyncio import Redis


async def test_the_client_reads_its_own_writes(redis: Redis, redis_key_prefix: str) -> None:
    await redis.set(f"{redis_key_prefix}fixture:probe", "1")
    await redis.hset(f"{redis_key_prefix}fixture:hash", mapping={"a": "1"})

    assert await redis.get(f"{redis_key_prefix}fixture:probe") == b"1"


async def test_keys_of_the_run_are_deleted_after_each_test(redis: Redis, redis_key_prefix: str) -> None:
    assert [key async for key in redis.scan_iter(match=f"{redis_key_prefix}fixture:*")] == []
