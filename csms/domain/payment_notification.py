"""PaymentNotification: one notification from the payment provider (a Stripe webhook event), recorded once.

Its stream id is derived from the provider's event id, so recording the same notification again conflicts
on the stream's first version: the event store's own uniqueness turns a redelivered webhook into a no-op,
in the same atomic commit as the session events the notification caused.
"""

from datetime import datetime
from typing import Self
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from csms.domain.validation import require_aware, require_text

_NAMESPACE = UUID("2f0e6a8c-9d4b-4c61-8f5e-7a3b1c2d4e5f")


def payment_notification_id(provider_event_id: str) -> UUID:
    """The stream id of a provider event: the same event id always names the same stream."""
    return uuid5(_NAMESPACE, provider_event_id)


class PaymentNotification(Aggregate):
    """A provider event we acted on (or chose to ignore), and the session it concerned."""

    @classmethod
    def receive(cls, provider_event_id: str, event_type: str, session_id: UUID | None, at: datetime) -> Self:
        provider_event_id = require_text(provider_event_id, "provider_event_id", max_length=255)
        return cls(
            id=payment_notification_id(provider_event_id),
            provider_event_id=provider_event_id,
            event_type=require_text(event_type, "event_type", max_length=255),
            session_id=session_id,
            timestamp=require_aware(at, "at"),
        )

    @event("Received")
    def __init__(
        self,
        id: UUID,
        provider_event_id: str,
        event_type: str,
        session_id: UUID | None,
        timestamp: datetime,
    ) -> None:
        self.provider_event_id = provider_event_id
        self.event_type = event_type
        self.session_id = session_id
