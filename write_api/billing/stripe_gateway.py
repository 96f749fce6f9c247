"""The one client of Stripe: its async SDK, with our own bounded retries of 429, 5xx and network errors.

The SDK's own retries are off (`max_network_retries=0`): it does not retry a plain 429, and we want one
policy, one set of metrics and the same idempotency key on every try of an operation. Every call that
creates something carries an idempotency key derived from the business operation (the session and attempt
number, the driver), so a retry, or a whole process that resumes after a crash, can never create a second
charge, customer or refund: Stripe answers a repeated key with the first answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import aiohttp
import stripe

from csms.domain import Currency, Money, PaymentAttempt, RefundRequest
from csms.stripe_endpoint import StripeEndpoint
from write_api.billing.metrics import STRIPE_GAVE_UP, STRIPE_REQUESTS, STRIPE_SECONDS

T = TypeVar("T")


class StripeUnavailable(Exception):
    """Stripe could not be reached or kept failing (429, 5xx, network) after every retry; try again later."""


class StripeRejected(Exception):
    """Stripe refused the request for good (a 4xx other than 429); `code` is Stripe's error code."""

    def __init__(self, code: str, message: str, http_status: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 20.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Exponential back-off with full jitter (AWS architecture blog): spreads the retries of many callers
        that failed together instead of sending them back in lockstep."""
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** (attempt - 1))
        return float(ceiling * rng())


@dataclass(frozen=True, slots=True)
class Card:
    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer_id: str | None


@dataclass(frozen=True, slots=True)
class ChargeOutcome:
    """What became of a payment attempt: `succeeded`, `failed` (with Stripe's code) or `processing`."""

    status: str
    payment_intent_id: str | None = None
    amount: Money | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RefundOutcome:
    succeeded: bool
    refund_id: str | None = None
    amount: Money | None = None
    code: str | None = None
    message: str | None = None


def _should_retry(error: stripe.StripeError) -> bool:
    # Stripe tells us when it knows better (a 409 lock timeout worth retrying, a 429 that is not).
    headers = error.headers or {}
    advice = headers.get("Stripe-Should-Retry") or headers.get("stripe-should-retry")
    if advice == "true":
        return True
    if advice == "false":
        return False
    if isinstance(error, stripe.APIConnectionError):
        return True
    status = error.http_status or 0
    return status in (409, 429) or status >= 500


def _outcome(error: BaseException) -> str:
    if isinstance(error, stripe.CardError):
        return "card_error"
    if isinstance(error, stripe.APIConnectionError | aiohttp.ClientError | TimeoutError):
        return "network_error"
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        return "auth_error"
    if isinstance(error, stripe.StripeError):
        status = error.http_status or 0
        if status == 429:
            return "rate_limited"
        if status >= 500:
            return "server_error"
    return "client_error"


class StripeGateway:
    """Customers, payment methods, payment intents and refunds, as the rest of billing needs them."""

    def __init__(
        self,
        endpoint: StripeEndpoint,
        retry: RetryPolicy | None = None,
        *,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=timeout_seconds))
        self._client = stripe.StripeClient(
            endpoint.api_key,
            base_addresses={"api": endpoint.api_base},
            http_client=self._http,
            max_network_retries=0,
        )
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        # The SDK logs every request at INFO; our metrics and our own logs say what matters.
        logging.getLogger("stripe").setLevel(logging.WARNING)

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def _call(self, operation: str, request: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, self._retry.max_attempts + 1):
            started = time.perf_counter()
            try:
                result = await request()
            except (stripe.StripeError, aiohttp.ClientError, TimeoutError) as error:
                STRIPE_SECONDS.labels(operation).observe(time.perf_counter() - started)
                STRIPE_REQUESTS.labels(operation, _outcome(error)).inc()
                # The SDK reads the body outside its own error handling, so a connection dropped mid-answer
                # surfaces as aiohttp's error (or a timeout) rather than stripe.APIConnectionError.
                retry = not isinstance(error, stripe.StripeError) or _should_retry(error)
                if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
                    # Our key is wrong or lacks a right: not the driver's fault, and no payment outcome.
                    STRIPE_GAVE_UP.labels(operation).inc()
                    raise StripeUnavailable(f"Stripe refused our API key: {error}") from error
                if not retry:
                    if _outcome(error) in ("rate_limited", "server_error", "network_error"):
                        # Stripe said not to retry now; it is still no answer about the payment.
                        STRIPE_GAVE_UP.labels(operation).inc()
                        raise StripeUnavailable(
                            f"Stripe {operation}: {error} (not to be retried now)"
                        ) from error
                    raise _rejected(error) from error
                if attempt == self._retry.max_attempts:
                    STRIPE_GAVE_UP.labels(operation).inc()
                    raise StripeUnavailable(
                        f"Stripe {operation} failed {attempt} times; last: {type(error).__name__}: {error}"
                    ) from error
                await self._sleep(self._retry.delay(attempt))
                continue
            STRIPE_SECONDS.labels(operation).observe(time.perf_counter() - started)
            STRIPE_REQUESTS.labels(operation, "ok").inc()
            return result
        raise AssertionError("unreachable")

    # Customers and payment methods

    async def create_customer(self, driver_id: UUID, email: str) -> str:
        # One customer per driver, even if the first request's answer was lost and the driver tries again.
        customer = await self._call(
            "create_customer",
            lambda: self._client.v1.customers.create_async(
                {"email": email, "metadata": {"csms_driver_id": str(driver_id)}},
                {"idempotency_key": f"csms-driver-{driver_id}-customer"},
            ),
        )
        return str(customer.id)

    async def card(self, payment_method_id: str) -> Card:
        method = (
            await self._call(
                "retrieve_payment_method",
                lambda: self._client.v1.payment_methods.retrieve_async(payment_method_id),
            )
        ).to_dict()
        if method.get("type") != "card" or not isinstance(method.get("card"), dict):
            raise StripeRejected("unsupported_payment_method", "only cards are accepted", 400)
        card = method["card"]
        return Card(
            payment_method_id=str(method["id"]),
            brand=str(card.get("brand") or "card"),
            last4=str(card["last4"]),
            exp_month=int(card["exp_month"]),
            exp_year=int(card["exp_year"]),
            customer_id=_id_of(method.get("customer")),
        )

    async def attach(self, payment_method_id: str, customer_id: str) -> None:
        await self._call(
            "attach_payment_method",
            lambda: self._client.v1.payment_methods.attach_async(
                payment_method_id,
                {"customer": customer_id},
                {"idempotency_key": f"csms-attach-{customer_id}-{payment_method_id}"},
            ),
        )

    async def detach(self, payment_method_id: str) -> None:
        await self._call(
            "detach_payment_method",
            lambda: self._client.v1.payment_methods.detach_async(payment_method_id),
        )

    # Payments

    async def charge(self, session_id: UUID, attempt: PaymentAttempt) -> ChargeOutcome:
        """Create and confirm a PaymentIntent for the attempt, under the attempt's idempotency key."""
        currency = attempt.amount.currency
        params: Any = {
            "amount": attempt.amount.in_minor_units,
            "currency": currency.value.lower(),
            "customer": attempt.customer_id,
            "payment_method": attempt.payment_method_id,
            "payment_method_types": ["card"],
            "confirm": True,
            "off_session": attempt.off_session,
            "metadata": {"csms_session_id": str(session_id), "csms_attempt": str(attempt.number)},
        }
        try:
            intent = (
                await self._call(
                    "create_payment_intent",
                    lambda: self._client.v1.payment_intents.create_async(
                        params, {"idempotency_key": attempt.idempotency_key}
                    ),
                )
            ).to_dict()
        except StripeRejected as rejected:
            cause = rejected.__cause__
            intent_id = None
            if isinstance(cause, stripe.StripeError) and isinstance(cause.json_body, dict):
                intent_id = _id_of((cause.json_body.get("error") or {}).get("payment_intent"))
            return ChargeOutcome("failed", intent_id, code=rejected.code, message=rejected.message)
        return intent_outcome(intent, currency)

    async def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        intent = await self._call(
            "retrieve_payment_intent",
            lambda: self._client.v1.payment_intents.retrieve_async(payment_intent_id),
        )
        return intent.to_dict()

    async def charge_object(self, charge_id: str) -> dict[str, Any]:
        charge = await self._call(
            "retrieve_charge", lambda: self._client.v1.charges.retrieve_async(charge_id)
        )
        return charge.to_dict()

    async def refunds_of(self, charge_id: str) -> list[dict[str, Any]]:
        refunds = await self._call(
            "list_refunds", lambda: self._client.v1.refunds.list_async({"charge": charge_id, "limit": 100})
        )
        return [refund.to_dict() for refund in refunds.data]

    async def refund(self, session_id: UUID, payment_intent_id: str, request: RefundRequest) -> RefundOutcome:
        currency = request.amount.currency
        try:
            refund = (
                await self._call(
                    "create_refund",
                    lambda: self._client.v1.refunds.create_async(
                        {
                            "payment_intent": payment_intent_id,
                            "amount": request.amount.in_minor_units,
                            "metadata": {
                                "csms_session_id": str(session_id),
                                "csms_refund": str(request.number),
                            },
                        },
                        {"idempotency_key": request.idempotency_key},
                    ),
                )
            ).to_dict()
        except StripeRejected as rejected:
            return RefundOutcome(False, code=rejected.code, message=rejected.message)
        if refund.get("status") in ("failed", "canceled"):
            return RefundOutcome(False, str(refund["id"]), code="refund_failed", message="the refund failed")
        return RefundOutcome(True, str(refund["id"]), Money.from_minor_units(int(refund["amount"]), currency))


def intent_outcome(intent: dict[str, Any], currency: Currency) -> ChargeOutcome:
    """A PaymentIntent's state as the outcome of an attempt."""
    status = intent.get("status")
    intent_id = str(intent["id"])
    if status == "succeeded":
        received = intent.get("amount_received") or intent["amount"]
        return ChargeOutcome("succeeded", intent_id, Money.from_minor_units(int(received), currency))
    if status == "requires_action":
        # Off-session, Stripe answers authentication_required with a 402; some servers leave the intent
        # waiting for the customer instead. Either way the driver has to step in.
        return ChargeOutcome(
            "failed",
            intent_id,
            code="authentication_required",
            message="Your bank asks you to confirm this payment: pay again in the app.",
        )
    if status == "processing":
        return ChargeOutcome("processing", intent_id)
    error = intent.get("last_payment_error") or {}
    return ChargeOutcome(
        "failed",
        intent_id,
        code=str(error.get("code") or status or "payment_failed"),
        message=str(error.get("message") or "The payment did not go through."),
    )


def _rejected(error: BaseException) -> StripeRejected:
    if isinstance(error, stripe.StripeError):
        code = error.code or ("card_error" if isinstance(error, stripe.CardError) else "stripe_error")
        message = error.user_message or str(error) or "Stripe refused the request"
        return StripeRejected(str(code), str(message), error.http_status)
    return StripeRejected("stripe_error", str(error), None)


def _id_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None
