"""Settling one session with Stripe: its payment attempt and refunds, each recorded before and after the call.

The order is what makes a crash harmless. An attempt (with its idempotency key) is appended to the session's
stream before Stripe is called, and its outcome after; whoever settles the session next, after a crash at
any point, finds the open attempt and carries out that same attempt with that same key, so Stripe answers
with the first charge instead of making a second. Only the billing process manager runs this, one
session at a time, so two attempts of one session are never in flight together.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from csms.domain import ChargingSession, Driver, PaymentAttempt, SessionStatus
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from write_api.billing.metrics import PAYMENTS
from write_api.billing.stripe_gateway import ChargeOutcome, RefundOutcome, StripeGateway

_log = logging.getLogger(__name__)
_RETRIES = 5


class Settlement:
    def __init__(self, repository: Repository, gateway: StripeGateway, clock: Callable[[], datetime]) -> None:
        self._repository = repository
        self._gateway = gateway
        self._clock = clock

    async def settle(self, session_id: UUID) -> None:
        """Carry out whatever the session still needs: its open payment attempt (or its first one, once
        priced) and its open refunds. Raises `StripeUnavailable` when Stripe cannot be reached: nothing was
        decided then, and the caller tries again later."""
        try:
            session = await self._repository.get(session_id, ChargingSession)
        except AggregateNotFoundError:
            return
        attempt = await self._open_attempt(session)
        if attempt is not None:
            outcome = await self._gateway.charge(session_id, attempt)
            await self._record(session_id, attempt, outcome)
        await self._settle_refunds(session_id)

    async def _open_attempt(self, session: ChargingSession) -> PaymentAttempt | None:
        """The attempt to carry out: the open one, or a new one for a session priced and never tried."""
        for _ in range(_RETRIES):
            if session.open_payment is not None:
                return session.open_payment
            if session.status is not SessionStatus.PRICED or session.payment_attempts > 0:
                return None
            at = self._clock()
            assert session.breakdown is not None
            if session.breakdown.total.amount <= 0:
                session.settle_without_payment(at)
                PAYMENTS.labels("not_required").inc()
            else:
                card = await self._card_of(session.driver_id)
                if card is None:
                    session.payment_failed(
                        "payment_method_required",
                        "No payment method on file: add a card and pay this session in the app.",
                        at,
                    )
                    PAYMENTS.labels("failed").inc()
                else:
                    payment_method_id, customer_id = card
                    session.begin_payment(payment_method_id, customer_id, at)
            try:
                # The attempt and its key are durable before Stripe hears of it.
                await self._repository.save(session)
            except ConcurrencyError:
                session = await self._repository.get(session.id, ChargingSession)
                continue
            return session.open_payment
        raise ConcurrencyError(session.id, session.version, -1)

    async def _card_of(self, driver_id: UUID | None) -> tuple[str, str] | None:
        if driver_id is None:
            return None
        try:
            driver = await self._repository.get(driver_id, Driver)
        except AggregateNotFoundError:
            return None
        card = driver.default_payment_method
        if card is None or driver.stripe_customer_id is None:
            return None
        return card.payment_method_id, driver.stripe_customer_id

    async def _record(self, session_id: UUID, attempt: PaymentAttempt, outcome: ChargeOutcome) -> None:
        if outcome.status == "processing":
            # Cards settle at once; anything slower is finished by the payment_intent.* webhook.
            PAYMENTS.labels("pending").inc()
            return

        def record(session: ChargingSession) -> None:
            at = self._clock()
            if session.status is SessionStatus.PAID:
                # A webhook recorded the outcome first; anything else would be a second charge: say so loudly.
                if outcome.status == "succeeded" and outcome.payment_intent_id != session.payment_intent_id:
                    _log.error(
                        "session paid twice: refund one of the payments",
                        extra={
                            "session_id": str(session_id),
                            "recorded": session.payment_intent_id,
                            "also_charged": outcome.payment_intent_id,
                        },
                    )
                return
            if outcome.status == "succeeded":
                assert outcome.payment_intent_id is not None
                assert outcome.amount is not None
                session.payment_succeeded(outcome.payment_intent_id, outcome.amount, at)
            else:
                session.payment_failed(
                    outcome.code or "payment_failed",
                    outcome.message or "The payment did not go through.",
                    at,
                    outcome.payment_intent_id,
                )

        await self._repository.execute(session_id, ChargingSession, record, retries=_RETRIES)
        PAYMENTS.labels(outcome.status).inc()
        if outcome.status != "succeeded":
            _log.info(
                "payment failed",
                extra={"session_id": str(session_id), "attempt": attempt.number, "code": outcome.code},
            )

    async def _settle_refunds(self, session_id: UUID) -> None:
        session = await self._repository.get(session_id, ChargingSession)
        for request in list(session.open_refunds.values()):
            assert session.payment_intent_id is not None
            outcome = await self._gateway.refund(session_id, session.payment_intent_id, request)
            await self._record_refund(session_id, request.number, outcome)

    async def _record_refund(self, session_id: UUID, number: int, outcome: RefundOutcome) -> None:
        def record(session: ChargingSession) -> None:
            at = self._clock()
            if outcome.succeeded:
                assert outcome.refund_id is not None
                assert outcome.amount is not None
                session.record_refund(outcome.refund_id, outcome.amount, at, number)
            else:
                session.refund_failed(
                    number, outcome.code or "refund_failed", outcome.message or "refused", at
                )

        await self._repository.execute(session_id, ChargingSession, record, retries=_RETRIES)
