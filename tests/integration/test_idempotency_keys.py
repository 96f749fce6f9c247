"""Idempotency keys in Postgres: claims, answers, mismatches, a dead request's claim taken over, purging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from csms.eventstore import create_pool
from write_api.idempotency import Claim, IdempotencyKeys, StoredAnswer, request_hash


@pytest.fixture
async def keys_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=4, flush_on_commit=False)
    yield pool
    await pool.close()


def _caller() -> str:
    return f"account:{uuid.uuid4()}"


async def test_an_answered_key_replays_its_answer_and_refuses_another_body(keys_pool: asyncpg.Pool) -> None:
    keys = IdempotencyKeys(keys_pool)
    caller, key = _caller(), "k-1"
    body = request_hash("POST", "/sessions/start", b'{"chargerId":"CP-1"}')
    answer = StoredAnswer(201, {"Content-Type": "application/json"}, b'{"sessionId":"s"}')

    assert await keys.claim(caller, key, body) == (Claim.NEW, None)
    assert await keys.claim(caller, key, body) == (Claim.IN_PROGRESS, None)
    await keys.complete(caller, key, answer)

    assert await keys.claim(caller, key, body) == (Claim.REPLAY, answer)
    other = request_hash("POST", "/sessions/start", b'{"chargerId":"CP-2"}')
    assert await keys.claim(caller, key, other) == (Claim.MISMATCH, None)
    assert await keys.claim(_caller(), key, other) == (Claim.NEW, None)  # keys are per caller


async def test_a_claim_left_unanswered_past_its_lease_is_taken_over_by_the_same_request(
    keys_pool: asyncpg.Pool,
) -> None:
    keys = IdempotencyKeys(keys_pool, lease_seconds=0.3, retention_seconds=60)
    caller, key = _caller(), "k-2"
    body = request_hash("POST", "/companies", b'{"name":"A"}')
    assert (await keys.claim(caller, key, body))[0] is Claim.NEW  # ... and its process dies

    assert (await keys.claim(caller, key, body))[0] is Claim.IN_PROGRESS  # within the lease
    await asyncio.sleep(0.4)
    other = request_hash("POST", "/companies", b'{"name":"B"}')
    assert (await keys.claim(caller, key, other))[0] is Claim.MISMATCH  # never another request's key
    assert (await keys.claim(caller, key, body))[0] is Claim.NEW
    assert (await keys.claim(caller, key, body))[0] is Claim.IN_PROGRESS  # the new claim has a new lease


async def test_released_and_purged_keys_can_be_claimed_again(keys_pool: asyncpg.Pool) -> None:
    keys = IdempotencyKeys(keys_pool, lease_seconds=0.1, retention_seconds=0.5)
    caller = _caller()
    body = request_hash("POST", "/sessions/stop", b"{}")
    assert (await keys.claim(caller, "failed", body))[0] is Claim.NEW
    await keys.release(caller, "failed")
    assert (await keys.claim(caller, "failed", body))[0] is Claim.NEW
    await keys.complete(caller, "failed", StoredAnswer(200, {}, b"{}"))
    await asyncio.sleep(0.6)
    assert (await keys.claim(caller, "fresh", body))[0] is Claim.NEW

    assert await keys.purge() >= 1
    assert (await keys.claim(caller, "failed", body))[0] is Claim.NEW  # forgotten after the retention
    assert (await keys.claim(caller, "fresh", body))[0] is Claim.IN_PROGRESS  # younger: kept


async def test_a_pool_that_does_not_flush_on_commit_says_so_and_the_default_does(
    keys_pool: asyncpg.Pool, database_url: str
) -> None:
    assert await keys_pool.fetchval("SHOW synchronous_commit") == "off"
    default = await create_pool(database_url, max_size=1)
    try:
        assert await default.fetchval("SHOW synchronous_commit") == "on"
    finally:
        await default.close()


def test_the_lease_must_be_shorter_than_the_retention() -> None:
    with pytest.raises(ValueError, match="lease"):
        IdempotencyKeys(None, lease_seconds=60, retention_seconds=30)  # type: ignore[arg-type]
