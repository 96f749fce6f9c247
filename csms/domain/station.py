"""The Station aggregate: a charging location (OCPI Location) with address, hours and tariff."""

from datetime import datetime
from typing import Self, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from csms.domain.errors import InvalidState, InvalidValue
from csms.domain.location import Address, Coordinates, require_time_zone
from csms.domain.opening_hours import OpeningHours
from csms.domain.validation import require_aware, require_instance, require_text

NAME_MAX_LENGTH = 255

_T = TypeVar("_T")


class Station(Aggregate):
    """A place drivers can find and charge at, owned by one company.

    `time_zone` is the IANA zone OCPI tariff restrictions are read in; a station must be
    published before it shows up in discovery.
    """

    @classmethod
    def create(
        cls,
        id: UUID,
        company_id: UUID,
        name: str,
        address: Address,
        coordinates: Coordinates,
        time_zone: str,
        at: datetime,
        opening_hours: OpeningHours | None = None,
    ) -> Self:
        return cls(
            id=id,
            company_id=company_id,
            name=require_text(name, "name", max_length=NAME_MAX_LENGTH),
            address=require_instance(address, Address, "address"),
            coordinates=require_instance(coordinates, Coordinates, "coordinates"),
            time_zone=require_time_zone(time_zone),
            opening_hours=(
                OpeningHours.always()
                if opening_hours is None
                else require_instance(opening_hours, OpeningHours, "opening_hours")
            ),
            timestamp=require_aware(at, "at"),
        )

    # Version 2 of this event's schema; version 1 is upcast in csms.domain.upcasters.
    @event("Created")
    def __init__(
        self,
        id: UUID,
        company_id: UUID,
        name: str,
        address: Address,
        coordinates: Coordinates,
        time_zone: str,
        opening_hours: OpeningHours,
        timestamp: datetime,
    ) -> None:
        self.company_id = company_id
        self.name = name
        self.address = address
        self.coordinates = coordinates
        self.time_zone = time_zone
        self.opening_hours = opening_hours
        self.published = False
        self.tariff_id: UUID | None = None
        self.removed = False

    def update(
        self,
        at: datetime,
        *,
        name: str | None = None,
        address: Address | None = None,
        coordinates: Coordinates | None = None,
        time_zone: str | None = None,
        opening_hours: OpeningHours | None = None,
    ) -> None:
        """Change any of the descriptive fields; one `Updated` event carries only those that changed."""
        self._ensure_not_removed()
        if name is not None:
            name = require_text(name, "name", max_length=NAME_MAX_LENGTH)
        if address is not None:
            require_instance(address, Address, "address")
        if coordinates is not None:
            require_instance(coordinates, Coordinates, "coordinates")
        if time_zone is not None:
            require_time_zone(time_zone)
        if opening_hours is not None:
            require_instance(opening_hours, OpeningHours, "opening_hours")
        new_name = _changed(self.name, name)
        new_address = _changed(self.address, address)
        new_coordinates = _changed(self.coordinates, coordinates)
        new_time_zone = _changed(self.time_zone, time_zone)
        new_opening_hours = _changed(self.opening_hours, opening_hours)
        changes = (new_name, new_address, new_coordinates, new_time_zone, new_opening_hours)
        if any(change is not None for change in changes):
            self._updated(
                name=new_name,
                address=new_address,
                coordinates=new_coordinates,
                time_zone=new_time_zone,
                opening_hours=new_opening_hours,
                timestamp=require_aware(at, "at"),
            )

    def publish(self, at: datetime) -> None:
        self._ensure_not_removed()
        if not self.published:
            self._published(timestamp=require_aware(at, "at"))

    def unpublish(self, at: datetime) -> None:
        if self.published:
            self._unpublished(timestamp=require_aware(at, "at"))

    def assign_tariff(self, tariff_id: UUID, at: datetime) -> None:
        """Price new sessions here with this tariff (running sessions keep their snapshot)."""
        self._ensure_not_removed()
        if not isinstance(tariff_id, UUID):
            raise InvalidValue(f"tariff_id must be a UUID, got {tariff_id!r}")
        if tariff_id != self.tariff_id:
            self._tariff_assigned(tariff_id=tariff_id, timestamp=require_aware(at, "at"))

    def unassign_tariff(self, at: datetime) -> None:
        if self.tariff_id is not None:
            self._tariff_unassigned(timestamp=require_aware(at, "at"))

    def remove(self, at: datetime) -> None:
        """Take the station out of service for good; it is no longer discoverable."""
        if not self.removed:
            self._removed(timestamp=require_aware(at, "at"))

    def _ensure_not_removed(self) -> None:
        if self.removed:
            raise InvalidState(f"station {self.name!r} was removed")

    @event("Updated")
    def _updated(
        self,
        name: str | None,
        address: Address | None,
        coordinates: Coordinates | None,
        time_zone: str | None,
        opening_hours: OpeningHours | None,
        timestamp: datetime,
    ) -> None:
        # None means "unchanged": every field of a station is required, so None is never a value.
        if name is not None:
            self.name = name
        if address is not None:
            self.address = address
        if coordinates is not None:
            self.coordinates = coordinates
        if time_zone is not None:
            self.time_zone = time_zone
        if opening_hours is not None:
            self.opening_hours = opening_hours

    @event("Published")
    def _published(self, timestamp: datetime) -> None:
        self.published = True

    @event("Unpublished")
    def _unpublished(self, timestamp: datetime) -> None:
        self.published = False

    @event("TariffAssigned")
    def _tariff_assigned(self, tariff_id: UUID, timestamp: datetime) -> None:
        self.tariff_id = tariff_id

    @event("TariffUnassigned")
    def _tariff_unassigned(self, timestamp: datetime) -> None:
        self.tariff_id = None

    @event("Removed")
    def _removed(self, timestamp: datetime) -> None:
        self.removed = True
        self.published = False


def _changed(current: _T, new: _T | None) -> _T | None:
    return new if new is not None and new != current else None
