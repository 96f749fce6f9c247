"""Where a station is: coordinates, postal address and IANA time zone, shaped like an OCPI Location."""

import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csms.domain.errors import InvalidValue
from csms.domain.validation import require_decimal, require_text

_ALPHA3 = re.compile(r"[A-Z]{3}")


@dataclass(frozen=True)
class Coordinates:
    """A WGS 84 point in decimal degrees (OCPI GeoLocation), exact as Decimal."""

    latitude: Decimal
    longitude: Decimal

    def __post_init__(self) -> None:
        require_decimal(self.latitude, "latitude", minimum=Decimal(-90), maximum=Decimal(90))
        require_decimal(self.longitude, "longitude", minimum=Decimal(-180), maximum=Decimal(180))

    @classmethod
    def parse(cls, latitude: str, longitude: str) -> "Coordinates":
        """Build from decimal-degree strings such as OCPI's "50.770774"."""
        try:
            return cls(Decimal(latitude), Decimal(longitude))
        except ArithmeticError as error:  # decimal.InvalidOperation
            raise InvalidValue(f"coordinates must be decimal numbers: {latitude!r}, {longitude!r}") from error


@dataclass(frozen=True)
class Address:
    """A postal address with OCPI Location's field lengths; `country` is ISO 3166-1 alpha-3."""

    street: str
    city: str
    postal_code: str | None
    country: str
    state: str | None = None

    def __post_init__(self) -> None:
        _require_field(self.street, "street", 255)
        _require_field(self.city, "city", 45)
        if self.postal_code is not None:
            _require_field(self.postal_code, "postal_code", 10)
        if self.state is not None:
            _require_field(self.state, "state", 45)
        if not isinstance(self.country, str) or not _ALPHA3.fullmatch(self.country):
            raise InvalidValue(
                f"country must be an ISO 3166-1 alpha-3 code such as NLD, got {self.country!r}"
            )


def _require_field(value: str, name: str, max_length: int) -> None:
    if require_text(value, name, max_length=max_length) != value:
        raise InvalidValue(f"{name} must not have surrounding whitespace")


def require_time_zone(name: str) -> str:
    """Return `name` if it is an IANA time zone the tz database knows ("Europe/Amsterdam")."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise InvalidValue(f"time zone must be an IANA name such as Europe/Amsterdam, got {name!r}")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidValue(f"unknown time zone {name!r}") from error
    return name
