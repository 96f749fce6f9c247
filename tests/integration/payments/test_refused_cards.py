"""A card the bank refuses (declined, or authentication required off-session) leaves the session payment
failed, with the reason the driver sees in the app, and another card pays it through the API's pay-again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import asyncpg
import pytest

from csms.domain import ChargingSession, Driver, PaymentMethod, SessionStatus
from csms.eventstore import EventStore, create_pool
from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from csms.stripe_endpoint import StripeEndpoint
from projections.postgres_target import PostgresTarget
from projections.session_history import SessionHistoryProjector
from tests.integration.payments.world import (
    AUTHENTICATION_CARD,
    DECLINED_CARD,
    GOOD_CARD,
    driver_with_card,
    priced_session,
    repository_for,
    stripe_post,
    tokenize,
)
from tests.integration.projections.session_scenarios import catch_up
from write_api.access import Actor, NotFound
from write_api.billing.session_payments import SessionPayments
from write_api.billing.settlement import Settlement
from write_api.billing.stripe_gateway import RetryPolicy, StripeGateway

_FAST = RetryPolicy(max_attempts=3, base_seconds=0.001, max_seconds=0.01)


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    pool = await create_pool(database_url, max_size=4)
    event_store = EventStore(pool, database_url)
    yield event_store
    await event_store.close()
    await pool.close()


async def _what_the_driver_sees(pool: asyncpg.Pool, name: str, session_id: uuid.UUID) -> asyncpg.Record:
    target = PostgresTarget(SessionHistoryProjector(name), pool)
    await catch_up(target, pool)
    row = await pool.fetchrow(
        f"SELECT status, payment_status, payment_failure_code FROM {name} WHERE session_id = $1", session_id
    )
    assert row is not None
    return row


@pytest.mark.parametrize(
    ("card", "reason"), [(DECLINED_CARD, "card_declined"), (AUTHENTICATION_CARD, "authentication_required")]
)
async def test_a_refused_card_fails_the_payment_visibly_and_another_card_pays(
    store: EventStore, localstripe_url: str, card: str, reason: str
) -> None:
    repository = repository_for(store)
    gateway = StripeGateway(
        StripeEndpoint(LOCALSTRIPE_SECRET_KEY, localstripe_url), _FAST, timeout_seconds=10
    )
    settlement = Settlement(repository, gateway, _now)
    model = f"session_history_cards_{uuid.uuid4().hex[:8]}"
    try:
        async with aiohttp.ClientSession() as http:
            driver_id = await driver_with_card(repository, http, localstripe_url, card)
            session = priced_session(driver_id)
            await repository.save(session)

            # Billing charges off-session; the bank refuses.
            await settlement.settle(session.id)
            failed = await repository.get(session.id, ChargingSession)
            assert failed.status is SessionStatus.PAYMENT_FAILED
            assert failed.payment_failure_code == reason
            seen = await _what_the_driver_sees(store.pool, model, session.id)
            assert (seen["status"], seen["payment_status"], seen["payment_failure_code"]) == (
                "PAYMENT_FAILED",
                "failed",
                reason,
            )

            # The driver saves another card and pays again from the app.
            driver = await repository.get(driver_id, Driver)
            assert driver.stripe_customer_id is not None
            method = await tokenize(http, localstripe_url, GOOD_CARD)
            await stripe_post(
                http,
                localstripe_url,
                f"/v1/payment_methods/{method}/attach",
                {"customer": driver.stripe_customer_id},
            )
            driver.add_payment_method(
                PaymentMethod(method, "visa", "4242", 12, 2034), _now(), make_default=True
            )
            await repository.save(driver)
            payments = SessionPayments(repository, gateway, _now, wait_seconds=0)
            answer = await payments.pay(session.id, Actor("driver", driver_id=driver_id), method)
            assert answer.status == "PROCESSING"  # recorded; billing carries it out
            await settlement.settle(session.id)

        paid = await repository.get(session.id, ChargingSession)
        assert paid.status is SessionStatus.PAID
        assert paid.payment_attempts == 2
        seen = await _what_the_driver_sees(store.pool, model, session.id)
        assert (seen["status"], seen["payment_status"]) == ("PAID", "succeeded")

        # Its company's operator gives part of it back, then the rest; another company's cannot.
        with pytest.raises(NotFound):
            await payments.refund(
                session.id, Actor("operator", company_id=uuid.uuid4()), Decimal("1.00"), "x"
            )
        operator = Actor("operator", company_id=paid.company_id)
        first = await payments.refund(session.id, operator, Decimal("1.00"), "goodwill")
        assert first.status == "pending"  # recorded; billing carries it out
        await settlement.settle(session.id)
        seen = await _what_the_driver_sees(store.pool, model, session.id)
        assert seen["payment_status"] == "partially_refunded"
        await payments.refund(session.id, operator, None, "charger fault")  # the rest
        await settlement.settle(session.id)
        refunded = await repository.get(session.id, ChargingSession)
        assert paid.amount_paid is not None
        assert sum(r.amount.amount for r in refunded.refunds.values()) == paid.amount_paid.amount
        seen = await _what_the_driver_sees(store.pool, model, session.id)
        assert seen["payment_status"] == "refunded"
    finally:
        await gateway.close()
