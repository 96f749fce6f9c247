"""Our retries of Stripe calls, asserted through a fault-injecting proxy in front of localstripe."""

from __future__ import annotations

import uuid
from decimal import Decimal

import aiohttp
import pytest

from csms.domain import Currency, Money, PaymentAttempt
from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from csms.stripe_endpoint import StripeEndpoint
from tests.integration.payments.fault_proxy import FaultProxy, Faults
from tests.integration.payments.world import GOOD_CARD, stripe_post, tokenize
from write_api.billing.metrics import STRIPE_REQUESTS
from write_api.billing.stripe_gateway import RetryPolicy, StripeGateway, StripeUnavailable

FAST = RetryPolicy(max_attempts=5, base_seconds=0.001, max_seconds=0.01)


async def _attempt(proxy: FaultProxy, localstripe_url: str) -> PaymentAttempt:
    async with aiohttp.ClientSession() as http:
        customer = await stripe_post(http, localstripe_url, "/v1/customers", {"email": "r@example.com"})
        method = await tokenize(http, localstripe_url, GOOD_CARD)
        await stripe_post(
            http, localstripe_url, f"/v1/payment_methods/{method}/attach", {"customer": str(customer["id"])}
        )
    key = f"test-{uuid.uuid4()}"
    return PaymentAttempt(1, key, Money(Decimal("3.60"), Currency.EUR), method, str(customer["id"]), True)


def _gateway(proxy: FaultProxy, timeout: float = 5.0) -> StripeGateway:
    return StripeGateway(StripeEndpoint(LOCALSTRIPE_SECRET_KEY, proxy.url), FAST, timeout_seconds=timeout)


def _creations(proxy: FaultProxy, key: str) -> list[str]:
    return [e.answer for e in proxy.log if e.idempotency_key == key]


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        (Faults(rate_limit=1.0), "429"),
        (Faults(rate_limit_retry=1.0), "429-retry"),
        (Faults(server_error=1.0), "500"),
        (Faults(drop_before=1.0), "dropped-before"),
    ],
)
async def test_transient_failures_are_retried_a_bounded_number_of_times_with_one_key(
    proxy: FaultProxy, localstripe_url: str, faults: Faults, expected: str
) -> None:
    attempt = await _attempt(proxy, localstripe_url)
    proxy.faults = faults
    gateway = _gateway(proxy)
    try:
        with pytest.raises(StripeUnavailable):
            await gateway.charge(uuid.uuid4(), attempt)
    finally:
        await gateway.close()

    assert _creations(proxy, attempt.idempotency_key) == [expected] * FAST.max_attempts


async def test_stripe_should_retry_false_is_honoured(proxy: FaultProxy, localstripe_url: str) -> None:
    attempt = await _attempt(proxy, localstripe_url)
    proxy.faults = Faults(rate_limit_no_retry=1.0)
    gateway = _gateway(proxy)
    try:
        with pytest.raises(StripeUnavailable):  # no payment outcome: billing tries again later
            await gateway.charge(uuid.uuid4(), attempt)
    finally:
        await gateway.close()

    assert _creations(proxy, attempt.idempotency_key) == ["429-no-retry"]


async def test_a_lost_answer_is_retried_and_the_card_is_charged_once(
    proxy: FaultProxy, localstripe_url: str
) -> None:
    attempt = await _attempt(proxy, localstripe_url)
    proxy.faults = Faults(drop_after=0.4, delay=0.3, delay_seconds=1.5)
    before = STRIPE_REQUESTS.labels("create_payment_intent", "ok")._value.get()
    gateway = StripeGateway(
        StripeEndpoint(LOCALSTRIPE_SECRET_KEY, proxy.url),
        RetryPolicy(max_attempts=20, base_seconds=0.001, max_seconds=0.01),
        timeout_seconds=1.0,
    )
    try:
        outcome = await gateway.charge(uuid.uuid4(), attempt)
    finally:
        await gateway.close()

    answers = _creations(proxy, attempt.idempotency_key)
    assert outcome.status == "succeeded"
    assert answers.count("forwarded") == 1  # one PaymentIntent created; every other try was answered from it
    assert STRIPE_REQUESTS.labels("create_payment_intent", "ok")._value.get() == before + 1
