"""Value objects refuse invalid values and behave as values."""

from datetime import datetime, time
from decimal import Decimal

import pytest

from csms.domain import (
    Address,
    Coordinates,
    Currency,
    IdToken,
    IdTokenType,
    InvalidValue,
    Money,
    OpeningHours,
    RegularHours,
)
from csms.domain.location import require_time_zone


class TestMoney:
    def test_minor_units_follow_iso_4217(self) -> None:
        assert Currency.EUR.minor_units == 2
        assert Currency.JPY.minor_units == 0
        assert Currency.KWD.minor_units == 3
        assert Currency.SEK.smallest_unit == Decimal("0.01")
        assert Currency.JPY.smallest_unit == Decimal("1")

    def test_rounds_half_up_to_the_minor_unit(self) -> None:
        assert Money(Decimal("4.425"), Currency.EUR).rounded() == Money(Decimal("4.43"), Currency.EUR)
        assert Money(Decimal("475.5"), Currency.JPY).rounded().amount == Decimal("476")

    def test_converts_to_minor_units_only_once_rounded(self) -> None:
        assert Money(Decimal("12.34"), Currency.EUR).in_minor_units == 1234
        assert Money(Decimal("475"), Currency.JPY).in_minor_units == 475
        with pytest.raises(InvalidValue, match="round it first"):
            _ = Money(Decimal("1.005"), Currency.EUR).in_minor_units

    def test_adds_only_the_same_currency(self) -> None:
        euros = Money(Decimal("1.10"), Currency.EUR)
        assert euros + euros == Money(Decimal("2.20"), Currency.EUR)
        with pytest.raises(InvalidValue, match="cannot combine EUR with USD"):
            _ = euros + Money(Decimal("1"), Currency.USD)

    def test_refuses_floats(self) -> None:
        with pytest.raises(InvalidValue, match="must be a Decimal"):
            Money(1.1, Currency.EUR)  # type: ignore[arg-type]


class TestCoordinates:
    def test_accepts_the_edges(self) -> None:
        Coordinates(Decimal("-90"), Decimal("180"))
        assert Coordinates.parse("50.770774", "-126.104965").longitude == Decimal("-126.104965")

    @pytest.mark.parametrize(
        ("latitude", "longitude"),
        [("90.000001", "0"), ("-90.1", "0"), ("0", "180.5"), ("0", "-181"), ("NaN", "0")],
    )
    def test_refuses_out_of_range(self, latitude: str, longitude: str) -> None:
        with pytest.raises(InvalidValue):
            Coordinates.parse(latitude, longitude)

    def test_refuses_text_that_is_not_a_number(self) -> None:
        with pytest.raises(InvalidValue, match="decimal numbers"):
            Coordinates.parse("north", "4.9")


class TestAddress:
    def test_country_is_alpha_3(self) -> None:
        with pytest.raises(InvalidValue, match="alpha-3"):
            Address(street="Main St 1", city="Utrecht", postal_code=None, country="NL")

    def test_refuses_blank_city(self) -> None:
        with pytest.raises(InvalidValue, match="city must not be blank"):
            Address(street="Main St 1", city=" ", postal_code=None, country="NLD")

    def test_postal_code_is_optional_but_bounded(self) -> None:
        Address(street="A1 rest area", city="Antwerp", postal_code=None, country="BEL")
        with pytest.raises(InvalidValue, match="at most 10"):
            Address(street="Main St 1", city="Utrecht", postal_code="12345678901", country="NLD")


class TestTimeZone:
    def test_knows_iana_names(self) -> None:
        assert require_time_zone("Europe/Amsterdam") == "Europe/Amsterdam"

    @pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", " Europe/Oslo"])
    def test_refuses_unknown_names(self, name: str) -> None:
        with pytest.raises(InvalidValue):
            require_time_zone(name)


class TestOpeningHours:
    def test_twentyfourseven_has_no_regular_hours(self) -> None:
        with pytest.raises(InvalidValue, match="must be empty"):
            OpeningHours(True, (RegularHours(1, time(8), time(18)),))

    def test_regular_hours_are_required_otherwise(self) -> None:
        with pytest.raises(InvalidValue, match="at least one period"):
            OpeningHours(False)

    def test_period_must_end_after_it_begins_but_midnight_ends_the_day(self) -> None:
        with pytest.raises(InvalidValue, match="must be later"):
            RegularHours(1, time(18), time(8))
        late = RegularHours(5, time(18), time(0))
        assert late.includes(datetime(2024, 1, 19, 23, 59))  # a Friday

    def test_weekday_is_1_to_7(self) -> None:
        with pytest.raises(InvalidValue, match="weekday must be at most 7"):
            RegularHours(8, time(8), time(18))

    def test_is_open_at_local_time(self) -> None:
        hours = OpeningHours(False, (RegularHours(1, time(8), time(18)),))
        assert hours.is_open_at(datetime(2024, 1, 15, 8, 0))  # Monday
        assert not hours.is_open_at(datetime(2024, 1, 15, 18, 0))
        assert not hours.is_open_at(datetime(2024, 1, 16, 9, 0))  # Tuesday
        assert OpeningHours.always().is_open_at(datetime(2024, 1, 16, 3, 0))


class TestIdToken:
    def test_key_is_case_insensitive(self) -> None:
        assert IdToken("04a2b3c4", IdTokenType.ISO14443).key == "04A2B3C4"

    @pytest.mark.parametrize("value", ["", "x" * 37, "has space", "tab\t"])
    def test_refuses_invalid_values(self, value: str) -> None:
        with pytest.raises(InvalidValue):
            IdToken(value, IdTokenType.RFID)
