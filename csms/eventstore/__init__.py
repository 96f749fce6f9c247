"""The Postgres event store: the only source of truth for domain facts (see docs/adr)."""

from csms.eventstore.codec import EventCodec
from csms.eventstore.connection import DatabaseUnavailableError, create_pool
from csms.eventstore.errors import (
    AggregateNotFoundError,
    ConcurrencyError,
    EventStoreError,
    TrackingConflictError,
    TranscodingError,
    UnknownTopicError,
)
from csms.eventstore.recorder import Submission
from csms.eventstore.records import AppendResult, NewEvent, RecordedEvent
from csms.eventstore.repository import AggregateCache, Repository
from csms.eventstore.store import EventStore
from csms.eventstore.subscription import Subscription

__all__ = [
    "AggregateCache",
    "AggregateNotFoundError",
    "AppendResult",
    "ConcurrencyError",
    "DatabaseUnavailableError",
    "EventCodec",
    "EventStore",
    "EventStoreError",
    "NewEvent",
    "RecordedEvent",
    "Repository",
    "Submission",
    "Subscription",
    "TrackingConflictError",
    "TranscodingError",
    "UnknownTopicError",
    "create_pool",
]
