"""Billing's gauges move with real payments: which instance is active, its position, and how long money has
been waiting while Stripe fails, with every slot taken."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client import REGISTRY

from csms.domain import ChargingSession, SessionStatus
from csms.eventstore import EventStore, create_pool
from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from csms.stripe_endpoint import StripeEndpoint
from tests.integration.gateway_infra import eventually
from tests.integration.payments.fault_proxy import FaultProxy, Faults
from tests.integration.payments.world import GOOD_CARD, driver_with_card, priced_session, repository_for
from write_api.billing.process_manager import TOPICS, BillingProcessManager
from write_api.billing.settlement import Settlement
from write_api.billing.stripe_gateway import RetryPolicy, StripeGateway


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


def until(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    pool = await create_pool(database_url, max_size=6)
    event_store = EventStore(pool, database_url, poll_interval=0.1)
    yield event_store
    await event_store.close()
    await pool.close()


@contextlib.asynccontextmanager
async def running(manager: BillingProcessManager) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(manager.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_active_instance_its_position_and_its_lag_are_reported(
    store: EventStore, database_url: str, proxy: FaultProxy, localstripe_url: str
) -> None:
    repository = repository_for(store)
    async with aiohttp.ClientSession() as http:
        driver_id = await driver_with_card(repository, http, localstripe_url, GOOD_CARD)
    # A consumer of its own, starting at the head (past the driver at least): earlier tests' sessions are
    # not its business.
    consumer = f"billing-metrics-{uuid.uuid4().hex[:8]}"
    head = await store.head_position()
    async with store.pool.acquire() as connection, connection.transaction():
        await store.save_tracking(connection, consumer, head)

    gateway = StripeGateway(
        StripeEndpoint(LOCALSTRIPE_SECRET_KEY, proxy.url),
        RetryPolicy(max_attempts=2, base_seconds=0.001, max_seconds=0.01),
        timeout_seconds=5,
    )

    def manager() -> BillingProcessManager:
        return BillingProcessManager(
            store,
            Settlement(repository, gateway, lambda: datetime.now(UTC)),
            database_url,
            concurrency=1,  # the second session waits for the first one's slot
            retry_pause=0.05,
            max_retry_pause=0.2,
            standby_retry=0.05,
            lag_interval=0.05,
            consumer=consumer,
        )

    first, second = manager(), manager()
    active = sample("csms_billing_active")
    try:
        async with running(first) as first_task:
            await first.leading.wait()
            assert sample("csms_billing_active") == active + 1
            # Reported once the leader has loaded its recorded position, just after taking the lock.
            await eventually(until(lambda: sample("csms_billing_position") == head), within=10)
            assert sample("csms_billing_lag_seconds") == 0

            # Stripe fails every charge: both sessions wait, the second without even a slot to wait in.
            proxy.faults = Faults(server_error=1.0, only_paths=("/v1/payment_intents",))
            sessions = [priced_session(driver_id), priced_session(driver_id)]
            await repository.save(*sessions)
            await eventually(until(lambda: sample("csms_billing_lag_seconds") >= 1.0), within=10)
            assert sample("csms_billing_position") == head  # nothing settled, nothing passed

            # The standby takes over from where the first instance recorded, and carries on reporting.
            async with running(second):
                first_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first_task
                await second.leading.wait()
                assert sample("csms_billing_active") == active + 1
                await eventually(until(lambda: sample("csms_billing_lag_seconds") >= 1.0), within=10)

                proxy.faults = Faults()  # Stripe is back
                last = await _last_billing_position(store, [s.id for s in sessions])
                await eventually(
                    until(
                        lambda: (
                            sample("csms_billing_position") == last
                            and sample("csms_billing_lag_seconds") == 0
                        )
                    ),
                    within=10,
                )
            assert sample("csms_billing_active") == active
    finally:
        await gateway.close()

    statuses = [(await repository.get(s.id, ChargingSession, refresh=True)).status for s in sessions]
    assert statuses == [SessionStatus.PAID, SessionStatus.PAID]


async def _last_billing_position(store: EventStore, session_ids: list[uuid.UUID]) -> int:
    """The position of the last event billing consumes among these sessions' streams, once both are paid
    (settling a session appends its attempt, one of billing's own topics, before it pays)."""
    start = await store.head_position()
    async with asyncio.timeout(10):
        async with await store.subscribe(f"test-{uuid.uuid4()}", start_after=start) as events:
            while True:
                streams = [await store.read_stream(session_id) for session_id in session_ids]
                if all(any(e.topic == "ChargingSession.PaymentSucceeded" for e in s) for s in streams):
                    return max(e.position for s in streams for e in s if e.topic in TOPICS)
                await events.next_batch()
