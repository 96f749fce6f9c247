"""Pricing worked examples, computed by hand in each docstring."""

from datetime import UTC, datetime, time
from decimal import Decimal

from csms.domain import (
    Currency,
    MeterReading,
    PriceComponent,
    PriceLine,
    SessionFacts,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
    TariffSnapshot,
    price_session,
)
from tests.unit.domain.support import TARIFF_ID

ENERGY = TariffDimension.ENERGY
TIME = TariffDimension.TIME
PARKING = TariffDimension.PARKING_TIME
FLAT = TariffDimension.FLAT


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def element(
    dimension: TariffDimension,
    price: str,
    step_size: int = 1,
    restrictions: TariffRestrictions | None = None,
) -> TariffElement:
    return TariffElement((PriceComponent(dimension, Decimal(price), step_size),), restrictions)


def snapshot(
    *elements: TariffElement,
    vat: str = "0",
    currency: Currency = Currency.EUR,
    grace_s: int = 0,
) -> TariffSnapshot:
    return TariffSnapshot(
        tariff_id=TARIFF_ID,
        tariff_version=1,
        name="Test",
        currency=currency,
        vat_percent=Decimal(vat),
        elements=elements,
        parking_grace_period_s=grace_s,
    )


def facts(
    start: datetime,
    stop: datetime,
    meter_start: int,
    meter_stop: int,
    *readings: tuple[datetime, int],
    time_zone: str = "Europe/Amsterdam",
) -> SessionFacts:
    return SessionFacts(
        started_at=start,
        stopped_at=stop,
        meter_start_wh=meter_start,
        meter_stop_wh=meter_stop,
        readings=tuple(MeterReading(measured_at=t, energy_wh=wh) for t, wh in readings),
        time_zone=time_zone,
    )


def line(dimension: TariffDimension, quantity: str, unit_price: str, amount: str) -> PriceLine:
    return PriceLine(dimension, Decimal(quantity), Decimal(unit_price), Decimal(amount))


def test_energy_with_vat_rounds_the_half_cent_up() -> None:
    """0.25 EUR/kWh excl. VAT, 20% VAT, 14 750 Wh.

    Excl. VAT: 14.75 kWh x 0.25 = 3.6875. Incl. VAT: 3.6875 x 1.20 = 4.425, exactly half a
    cent, which ROUND_HALF_UP takes to 4.43 (banker's rounding would give 4.42).
    Total excl. VAT rounds to 3.69, so VAT is 4.43 - 3.69 = 0.74.
    """
    breakdown = price_session(
        facts(utc(2024, 1, 15, 9), utc(2024, 1, 15, 10), 1_000_000, 1_014_750),
        snapshot(element(ENERGY, "0.25"), vat="20"),
    )

    assert breakdown.lines == (line(ENERGY, "14750", "0.25", "3.6875"),)
    assert breakdown.total_incl_vat == Decimal("4.43")
    assert breakdown.total_excl_vat == Decimal("3.69")
    assert breakdown.vat_amount == Decimal("0.74")
    assert breakdown.total.in_minor_units == 443


def test_energy_step_size_rounds_the_session_total_up() -> None:
    """Same session, billed in blocks of 500 Wh: 14 750 Wh -> 15 000 Wh.

    15 kWh x 0.25 = 3.75 excl. VAT; x 1.20 = 4.50 incl. VAT; VAT 0.75.
    """
    breakdown = price_session(
        facts(utc(2024, 1, 15, 9), utc(2024, 1, 15, 10), 1_000_000, 1_014_750),
        snapshot(element(ENERGY, "0.25", step_size=500), vat="20"),
    )

    assert breakdown.lines == (line(ENERGY, "15000", "0.25", "3.75"),)
    assert breakdown.total_incl_vat == Decimal("4.50")
    assert breakdown.vat_amount == Decimal("0.75")


def test_time_of_day_band_across_midnight_splits_energy_between_readings() -> None:
    """Amsterdam (UTC+1 in January), 0.20 EUR/kWh from 22:00 to 06:00, else 0.40; VAT 21%.

    Session 21:30-00:30 local (20:30-23:30 UTC), meter 100 000 -> 114 000 Wh, readings at
    21:45 (102 000), 22:15 (105 000) and 23:00 (110 000) local.

    Day band: 21:30-21:45 2 000 Wh, plus half of the 3 000 Wh between 21:45 and 22:15
    (linear split at 22:00) = 1 500 Wh -> 3 500 Wh x 0.40 = 1.40.
    Night band: 1 500 + 5 000 (22:15-23:00) + 4 000 (23:00-00:30) = 10 500 Wh x 0.20 = 2.10.
    Excl. VAT 3.50; incl. VAT 3.50 x 1.21 = 4.235 -> 4.24; VAT 0.74.
    """
    night = TariffRestrictions(start_time=time(22), end_time=time(6))
    breakdown = price_session(
        facts(
            utc(2024, 1, 15, 20, 30),
            utc(2024, 1, 15, 23, 30),
            100_000,
            114_000,
            (utc(2024, 1, 15, 20, 45), 102_000),
            (utc(2024, 1, 15, 21, 15), 105_000),
            (utc(2024, 1, 15, 22, 0), 110_000),
        ),
        snapshot(element(ENERGY, "0.20", restrictions=night), element(ENERGY, "0.40"), vat="21"),
    )

    assert set(breakdown.lines) == {
        line(ENERGY, "3500", "0.40", "1.40"),
        line(ENERGY, "10500", "0.20", "2.10"),
    }
    assert breakdown.total_excl_vat == Decimal("3.50")
    assert breakdown.total_incl_vat == Decimal("4.24")
    assert breakdown.vat_amount == Decimal("0.74")


def test_flat_time_and_parking_after_the_grace_period() -> None:
    """1.00 start fee, 2.00/h charging (step 60 s), 6.00/h parking (step 300 s) after a
    15 minute grace period; VAT 20%.

    Session 10:00-12:02, 10 000 Wh; readings 10:30 (5 000), 11:10 (10 000), 11:40 (10 000):
    energy stops increasing at 11:10, so charging ends there.
    TIME: 70 min = 4 200 s x 2.00/h = 2.3333... Not rounded to its step, because parking
    follows it (OCPI mod_cdrs: step_size applies to the last time-based period only).
    PARKING_TIME: 11:10 + 15 min grace = 11:25 until 12:02 = 37 min, rounded up to 40 min
    (2 400 s) x 6.00/h = 4.00.
    FLAT: 1.00. Excl. VAT 7.3333...; incl. VAT x 1.20 = 8.80 exactly; excl. rounds to 7.33;
    VAT 1.47.
    """
    breakdown = price_session(
        facts(
            utc(2024, 1, 15, 10),
            utc(2024, 1, 15, 12, 2),
            0,
            10_000,
            (utc(2024, 1, 15, 10, 30), 5_000),
            (utc(2024, 1, 15, 11, 10), 10_000),
            (utc(2024, 1, 15, 11, 40), 10_000),
        ),
        snapshot(
            TariffElement(
                (
                    PriceComponent(FLAT, Decimal("1.00")),
                    PriceComponent(TIME, Decimal("2.00"), step_size=60),
                    PriceComponent(PARKING, Decimal("6.00"), step_size=300),
                )
            ),
            vat="20",
            grace_s=900,
        ),
    )

    assert breakdown.lines == (
        line(FLAT, "1", "1.00", "1"),
        line(TIME, "4200", "2.00", "2.333333"),
        line(PARKING, "2400", "6.00", "4"),
    )
    assert breakdown.total_incl_vat == Decimal("8.80")
    assert breakdown.total_excl_vat == Decimal("7.33")
    assert breakdown.vat_amount == Decimal("1.47")


def test_a_currency_without_minor_units() -> None:
    """35 JPY/kWh, VAT 10%, 12 345 Wh: 432.075 excl. VAT, 475.2825 incl. VAT -> 475 JPY.

    Excl. VAT rounds to 432 JPY, so VAT is 43 JPY.
    """
    breakdown = price_session(
        facts(utc(2024, 1, 15, 1), utc(2024, 1, 15, 2), 0, 12_345, time_zone="Asia/Tokyo"),
        snapshot(element(ENERGY, "35"), vat="10", currency=Currency.JPY),
    )

    assert breakdown.total_incl_vat == Decimal("475")
    assert breakdown.total_excl_vat == Decimal("432")
    assert breakdown.vat_amount == Decimal("43")
    assert breakdown.total.in_minor_units == 475


def test_daylight_saving_time_moves_the_band_boundary_in_utc() -> None:
    """Amsterdam on 31 March 2024, the day summer time starts (UTC+2 from 01:00 UTC).

    0.20 EUR/kWh from 22:00 to 06:00 local, else 0.40. Session 03:30-05:30 UTC
    (05:30-07:30 CEST), 1 000 Wh every half hour.
    06:00 local is 04:00 UTC that day: 1 000 Wh x 0.20 = 0.20 and 3 000 Wh x 0.40 = 1.20,
    1.40 in total. (Applying the winter offset would wrongly put the boundary at 05:00 UTC
    and give 1.00.)
    """
    night = TariffRestrictions(start_time=time(22), end_time=time(6))
    breakdown = price_session(
        facts(
            utc(2024, 3, 31, 3, 30),
            utc(2024, 3, 31, 5, 30),
            0,
            4_000,
            (utc(2024, 3, 31, 4), 1_000),
            (utc(2024, 3, 31, 4, 30), 2_000),
            (utc(2024, 3, 31, 5), 3_000),
        ),
        snapshot(element(ENERGY, "0.20", restrictions=night), element(ENERGY, "0.40")),
    )

    assert set(breakdown.lines) == {
        line(ENERGY, "1000", "0.20", "0.20"),
        line(ENERGY, "3000", "0.40", "1.20"),
    }
    assert breakdown.total_incl_vat == Decimal("1.40")


def test_a_band_starting_in_the_skipped_hour_starts_at_the_clock_change() -> None:
    """Amsterdam, 31 March 2024: clocks jump from 02:00 to 03:00 local at 01:00 UTC, so
    02:30 never happens and a band starting at 02:30 starts at the jump.

    0.20 EUR/kWh from 02:30 to 06:00 local, else 0.40; TIME 1.00/h. Session 00:30-01:30 UTC
    (01:30 CET - 03:30 CEST), 2 000 Wh with no readings in between, so spread evenly.
    Before 01:00 UTC: 1 000 Wh x 0.40 = 0.40; after: 1 000 Wh x 0.20 = 0.20.
    TIME bills the real hour that passed (the wall clock shows two): 1.00. Total 1.60.
    """
    band = TariffRestrictions(start_time=time(2, 30), end_time=time(6))
    breakdown = price_session(
        facts(utc(2024, 3, 31, 0, 30), utc(2024, 3, 31, 1, 30), 0, 2_000),
        snapshot(
            element(ENERGY, "0.20", restrictions=band),
            TariffElement((PriceComponent(ENERGY, Decimal("0.40")), PriceComponent(TIME, Decimal("1.00")))),
        ),
    )

    assert set(breakdown.lines) == {
        line(ENERGY, "1000", "0.40", "0.40"),
        line(ENERGY, "1000", "0.20", "0.20"),
        line(TIME, "3600", "1.00", "1"),
    }
    assert breakdown.total_incl_vat == Decimal("1.60")


def test_the_repeated_hour_when_summer_time_ends_is_priced_by_wall_clock() -> None:
    """Amsterdam, 27 October 2024: at 01:00 UTC clocks go back from 03:00 to 02:00 local,
    so 02:00-03:00 local happens twice.

    0.20 EUR/kWh from 02:30 to 06:00 local, else 0.40. Session 00:00-02:00 UTC, 4 000 Wh
    spread evenly (1 000 Wh per half hour):
    00:00-00:30 UTC = 02:00-02:30 CEST -> 0.40; 00:30-01:00 = 02:30-03:00 CEST -> 0.20;
    01:00-01:30 = 02:00-02:30 CET -> 0.40; 01:30-02:00 = 02:30-03:00 CET -> 0.20.
    2 000 Wh x 0.20 + 2 000 Wh x 0.40 = 0.40 + 0.80 = 1.20.
    """
    band = TariffRestrictions(start_time=time(2, 30), end_time=time(6))
    breakdown = price_session(
        facts(utc(2024, 10, 27, 0), utc(2024, 10, 27, 2), 0, 4_000),
        snapshot(element(ENERGY, "0.20", restrictions=band), element(ENERGY, "0.40")),
    )

    assert set(breakdown.lines) == {
        line(ENERGY, "2000", "0.20", "0.40"),
        line(ENERGY, "2000", "0.40", "0.80"),
    }
    assert breakdown.total_incl_vat == Decimal("1.20")


class TestOcpiExamples:
    """The step_size examples of OCPI 2.2.1 mod_tariffs (PriceComponent, "Example Tariff"):
    charging 1.20/h before 17:00 (step 30 min), 2.40/h after (step 15 min), parking 1.00/h
    before 20:00 (step 15 min). Local Amsterdam times in January (UTC+1)."""

    TARIFF = snapshot(
        element(TIME, "1.20", 1800, TariffRestrictions(end_time=time(17))),
        element(TIME, "2.40", 900, TariffRestrictions(start_time=time(17))),
        element(PARKING, "1.00", 900, TariffRestrictions(end_time=time(20))),
    )

    def test_switching_element_1(self) -> None:
        """Plug in 16:55, charge 10 min, park 2 min.

        TIME 5 min x 1.20/h = 0.10 and 5 min x 2.40/h = 0.20; parking 2 min rounded up to
        15 min x 1.00/h = 0.25. Total 0.55.
        """
        breakdown = price_session(
            facts(
                utc(2024, 1, 15, 15, 55),
                utc(2024, 1, 15, 16, 7),
                0,
                3_000,
                (utc(2024, 1, 15, 16, 5), 3_000),
            ),
            self.TARIFF,
        )

        assert breakdown.lines == (
            line(TIME, "300", "1.20", "0.1"),
            line(TIME, "300", "2.40", "0.2"),
            line(PARKING, "900", "1.00", "0.25"),
        )
        assert breakdown.total_incl_vat == Decimal("0.55")

    def test_switching_element_2(self) -> None:
        """Plug in 16:35, charge 35 min, leave. The last step (15 min) rounds 35 min up to
        45; the 10 extra minutes go to the last period: 25 min x 1.20/h = 0.50 and
        20 min x 2.40/h = 0.80. Total 1.30."""
        breakdown = price_session(
            facts(utc(2024, 1, 15, 15, 35), utc(2024, 1, 15, 16, 10), 0, 7_000), self.TARIFF
        )

        assert breakdown.lines == (
            line(TIME, "1500", "1.20", "0.5"),
            line(TIME, "1200", "2.40", "0.8"),
        )
        assert breakdown.total_incl_vat == Decimal("1.30")

    def test_switching_to_free_of_charge(self) -> None:
        """Plug in 19:40, charge 12 min, park 20 min; parking is free from 20:00.

        TIME 12 min x 2.40/h = 0.48, not rounded (parking follows). Billable parking is
        19:52-20:00 = 8 min, rounded up to 15 min x 1.00/h = 0.25. Total 0.73.
        """
        breakdown = price_session(
            facts(
                utc(2024, 1, 15, 18, 40),
                utc(2024, 1, 15, 19, 12),
                0,
                2_000,
                (utc(2024, 1, 15, 18, 52), 2_000),
            ),
            self.TARIFF,
        )

        assert breakdown.lines == (
            line(TIME, "720", "2.40", "0.48"),
            line(PARKING, "900", "1.00", "0.25"),
        )
        assert breakdown.total_incl_vat == Decimal("0.73")


def test_energy_step_size_uses_the_last_component_for_the_whole_session() -> None:
    """OCPI mod_cdrs step_size example: 0.20/kWh before 17:00, 0.27 after, both step 500 Wh.
    4.3 kWh before and 1.1 kWh after: the total 5.4 kWh rounds up to 5.5, the extra 100 Wh
    billed after 17:00: 4 300 Wh x 0.20 = 0.86 and 1 200 Wh x 0.27 = 0.324. Total 1.184,
    rounded to 1.18."""
    breakdown = price_session(
        facts(
            utc(2024, 1, 15, 14),
            utc(2024, 1, 15, 16, 30),
            0,
            5_400,
            (utc(2024, 1, 15, 16), 4_300),
        ),
        snapshot(
            element(ENERGY, "0.20", 500, TariffRestrictions(end_time=time(17))),
            element(ENERGY, "0.27", 500),
        ),
    )

    assert breakdown.lines == (
        line(ENERGY, "4300", "0.20", "0.86"),
        line(ENERGY, "1200", "0.27", "0.324"),
    )
    assert breakdown.total_incl_vat == Decimal("1.18")


def test_an_energy_threshold_switches_price_within_a_reading_interval() -> None:
    """0.40/kWh for the first 10 kWh, 0.30 from 10 kWh on (min_kwh, inclusive).
    20 000 Wh delivered evenly with no readings: 10 000 x 0.40 + 10 000 x 0.30 = 7.00."""
    breakdown = price_session(
        facts(utc(2024, 1, 15, 9), utc(2024, 1, 15, 11), 0, 20_000),
        snapshot(
            element(ENERGY, "0.30", restrictions=TariffRestrictions(min_kwh=Decimal(10))),
            element(ENERGY, "0.40"),
        ),
    )

    assert set(breakdown.lines) == {
        line(ENERGY, "10000", "0.40", "4"),
        line(ENERGY, "10000", "0.30", "3"),
    }
    assert breakdown.total_incl_vat == Decimal("7.00")


def test_a_meter_that_went_backwards_bills_no_energy() -> None:
    """Meter stop below meter start: no negative energy, nothing billed for energy."""
    breakdown = price_session(
        facts(utc(2024, 1, 15, 9), utc(2024, 1, 15, 10), 5_000, 4_000),
        snapshot(element(ENERGY, "0.30")),
    )

    assert breakdown.lines == ()
    assert breakdown.total_incl_vat == Decimal("0.00")


def test_a_session_without_energy_is_all_parking() -> None:
    """Nothing charged in 60 min, 30 min grace: 30 min parking x 4.00/h = 2.00."""
    breakdown = price_session(
        facts(utc(2024, 1, 15, 9), utc(2024, 1, 15, 10), 5_000, 5_000),
        snapshot(element(PARKING, "4.00"), element(TIME, "1.00"), grace_s=1800),
    )

    assert breakdown.lines == (line(PARKING, "1800", "4.00", "2"),)
    assert breakdown.total_incl_vat == Decimal("2.00")
