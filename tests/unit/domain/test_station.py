"""Station: created with location and hours, updated, published, tariff assigned, removed."""

from datetime import time
from decimal import Decimal
from uuid import UUID

import pytest

from csms.domain import (
    Coordinates,
    InvalidState,
    InvalidValue,
    OpeningHours,
    RegularHours,
    Station,
)
from tests.unit.domain.support import (
    COMPANY_ID,
    STATION_ID,
    TARIFF_ID,
    amsterdam_address,
    amsterdam_coordinates,
    at,
    given,
    history,
    new_events,
    topics,
)


def create_station() -> Station:
    return Station.create(
        id=STATION_ID,
        company_id=COMPANY_ID,
        name="Centraal P1",
        address=amsterdam_address(),
        coordinates=amsterdam_coordinates(),
        time_zone="Europe/Amsterdam",
        at=at(),
    )


def created() -> list[object]:
    return history(create_station())


def test_create_defaults_to_open_around_the_clock_and_unpublished() -> None:
    station = create_station()

    [created_event] = new_events(station)
    assert topics([created_event]) == ["Station.Created"]
    assert created_event.coordinates == amsterdam_coordinates()
    assert created_event.opening_hours == OpeningHours.always()
    assert created_event.time_zone == "Europe/Amsterdam"
    assert not station.published
    assert station.tariff_id is None


def test_create_refuses_an_unknown_time_zone() -> None:
    with pytest.raises(InvalidValue, match="unknown time zone"):
        Station.create(
            id=STATION_ID,
            company_id=COMPANY_ID,
            name="Centraal P1",
            address=amsterdam_address(),
            coordinates=amsterdam_coordinates(),
            time_zone="Europe/Atlantis",
            at=at(),
        )


def test_update_records_only_the_fields_that_changed() -> None:
    station = given(Station, *created())
    hours = OpeningHours(False, (RegularHours(1, time(7), time(22)),))

    station.update(
        at(1),
        name="Centraal P1",  # unchanged
        coordinates=Coordinates(Decimal("52.379"), Decimal("4.9")),
        opening_hours=hours,
    )

    [updated] = new_events(station)
    assert topics([updated]) == ["Station.Updated"]
    assert updated.name is None
    assert updated.address is None
    assert updated.time_zone is None
    assert updated.coordinates == Coordinates(Decimal("52.379"), Decimal("4.9"))
    assert updated.opening_hours == hours
    assert station.opening_hours == hours


def test_update_without_changes_records_nothing() -> None:
    station = given(Station, *created())

    station.update(at(1), name="Centraal P1", time_zone="Europe/Amsterdam")

    assert new_events(station) == []


def test_publish_and_unpublish_are_idempotent() -> None:
    station = given(Station, *created())

    station.publish(at(1))
    station.publish(at(2))
    assert topics(new_events(station)) == ["Station.Published"]

    station.unpublish(at(3))
    station.unpublish(at(4))
    assert topics(new_events(station)) == ["Station.Unpublished"]


def test_assign_and_unassign_tariff() -> None:
    station = given(Station, *created())
    other = UUID("00000000-0000-4000-8000-0000000000ff")

    station.assign_tariff(TARIFF_ID, at(1))
    station.assign_tariff(TARIFF_ID, at(2))
    station.assign_tariff(other, at(3))
    station.unassign_tariff(at(4))

    events = new_events(station)
    assert topics(events) == [
        "Station.TariffAssigned",
        "Station.TariffAssigned",
        "Station.TariffUnassigned",
    ]
    assert [e.tariff_id for e in events[:2]] == [TARIFF_ID, other]
    assert station.tariff_id is None


def test_a_removed_station_is_unpublished_and_refuses_changes() -> None:
    station = given(Station, *created())
    station.publish(at(1))

    station.remove(at(2))

    assert topics(new_events(station)) == ["Station.Published", "Station.Removed"]
    assert not station.published
    with pytest.raises(InvalidState, match="was removed"):
        station.publish(at(3))
    with pytest.raises(InvalidState, match="was removed"):
        station.update(at(3), name="Reopened")


def test_rebuilding_from_events_reproduces_the_state() -> None:
    station = create_station()
    station.publish(at(1))
    station.assign_tariff(TARIFF_ID, at(2))
    station.update(at(3), name="Centraal P2")

    assert given(Station, *history(station)) == station
