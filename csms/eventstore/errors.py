"""Errors the event store raises, each naming what went wrong so callers can react precisely."""

from __future__ import annotations

from uuid import UUID


class EventStoreError(RuntimeError):
    """Base class of event store errors."""


class ConcurrencyError(EventStoreError):
    """An append's expected version is stale: someone else appended to the stream first.

    Callers reload the aggregate and retry the command, or fail it clearly.
    """

    def __init__(self, stream_id: UUID, expected_version: int, actual_version: int) -> None:
        super().__init__(
            f"stream {stream_id}: expected version {expected_version},"
            f" but the stream is at version {actual_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class UnknownTopicError(EventStoreError):
    """A stored event's topic is not registered, so it cannot be turned back into a domain event."""

    def __init__(self, topic: str) -> None:
        super().__init__(f"unknown event topic {topic!r}: register it in csms/domain/topics.py")
        self.topic = topic


class TranscodingError(EventStoreError):
    """An event's data does not match the shape its class declares."""


class AggregateNotFoundError(EventStoreError):
    """No events exist for the requested aggregate id."""

    def __init__(self, stream_id: UUID) -> None:
        super().__init__(f"no aggregate with id {stream_id}")
        self.stream_id = stream_id


class TrackingConflictError(EventStoreError):
    """A consumer tried to record a position that is not ahead of the stored one.

    This means another instance of the same consumer already processed the event: the caller's
    transaction must roll back so the effect is not applied twice.
    """

    def __init__(self, consumer: str, position: int) -> None:
        super().__init__(f"consumer {consumer!r} is already at or beyond position {position}")
        self.consumer = consumer
        self.position = position
