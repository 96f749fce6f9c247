"""Stripe webhooks: delivered three times in shuffled order they take effect once; forged, stale and
future-dated ones are refused."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from csms.domain import ChargingSession, SessionStatus
from csms.eventstore import EventStore, create_pool
from tests.integration.payments.world import priced_session, repository_for
from write_api.billing.webhooks import StripeWebhooks, WebhookRejected, sign

SECRET = "whsec_test_secret"


def _event(event_id: str, event_type: str, obj: dict[str, object]) -> bytes:
    return orjson.dumps({"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}})


async def test_three_shuffled_deliveries_take_effect_once(database_url: str) -> None:
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    repository = repository_for(store)
    try:
        session = priced_session(None)
        await repository.save(session)
        cents = session.breakdown.total.in_minor_units  # type: ignore[union-attr]
        meta = {"csms_session_id": str(session.id)}
        intent = f"pi_{uuid.uuid4().hex[:12]}"
        refund = {"id": f"re_{uuid.uuid4().hex[:8]}", "amount": 100, "status": "succeeded", "metadata": {}}
        dispute = {
            "id": f"dp_{uuid.uuid4().hex[:8]}",
            "amount": cents,
            "currency": "eur",
            "reason": "fraudulent",
            "metadata": meta,
        }
        events = [
            _event(
                f"evt_{uuid.uuid4().hex}",
                "payment_intent.succeeded",
                {"id": intent, "amount": cents, "amount_received": cents, "metadata": meta},
            ),
            _event(
                f"evt_{uuid.uuid4().hex}",
                "charge.refunded",
                {
                    "id": "ch_1",
                    "payment_intent": intent,
                    "amount": cents,
                    "paid": True,
                    "metadata": meta,
                    "refunds": {"data": [refund], "has_more": False},
                },
            ),
            _event(
                f"evt_{uuid.uuid4().hex}", "charge.dispute.created", {**dispute, "status": "needs_response"}
            ),
            _event(f"evt_{uuid.uuid4().hex}", "charge.dispute.closed", {**dispute, "status": "won"}),
            _event(f"evt_{uuid.uuid4().hex}", "customer.created", {"id": "cus_1"}),
        ]
        deliveries = events * 3
        random.Random(3).shuffle(deliveries)
        webhooks = StripeWebhooks(store, repository, None, SECRET, lambda: datetime.now(UTC))

        outcomes = [await webhooks.receive(body, sign(body, SECRET, int(time.time()))) for body in deliveries]

        paid = await repository.get(session.id, ChargingSession)
        assert paid.status is SessionStatus.PAID
        assert paid.payment_intent_id == intent
        assert list(paid.refunds) == [refund["id"]]
        assert paid.disputes == {dispute["id"]: "won"}
        topics = [e.topic for e in await store.read_stream(session.id)][3:]
        assert sorted(topics) == sorted(
            [
                "ChargingSession.PaymentSucceeded",
                "ChargingSession.Refunded",
                "ChargingSession.DisputeOpened",
                "ChargingSession.DisputeClosed",
            ]
        )
        assert outcomes.count("duplicate") == 8  # the second and third delivery of each handled event
        assert outcomes.count("ignored") == 3  # customer.created: acknowledged, nothing else
    finally:
        await store.close()
        await pool.close()


@pytest.mark.parametrize(
    ("what", "signed_at", "secret"),
    [
        ("forged", 0, "whsec_someone_else"),
        ("stale", -301, SECRET),
        ("future", +301, SECRET),
    ],
)
async def test_forged_stale_and_future_webhooks_are_refused(
    database_url: str, what: str, signed_at: int, secret: str
) -> None:
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    try:
        session = priced_session(None)
        repository = repository_for(store)
        await repository.save(session)
        body = _event(
            f"evt_{uuid.uuid4().hex}",
            "payment_intent.succeeded",
            {"id": "pi_x", "amount": 1, "metadata": {"csms_session_id": str(session.id)}},
        )
        webhooks = StripeWebhooks(store, repository, None, SECRET, lambda: datetime.now(UTC))

        with pytest.raises(WebhookRejected):
            await webhooks.receive(body, sign(body, secret, int(time.time()) + signed_at))
        with pytest.raises(WebhookRejected):  # a valid signature over other bytes
            await webhooks.receive(body + b" ", sign(body, SECRET, int(time.time())))

        assert (await repository.get(session.id, ChargingSession)).status is SessionStatus.PRICED, what
    finally:
        await store.close()
        await pool.close()
