"""Stripe webhooks: verified over the raw body, deduplicated by event id with their effect, made into events.

Deduplication is the event store's own: each Stripe event id names a PaymentNotification stream, appended in
the same atomic commit as the session events it causes, so a second delivery conflicts and changes nothing.

Verification follows Stripe's scheme (HMAC-SHA256 of "timestamp.body" with the endpoint secret, any `v1`
signature may match) and refuses timestamps outside the tolerance in either direction: the SDK's own check
lets a future timestamp through, which would let a captured request be replayed later. Stripe delivers at
least once and in no particular order, so every effect is written to be applied in any order: a refund or a
dispute arriving before the payment succeeded records the success first, a failure arriving while an
attempt is in flight is left to that attempt's own outcome.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from csms.domain import ChargingSession, Currency, DomainError, Money, SessionStatus
from csms.domain.payment_notification import PaymentNotification, payment_notification_id
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, EventStore, Repository
from csms.observability.logging import bind_log_fields
from write_api.billing.metrics import WEBHOOKS
from write_api.billing.stripe_gateway import StripeGateway, StripeRejected

_log = logging.getLogger(__name__)
_RETRIES = 5

HANDLED = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.closed",
    }
)


class WebhookRejected(Exception):
    """The request is not a genuine, fresh Stripe event (answered 400)."""


def verify(payload: bytes, header: str, secret: str, tolerance_seconds: int, now: float) -> dict[str, Any]:
    """The event, if `header` (Stripe-Signature) signs `payload` with `secret` within the tolerance."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookRejected("malformed signature timestamp") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected("no timestamp or v1 signature in Stripe-Signature")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, signature) for signature in signatures):
        raise WebhookRejected("signature does not match")
    if abs(now - timestamp) > tolerance_seconds:
        raise WebhookRejected(f"timestamp {timestamp} is outside the {tolerance_seconds}s tolerance")
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise WebhookRejected("body is not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or "type" not in event:
        raise WebhookRejected("body is not a Stripe event")
    return event


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """A Stripe-Signature header for `payload` (what Stripe sends; used by tests and tools)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class StripeWebhooks:
    def __init__(
        self,
        store: EventStore,
        repository: Repository,
        gateway: StripeGateway | None,
        secret: str,
        clock: Callable[[], datetime],
        *,
        tolerance_seconds: int = 300,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._repository = repository
        self._gateway = gateway
        self._secret = secret
        self._clock = clock
        self._tolerance = tolerance_seconds
        self._wall_clock = wall_clock

    async def receive(self, payload: bytes, signature: str) -> str:
        """Apply one delivery; returns applied, duplicate or ignored. Raises WebhookRejected."""
        try:
            event = verify(payload, signature, self._secret, self._tolerance, self._wall_clock())
        except WebhookRejected:
            WEBHOOKS.labels("rejected").inc()
            raise
        event_type = str(event["type"])
        if event_type not in HANDLED:
            WEBHOOKS.labels("ignored").inc()
            return "ignored"
        event_id = str(event["id"])
        obj = (event.get("data") or {}).get("object") or {}
        for attempt in range(_RETRIES + 1):
            try:
                outcome = await self._apply_once(event_id, event_type, obj)
            except ConcurrencyError as conflict:
                if conflict.stream_id == payment_notification_id(event_id):
                    outcome = "duplicate"  # a concurrent delivery of the same event got there first
                elif attempt == _RETRIES:
                    raise
                else:
                    continue
            WEBHOOKS.labels(outcome).inc()
            return outcome
        raise AssertionError("unreachable")

    async def _apply_once(self, event_id: str, event_type: str, obj: dict[str, Any]) -> str:
        if await self._store.read_stream(payment_notification_id(event_id), to_version=1):
            return "duplicate"
        session_id = await self._session_of(obj)
        if session_id is not None:
            bind_log_fields(session_id=str(session_id))  # for the rest of the webhook's request
        notification = PaymentNotification.receive(event_id, event_type, session_id, self._clock())
        session = None
        if session_id is not None:
            try:
                session = await self._repository.get(session_id, ChargingSession, refresh=True)
            except AggregateNotFoundError:
                session = None
        outcome = "ignored"
        if session is not None:
            try:
                await self._apply(event_type, obj, session)
                outcome = "applied"
            except DomainError:
                # Recorded all the same: Stripe would otherwise redeliver it for days to no effect.
                _log.exception("webhook not applicable", extra={"event_id": event_id, "type": event_type})
                session.collect_events()
        # One atomic commit: the notification's stream (whose first version exists once per event id) and the
        # session events it caused. A redelivery conflicts on the notification and changes nothing.
        await self._repository.save(notification, *([session] if session is not None else []))
        return outcome

    async def _apply(self, event_type: str, obj: dict[str, Any], session: ChargingSession) -> None:
        at = self._clock()
        if session.breakdown is None:
            return
        currency = session.breakdown.currency
        if event_type == "payment_intent.succeeded":
            received = int(obj.get("amount_received") or obj["amount"])
            self._succeeded(session, str(obj["id"]), Money.from_minor_units(received, currency), at)
        elif event_type == "payment_intent.payment_failed":
            if session.open_payment is None:
                error = obj.get("last_payment_error") or {}
                session.payment_failed(
                    str(error.get("code") or "payment_failed"),
                    str(error.get("message") or "The payment did not go through."),
                    at,
                    str(obj["id"]),
                )
        elif event_type == "charge.refunded":
            intent_id = _id_of(obj.get("payment_intent"))
            if intent_id and obj.get("paid", True) and session.status is not SessionStatus.PAID:
                captured = int(obj.get("amount_captured") or obj["amount"])
                self._succeeded(session, intent_id, Money.from_minor_units(captured, currency), at)
            for refund in await self._refunds_of(obj):
                if refund.get("status") in ("failed", "canceled"):
                    continue
                number = (refund.get("metadata") or {}).get("csms_refund")
                session.record_refund(
                    str(refund["id"]),
                    Money.from_minor_units(int(refund["amount"]), currency),
                    at,
                    int(number) if isinstance(number, str) and number.isdigit() else None,
                )
        elif event_type in ("charge.dispute.created", "charge.dispute.closed"):
            dispute_id = str(obj["id"])
            amount = Money.from_minor_units(int(obj.get("amount") or 0), _currency(obj, currency))
            session.open_dispute(dispute_id, amount, str(obj.get("reason") or "unknown"), at)
            if event_type == "charge.dispute.closed":
                session.close_dispute(dispute_id, str(obj.get("status") or "closed"), at)

    @staticmethod
    def _succeeded(session: ChargingSession, intent_id: str, amount: Money, at: datetime) -> None:
        if session.status is SessionStatus.PAID:
            if session.payment_intent_id != intent_id:
                _log.error(
                    "session paid twice: refund one of the payments",
                    extra={"session_id": str(session.id), "also_charged": intent_id},
                )
            return
        if session.status in (SessionStatus.PRICED, SessionStatus.PAYMENT_FAILED):
            session.payment_succeeded(intent_id, amount, at)

    async def _refunds_of(self, charge: dict[str, Any]) -> list[dict[str, Any]]:
        listed = charge.get("refunds")
        if isinstance(listed, dict) and isinstance(listed.get("data"), list) and not listed.get("has_more"):
            return [r for r in listed["data"] if isinstance(r, dict)]
        # Newer API versions leave refunds out of the charge: ask for them.
        if self._gateway is None:
            return []
        return await self._gateway.refunds_of(str(charge["id"]))

    async def _session_of(self, obj: dict[str, Any]) -> UUID | None:
        """The session an object is about: from the PaymentIntent's metadata, fetched when not at hand."""
        found = _session_in(obj)
        if found is not None or self._gateway is None:
            return found
        intent_id = _id_of(obj.get("payment_intent"))
        if intent_id is None and _id_of(obj.get("charge")):
            charge = await self._gateway.charge_object(str(_id_of(obj.get("charge"))))
            intent_id = _id_of(charge.get("payment_intent"))
        if intent_id is None:
            return None
        try:
            return _session_in(await self._gateway.payment_intent(intent_id))
        except StripeRejected:
            return None


def _session_in(obj: dict[str, Any]) -> UUID | None:
    value = (obj.get("metadata") or {}).get("csms_session_id")
    try:
        return UUID(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _currency(obj: dict[str, Any], default: Currency) -> Currency:
    try:
        return Currency(str(obj.get("currency", "")).upper())
    except ValueError:
        return default


def _id_of(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None
