"""Tariff: terms validated, changed, archived; snapshots freeze the terms for a session."""

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from csms.domain import (
    Currency,
    DayOfWeek,
    InvalidValue,
    PriceComponent,
    Tariff,
    TariffArchived,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
)
from tests.unit.domain.support import COMPANY_ID, TARIFF_ID, at, given, history, new_events, topics

ENERGY = TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal("0.30")),))
NIGHT = TariffElement(
    (PriceComponent(TariffDimension.ENERGY, Decimal("0.20")),),
    TariffRestrictions(start_time=time(22), end_time=time(6)),
)


def create() -> Tariff:
    return Tariff.create(
        id=TARIFF_ID,
        company_id=COMPANY_ID,
        name="Standard",
        currency=Currency.EUR,
        vat_percent=Decimal("21"),
        elements=(ENERGY,),
        at=at(),
    )


def created() -> list[Any]:
    return history(create())


def test_create_records_the_terms() -> None:
    tariff = create()

    [created_event] = new_events(tariff)
    assert topics([created_event]) == ["Tariff.Created"]
    assert created_event.currency is Currency.EUR
    assert created_event.vat_percent == Decimal("21")
    assert created_event.elements == (ENERGY,)
    assert created_event.parking_grace_period_s == 0


def test_a_tariff_needs_elements() -> None:
    with pytest.raises(InvalidValue, match="at least one element"):
        Tariff.create(
            id=TARIFF_ID,
            company_id=COMPANY_ID,
            name="Empty",
            currency=Currency.EUR,
            vat_percent=Decimal("21"),
            elements=(),
            at=at(),
        )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: PriceComponent(TariffDimension.ENERGY, Decimal("-0.01")), "price"),
        (lambda: PriceComponent(TariffDimension.TIME, Decimal("1"), step_size=0), "step_size"),
        (
            lambda: TariffElement(
                (
                    PriceComponent(TariffDimension.ENERGY, Decimal("0.3")),
                    PriceComponent(TariffDimension.ENERGY, Decimal("0.4")),
                )
            ),
            "each dimension once",
        ),
        (lambda: TariffRestrictions(start_time=time(8), end_time=time(8)), "must differ"),
        (lambda: TariffRestrictions(min_kwh=Decimal(50), max_kwh=Decimal(20)), "max_kwh"),
        (
            lambda: TariffRestrictions(start_date=date(2024, 2, 1), end_date=date(2024, 1, 1)),
            "end_date",
        ),
        (lambda: TariffRestrictions(day_of_week=("MONDAY",)), "DayOfWeek"),  # type: ignore[arg-type]
    ],
)
def test_terms_are_validated(build: Any, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        build()


def test_vat_is_a_percentage() -> None:
    tariff = given(Tariff, *created())

    with pytest.raises(InvalidValue, match="vat_percent"):
        tariff.change_vat(Decimal("120"), at(1))


def test_changes_record_only_what_changed() -> None:
    tariff = given(Tariff, *created())

    tariff.replace_elements((ENERGY,), at(1))
    tariff.replace_elements((NIGHT, ENERGY), at(2))
    tariff.change_vat(Decimal("21"), at(3))
    tariff.change_vat(Decimal("9"), at(4))
    tariff.change_parking_grace_period(900, at(5))
    tariff.rename("Night saver", at(6))

    events = new_events(tariff)
    assert topics(events) == [
        "Tariff.ElementsReplaced",
        "Tariff.VatChanged",
        "Tariff.ParkingGracePeriodChanged",
        "Tariff.Renamed",
    ]
    assert events[0].elements == (NIGHT, ENERGY)


def test_the_snapshot_does_not_follow_later_changes() -> None:
    tariff = given(Tariff, *created())
    snapshot = tariff.snapshot()

    tariff.replace_elements((NIGHT, ENERGY), at(1))
    tariff.change_vat(Decimal("9"), at(2))

    assert snapshot.elements == (ENERGY,)
    assert snapshot.vat_percent == Decimal("21")
    assert snapshot.tariff_version == 1
    assert tariff.snapshot().tariff_version == 3


def test_an_archived_tariff_refuses_changes() -> None:
    tariff = given(Tariff, *created())

    tariff.archive(at(1))
    tariff.archive(at(2))

    assert topics(new_events(tariff)) == ["Tariff.Archived"]
    with pytest.raises(TariffArchived):
        tariff.ensure_active()
    with pytest.raises(TariffArchived):
        tariff.change_vat(Decimal("9"), at(3))


class TestRestrictions:
    """OCPI TariffRestrictions, evaluated at a local moment."""

    def test_a_band_across_midnight(self) -> None:
        night = TariffRestrictions(start_time=time(22), end_time=time(6))
        assert night.matches(_local(21, 59), Decimal(0), Decimal(0)) is False
        assert night.matches(_local(22, 0), Decimal(0), Decimal(0)) is True
        assert night.matches(_local(3, 0), Decimal(0), Decimal(0)) is True
        assert night.matches(_local(6, 0), Decimal(0), Decimal(0)) is False

    def test_end_time_midnight_means_end_of_day(self) -> None:
        evening = TariffRestrictions(start_time=time(18), end_time=time(0))
        assert evening.matches(_local(23, 59), Decimal(0), Decimal(0))
        assert not evening.matches(_local(0, 0), Decimal(0), Decimal(0))

    def test_days_dates_energy_and_duration(self) -> None:
        weekend = TariffRestrictions(day_of_week=(DayOfWeek.SATURDAY, DayOfWeek.SUNDAY))
        assert not weekend.matches(_local(12, 0), Decimal(0), Decimal(0))  # a Monday
        january = TariffRestrictions(start_date=date(2024, 1, 1), end_date=date(2024, 1, 15))
        assert not january.matches(_local(12, 0), Decimal(0), Decimal(0))  # end is exclusive
        bulk = TariffRestrictions(min_kwh=Decimal(20), max_kwh=Decimal(50))
        assert not bulk.matches(_local(12, 0), Decimal(19_999), Decimal(0))
        assert bulk.matches(_local(12, 0), Decimal(20_000), Decimal(0))
        assert not bulk.matches(_local(12, 0), Decimal(50_000), Decimal(0))
        long_stay = TariffRestrictions(min_duration_s=3600)
        assert long_stay.matches(_local(12, 0), Decimal(0), Decimal(3600))


def _local(hour: int, minute: int) -> datetime:
    return datetime(2024, 1, 15, hour, minute)  # a Monday, wall-clock time


def test_rebuilding_from_events_reproduces_the_state() -> None:
    tariff = create()
    tariff.replace_elements((NIGHT, ENERGY), at(1))
    tariff.archive(at(2))

    assert given(Tariff, *history(tariff)) == tariff
