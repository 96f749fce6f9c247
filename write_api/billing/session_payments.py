"""Paying a session again (driver) and refunding one (operator): recorded here, carried out by billing.

Only the billing process manager calls Stripe to move money; these commands record the attempt or the
refund request (with its idempotency key) and wait a bounded time for billing's outcome, so an answer
that comes too late is still carried out exactly once, and the caller hears 202 and can look again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from csms.domain import ChargingSession, Driver, InvalidState, Money, SessionStatus
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from write_api.access import Actor, NotFound
from write_api.billing.payment_methods import save_with_position
from write_api.billing.stripe_gateway import StripeGateway, StripeRejected, StripeUnavailable

_RETRIES = 3


class PaymentInProgress(Exception):
    """Billing has not settled this session's current attempt yet."""


@dataclass(frozen=True, slots=True)
class PaymentAnswer:
    session_id: UUID
    status: str  # PAID, PAYMENT_FAILED, or PROCESSING (billing has not answered yet)
    position: int
    payment_intent_id: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    client_secret: str | None = None  # to confirm an authentication_required payment in the app


@dataclass(frozen=True, slots=True)
class RefundAnswer:
    session_id: UUID
    status: str  # refunded, failed, pending
    amount: Money
    position: int
    refund_id: str | None = None


class SessionPayments:
    def __init__(
        self,
        repository: Repository,
        gateway: StripeGateway | None,
        clock: Callable[[], datetime],
        *,
        wait_seconds: float = 15.0,
    ) -> None:
        self._repository = repository
        self._gateway = gateway
        self._clock = clock
        self._wait_seconds = wait_seconds

    async def _session(self, session_id: UUID) -> ChargingSession:
        try:
            return await self._repository.get(session_id, ChargingSession, refresh=True)
        except AggregateNotFoundError:
            raise NotFound(f"no session {session_id}") from None

    async def pay(self, session_id: UUID, actor: Actor, payment_method_id: str | None) -> PaymentAnswer:
        """Try again to charge a session whose payment failed, with the given (or the default) card."""
        for attempt in range(_RETRIES + 1):
            session = await self._session(session_id)
            if actor.driver_id is None or session.driver_id != actor.driver_id:
                raise NotFound(f"no session {session_id}")
            if session.status is SessionStatus.PAID:
                return PaymentAnswer(session_id, "PAID", 0, session.payment_intent_id)
            if session.open_payment is not None or (
                session.status is SessionStatus.PRICED and session.payment_attempts == 0
            ):
                raise PaymentInProgress("this session's payment is being processed")
            if session.status is not SessionStatus.PAYMENT_FAILED:
                raise InvalidState(f"session is {session.status.value}; there is nothing to pay yet")
            driver = await self._repository.get(actor.driver_id, Driver, refresh=True)
            method = payment_method_id or driver.default_payment_method_id
            if method is None or method not in {m.payment_method_id for m in driver.payment_methods}:
                raise NotFound(f"no payment method {method}" if method else "no payment method on file")
            assert driver.stripe_customer_id is not None
            # The driver is here: on-session, so a bank asking for authentication can be answered in the app.
            session.begin_payment(method, driver.stripe_customer_id, self._clock(), off_session=False)
            try:
                position = await save_with_position(self._repository, session)
            except ConcurrencyError:
                if attempt == _RETRIES:
                    raise
                continue
            return await self._payment_answer(session_id, position)
        raise AssertionError("unreachable")

    async def _payment_answer(self, session_id: UUID, position: int) -> PaymentAnswer:
        session = await self._wait(session_id, lambda s: s.open_payment is None)
        if session.open_payment is not None:
            return PaymentAnswer(session_id, "PROCESSING", position)
        if session.status is SessionStatus.PAID:
            return PaymentAnswer(session_id, "PAID", position, session.payment_intent_id)
        client_secret = None
        if (
            session.payment_failure_code == "authentication_required"
            and session.payment_intent_id
            and self._gateway
        ):
            try:
                intent = await self._gateway.payment_intent(session.payment_intent_id)
                if intent.get("status") in ("requires_action", "requires_confirmation"):
                    client_secret = intent.get("client_secret")
            except (StripeRejected, StripeUnavailable):
                client_secret = None
        return PaymentAnswer(
            session_id,
            "PAYMENT_FAILED",
            position,
            session.payment_intent_id,
            session.payment_failure_code,
            session.payment_failure_message,
            client_secret,
        )

    async def refund(
        self, session_id: UUID, actor: Actor, amount: Decimal | None, reason: str
    ) -> RefundAnswer:
        """Refund a paid session, fully (no amount) or partly; the operator of its company or an admin."""
        for attempt in range(_RETRIES + 1):
            session = await self._session(session_id)
            if not actor.owns_company_object(session.company_id):
                raise NotFound(f"no session {session_id}")
            currency = session.breakdown.currency if session.breakdown is not None else None
            money = None if amount is None or currency is None else Money(amount, currency)
            request = session.request_refund(money, reason, self._clock())
            try:
                position = await save_with_position(self._repository, session)
            except ConcurrencyError:
                if attempt == _RETRIES:
                    raise
                continue
            number = request.number
            session = await self._wait(session_id, lambda s, n=number: n not in s.open_refunds)  # type: ignore[misc]
            if number not in session.refund_results:
                return RefundAnswer(session_id, "pending", request.amount, position)
            refund_id = session.refund_results[number]
            status = "failed" if refund_id is None else "refunded"
            return RefundAnswer(session_id, status, request.amount, position, refund_id)
        raise AssertionError("unreachable")

    async def _wait(self, session_id: UUID, settled: Callable[[ChargingSession], bool]) -> ChargingSession:
        deadline = time.monotonic() + self._wait_seconds
        pause = 0.02
        while True:
            session = await self._session(session_id)
            if settled(session) or time.monotonic() >= deadline:
                return session
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)
