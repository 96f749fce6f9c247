"""The Company aggregate: a charge point operator, the tenant that owns stations, chargers and tariffs."""

from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from csms.domain.errors import CompanySuspended
from csms.domain.validation import require_aware, require_text

NAME_MAX_LENGTH = 100
REASON_MAX_LENGTH = 500


class Company(Aggregate):
    """A charge point operator. A suspended company keeps its data but may not operate."""

    @classmethod
    def create(cls, id: UUID, name: str, at: datetime) -> Self:
        return cls(
            id=id,
            name=require_text(name, "name", max_length=NAME_MAX_LENGTH),
            timestamp=require_aware(at, "at"),
        )

    @event("Created")
    def __init__(self, id: UUID, name: str, timestamp: datetime) -> None:
        self.name = name
        self.suspension_reason: str | None = None

    @property
    def is_active(self) -> bool:
        return self.suspension_reason is None

    def ensure_active(self) -> None:
        """Raise `CompanySuspended` unless the company may operate."""
        if self.suspension_reason is not None:
            raise CompanySuspended(f"company {self.name!r} is suspended: {self.suspension_reason}")

    def rename(self, name: str, at: datetime) -> None:
        name = require_text(name, "name", max_length=NAME_MAX_LENGTH)
        if name != self.name:
            self._renamed(name=name, timestamp=require_aware(at, "at"))

    def suspend(self, reason: str, at: datetime) -> None:
        reason = require_text(reason, "reason", max_length=REASON_MAX_LENGTH)
        if self.suspension_reason is None:
            self._suspended(reason=reason, timestamp=require_aware(at, "at"))

    def reactivate(self, at: datetime) -> None:
        if self.suspension_reason is not None:
            self._reactivated(timestamp=require_aware(at, "at"))

    @event("Renamed")
    def _renamed(self, name: str, timestamp: datetime) -> None:
        self.name = name

    @event("Suspended")
    def _suspended(self, reason: str, timestamp: datetime) -> None:
        self.suspension_reason = reason

    @event("Reactivated")
    def _reactivated(self, timestamp: datetime) -> None:
        self.suspension_reason = None
