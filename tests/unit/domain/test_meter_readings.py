"""MeterReadings: a session's readings in integer columns, an immutable sequence whose views share storage
without ever seeing each other's items."""

from __future__ import annotations

import copy
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone

import pytest

from csms.domain.meter_readings import MeterReadings
from csms.domain.metering import MeterReading

_T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def reading(seconds: int, energy_wh: int | None = None, **measured: int | None) -> MeterReading:
    return MeterReading(measured_at=_T0 + timedelta(seconds=seconds), energy_wh=energy_wh, **measured)


def test_a_reading_comes_back_as_recorded() -> None:
    plus_one = timezone(timedelta(hours=1))
    recorded = (
        reading(0, 1_000, power_w=11_000, soc_percent=40),
        reading(10, 1_030),  # nothing but the register
        reading(20, None, power_w=-3_000),  # a vehicle feeding power back, no register
        MeterReading(measured_at=datetime(2026, 11, 29, 9, 0, 30, 123456, tzinfo=plus_one)),
    )
    readings = MeterReadings(recorded)
    assert tuple(readings) == recorded
    assert readings[-1].measured_at == recorded[-1].measured_at  # the same instant, in UTC
    assert readings[-1].measured_at.tzinfo is UTC
    assert readings[2].energy_wh is None
    assert readings[2].power_w == -3_000
    assert readings.last_measured_at == recorded[-1].measured_at
    assert MeterReadings().last_measured_at is None


def test_values_beyond_64_bits_are_kept_too() -> None:
    huge = reading(10, 2**70, power_w=-(2**63))
    base = MeterReadings([reading(0, 1)])
    grown = base.extended([huge])
    assert tuple(grown) == (reading(0, 1), huge)
    assert tuple(grown.extended([reading(20, 5)])) == (reading(0, 1), huge, reading(20, 5))
    assert tuple(base.extended([reading(30, None)])) == (reading(0, 1), reading(30, None))
    assert tuple(base) == (reading(0, 1),)


def test_extending_returns_a_longer_sequence_and_leaves_the_original_alone() -> None:
    empty = MeterReadings()
    one = empty.extended([reading(1, 1)])
    three = one.extended([reading(2, 2), reading(3, 3)])
    assert (len(empty), len(one), len(three)) == (0, 1, 3)
    assert (three[0], three[-1], three[1:]) == (reading(1, 1), reading(3, 3), (reading(2, 2), reading(3, 3)))
    with pytest.raises(IndexError):
        one[1]
    with pytest.raises(IndexError):
        one[-2]


def test_views_that_branch_from_one_state_never_see_each_others_items() -> None:
    base = MeterReadings([reading(1, 1), reading(2, 2)])
    left = base.extended([reading(3, 3)])  # grows the shared columns
    right = base.extended([reading(4, 4)])  # the columns are past `base` now: copies its prefix
    assert [r.energy_wh for r in left] == [1, 2, 3]
    assert [r.energy_wh for r in right] == [1, 2, 4]
    assert [r.energy_wh for r in base] == [1, 2]
    assert [r.energy_wh for r in left.extended([reading(5, 5)])] == [1, 2, 3, 5]
    assert [r.energy_wh for r in right.extended([reading(6, 6)])] == [1, 2, 4, 6]
    assert ([r.energy_wh for r in left], [r.energy_wh for r in right]) == ([1, 2, 3], [1, 2, 4])


def test_extending_the_newest_view_appends_in_place() -> None:
    base = MeterReadings([reading(1, 1)])
    grown = base.extended([reading(2, 2)])
    assert grown._columns is base._columns  # no copy of what came before
    assert base.extended([]) is base


def test_it_compares_hashes_and_copies_as_its_readings() -> None:
    readings = MeterReadings([reading(1, 1)]).extended([reading(2, 2)])
    assert readings == MeterReadings([reading(1, 1), reading(2, 2)]) == (reading(1, 1), reading(2, 2))
    assert readings != MeterReadings([reading(1, 1)])
    assert hash(readings) == hash((reading(1, 1), reading(2, 2)))
    assert copy.deepcopy(readings) == readings


def test_a_reading_costs_a_fraction_of_its_object() -> None:
    many = [reading(10 * n, 1_000_000 + 30 * n, power_w=11_000 + n, soc_percent=n % 100) for n in range(2900)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        readings = MeterReadings().extended(many)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(readings) == 2_900
    assert held / len(readings) < 48  # four 8-byte columns and their growth; a MeterReading is 186 bytes
