"""Money as a Decimal amount in an ISO 4217 currency, rounded to the currency's minor unit."""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from csms.domain.errors import InvalidValue
from csms.domain.validation import require_decimal


class Currency(StrEnum):
    """ISO 4217 currencies the platform prices in."""

    AUD = "AUD"
    BHD = "BHD"
    CAD = "CAD"
    CHF = "CHF"
    CZK = "CZK"
    DKK = "DKK"
    EUR = "EUR"
    GBP = "GBP"
    HUF = "HUF"
    ISK = "ISK"
    JPY = "JPY"
    KRW = "KRW"
    KWD = "KWD"
    NOK = "NOK"
    NZD = "NZD"
    PLN = "PLN"
    SEK = "SEK"
    USD = "USD"

    @property
    def minor_units(self) -> int:
        """Digits after the decimal point (ISO 4217 "minor unit"): 2 for EUR, 0 for JPY."""
        return _MINOR_UNITS[self]

    @property
    def smallest_unit(self) -> Decimal:
        """The smallest amount the currency can express: 0.01 for EUR, 1 for JPY."""
        return Decimal(1).scaleb(-self.minor_units)


_MINOR_UNITS: dict[Currency, int] = {
    Currency.AUD: 2,
    Currency.BHD: 3,
    Currency.CAD: 2,
    Currency.CHF: 2,
    Currency.CZK: 2,
    Currency.DKK: 2,
    Currency.EUR: 2,
    Currency.GBP: 2,
    Currency.HUF: 2,
    Currency.ISK: 0,
    Currency.JPY: 0,
    Currency.KRW: 0,
    Currency.KWD: 3,
    Currency.NOK: 2,
    Currency.NZD: 2,
    Currency.PLN: 2,
    Currency.SEK: 2,
    Currency.USD: 2,
}


def round_to_minor_unit(amount: Decimal, currency: Currency) -> Decimal:
    """Round half up to the currency's minor unit (0.005 EUR becomes 0.01 EUR)."""
    return amount.quantize(currency.smallest_unit, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Money:
    """An amount in a currency. Arithmetic stays exact; rounding is explicit (`rounded()`)."""

    amount: Decimal
    currency: Currency

    def __post_init__(self) -> None:
        require_decimal(self.amount, "amount")
        if not isinstance(self.currency, Currency):
            raise InvalidValue(f"currency must be a Currency, got {self.currency!r}")

    @classmethod
    def zero(cls, currency: Currency) -> "Money":
        return cls(Decimal(0).quantize(currency.smallest_unit), currency)

    @classmethod
    def from_minor_units(cls, minor_units: int, currency: Currency) -> "Money":
        """An amount counted in the currency's minor units (cents), as payment providers report it."""
        if isinstance(minor_units, bool) or not isinstance(minor_units, int):
            raise InvalidValue(f"minor units must be an integer, got {minor_units!r}")
        return cls(Decimal(minor_units).scaleb(-currency.minor_units), currency)

    def __add__(self, other: "Money") -> "Money":
        self._require_same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._require_same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def rounded(self) -> "Money":
        """This amount rounded half up to the currency's minor unit."""
        return Money(round_to_minor_unit(self.amount, self.currency), self.currency)

    @property
    def in_minor_units(self) -> int:
        """The amount as an integer count of minor units (cents), as payment providers take it.

        Only an amount already at the currency's precision converts; anything finer would
        silently lose money.
        """
        scaled = self.amount.scaleb(self.currency.minor_units)
        if scaled != scaled.to_integral_value():
            raise InvalidValue(
                f"{self.amount} {self.currency} is finer than the currency's minor unit; round it first"
            )
        return int(scaled)

    def _require_same_currency(self, other: "Money") -> None:
        if other.currency is not self.currency:
            raise InvalidValue(f"cannot combine {self.currency} with {other.currency}")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"
