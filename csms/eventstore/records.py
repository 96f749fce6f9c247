"""The shapes events take at the store's boundary: to be appended, and as recorded in the log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An encoded event waiting to be appended; the store assigns its version and position."""

    topic: str
    data: bytes  # JSON, as produced by the codec
    schema_version: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored: immutable, globally ordered by `position`."""

    position: int
    stream_id: UUID
    stream_version: int
    topic: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Where an append landed: the stream's new version and the log position of its last event."""

    stream_id: UUID
    version: int
    position: int
