"""A thousand priced sessions charged through injected 429s, 500s, dropped and slow answers, and a billing
process killed between a Stripe call and recording its outcome: each session is charged once, none unpaid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections import Counter

import aiohttp
import pytest

from csms.domain import ChargingSession, SessionStatus
from csms.eventstore import EventStore, create_pool
from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from tests.e2e.processes import free_port, role_process
from tests.integration.payments.fault_proxy import FaultProxy, Faults, Logged
from tests.integration.payments.world import GOOD_CARD, driver_with_card, priced_session, repository_for

SESSIONS = 1000
DRIVERS = 10


@pytest.mark.timeout(240)
async def test_a_thousand_sessions_each_charged_exactly_once(
    database_url: str, proxy: FaultProxy, localstripe_url: str
) -> None:
    log: list[bytes] = []
    ids: set[uuid.UUID] = set()
    pool = await create_pool(database_url, max_size=4)
    store = EventStore(pool, database_url)
    repository = repository_for(store)
    try:
        async with aiohttp.ClientSession() as http:
            drivers = [
                await driver_with_card(repository, http, localstripe_url, GOOD_CARD) for _ in range(DRIVERS)
            ]
        sessions = [priced_session(drivers[i % DRIVERS], energy_wh=1000 + i) for i in range(SESSIONS)]
        for chunk in range(0, SESSIONS, 100):
            await repository.save(*sessions[chunk : chunk + 100])
        ids.update(s.id for s in sessions)

        proxy.faults = Faults(
            rate_limit=0.04,
            rate_limit_retry=0.03,
            server_error=0.04,
            drop_before=0.02,
            drop_after=0.03,
            delay=0.01,
            delay_seconds=1.2,
            only_paths=("/v1/payment_intents",),
        )
        kills: list[int] = []
        billing_pid: list[int] = []
        creations = 0

        async def kill_between_call_and_record(entry: Logged) -> None:
            # Twice, once Stripe has created a PaymentIntent and before billing hears of it.
            nonlocal creations
            if entry.path == "/v1/payment_intents" and entry.method == "POST":
                creations += 1
                if creations in (150, 600) and billing_pid:
                    kills.append(billing_pid[0])
                    os.kill(billing_pid[0], signal.SIGKILL)

        proxy.after_forward = kill_between_call_and_record
        environment = {
            "CSMS_DATABASE_URL": database_url,
            "STRIPE_API_KEY": LOCALSTRIPE_SECRET_KEY,
            "CSMS_STRIPE_API_BASE": proxy.url,
            "CSMS_STRIPE_TIMEOUT_SECONDS": "1",
            "CSMS_STRIPE_MAX_ATTEMPTS": "10",
            "CSMS_STRIPE_RETRY_BASE_SECONDS": "0.01",
            "CSMS_STRIPE_RETRY_MAX_SECONDS": "0.1",
            "CSMS_BILLING_CONCURRENCY": "32",
            "CSMS_POLL_INTERVAL_SECONDS": "0.2",
        }
        async with asyncio.timeout(150):
            while not await _all_settled(store, ids):
                async with role_process(
                    "billing", **environment, CSMS_BILLING_PORT=str(free_port())
                ) as billing:
                    billing_pid[:] = [billing.process.pid]
                    assert billing.process.stderr is not None
                    drain = asyncio.create_task(_drain(billing.process.stderr, log))
                    while billing.process.returncode is None and not await _all_settled(store, ids):
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(billing.process.wait(), 1.0)
                    billing_pid.clear()
                    drain.cancel()

        assert len(kills) == 2, "billing was to be killed twice between a charge and its record"
        statuses = Counter([(await repository.get(i, ChargingSession)).status for i in ids])
        assert statuses == {SessionStatus.PAID: SESSIONS}

        # What our code sent: every session's charge under one key, its first attempt's.
        keys = {
            e.idempotency_key for e in proxy.log if e.path == "/v1/payment_intents" and e.method == "POST"
        }
        assert keys >= {f"csms-session-{i}-payment-1" for i in ids}
        assert not keys & {f"csms-session-{i}-payment-2" for i in ids}  # no second attempt anywhere
        # What Stripe (the proxy keeping Stripe's idempotency promise over localstripe) created: one each.
        created = Counter(
            e.idempotency_key for e in proxy.log if e.path == "/v1/payment_intents" and e.reached_upstream
        )
        assert all(created[f"csms-session-{i}-payment-1"] == 1 for i in ids)
        injected = Counter(e.answer for e in proxy.log)
        assert injected["429"]
        assert injected["429-retry"]
        assert injected["500"]
        assert injected["dropped-after"]
    finally:
        await store.close()
        await pool.close()


async def _all_settled(store: EventStore, ids: set[uuid.UUID]) -> bool:
    async with store.pool.acquire() as connection:
        paid = await connection.fetchval(
            "SELECT count(DISTINCT stream_id) FROM events WHERE topic = 'ChargingSession.PaymentSucceeded'"
            " AND stream_id = ANY($1::uuid[])",
            list(ids),
        )
    return int(paid) == len(ids)


async def _drain(stream: asyncio.StreamReader, log: list[bytes]) -> None:
    """Keep reading the role's log, so a full pipe never blocks it."""
    while line := await stream.readline():
        log.append(line)
