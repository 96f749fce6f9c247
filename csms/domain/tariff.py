"""The Tariff aggregate and its OCPI-shaped terms: elements, price components and restrictions."""

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Self
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from csms.domain.errors import InvalidValue, TariffArchived
from csms.domain.money import Currency
from csms.domain.validation import (
    require_aware,
    require_decimal,
    require_instance,
    require_int,
    require_text,
)

NAME_MAX_LENGTH = 100
_MIDNIGHT = time(0, 0)


class TariffDimension(StrEnum):
    """What a price component charges for (OCPI TariffDimensionType).

    ENERGY is priced per kWh, TIME per hour of charging, PARKING_TIME per hour connected but
    not charging, FLAT once per session.
    """

    ENERGY = "ENERGY"
    FLAT = "FLAT"
    PARKING_TIME = "PARKING_TIME"
    TIME = "TIME"


class DayOfWeek(StrEnum):
    """OCPI DayOfWeek."""

    MONDAY = "MONDAY"
    TUESDAY = "TUESDAY"
    WEDNESDAY = "WEDNESDAY"
    THURSDAY = "THURSDAY"
    FRIDAY = "FRIDAY"
    SATURDAY = "SATURDAY"
    SUNDAY = "SUNDAY"

    @classmethod
    def of(cls, moment: date) -> "DayOfWeek":
        return _DAYS[moment.isoweekday() - 1]


_DAYS = tuple(DayOfWeek)


@dataclass(frozen=True)
class PriceComponent:
    """The price of one dimension, excluding VAT (OCPI PriceComponent).

    `step_size` is the billing block in the dimension's OCPI unit: Wh for ENERGY, seconds for
    TIME and PARKING_TIME (ignored for FLAT). Billed quantities are rounded up to a multiple.
    """

    type: TariffDimension
    price: Decimal
    step_size: int = 1

    def __post_init__(self) -> None:
        require_instance(self.type, TariffDimension, "type")
        require_decimal(self.price, "price", minimum=Decimal(0))
        require_int(self.step_size, "step_size", minimum=1)


@dataclass(frozen=True)
class TariffRestrictions:
    """When a tariff element applies (OCPI TariffRestrictions); all given fields must match.

    Times and dates are local to the station. `end_time` before `start_time` wraps past
    midnight (22:00-06:00), and `end_time` 00:00 means "until the end of the day" (OCPI).
    `start_date` is inclusive, `end_date` exclusive; `min_kwh` and `min_duration_s` are
    inclusive, `max_kwh` and `max_duration_s` exclusive, all measured from session start.
    """

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_duration_s: int | None = None
    max_duration_s: int | None = None
    day_of_week: tuple[DayOfWeek, ...] = ()

    def __post_init__(self) -> None:
        for name, moment in (("start_time", self.start_time), ("end_time", self.end_time)):
            if moment is not None and (not isinstance(moment, time) or moment.tzinfo is not None):
                raise InvalidValue(f"{name} must be a local time of day without time zone")
        if self.start_time is not None and self.start_time == self.end_time and self.start_time != _MIDNIGHT:
            raise InvalidValue("start_time and end_time must differ")
        for name, day in (("start_date", self.start_date), ("end_date", self.end_date)):
            if day is not None and (not isinstance(day, date) or isinstance(day, datetime)):
                raise InvalidValue(f"{name} must be a date")
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise InvalidValue("end_date must be after start_date")
        for name, kwh in (("min_kwh", self.min_kwh), ("max_kwh", self.max_kwh)):
            if kwh is not None:
                require_decimal(kwh, name, minimum=Decimal(0))
        if self.min_kwh is not None and self.max_kwh is not None and self.max_kwh <= self.min_kwh:
            raise InvalidValue("max_kwh must be above min_kwh")
        for name, seconds in (
            ("min_duration_s", self.min_duration_s),
            ("max_duration_s", self.max_duration_s),
        ):
            if seconds is not None:
                require_int(seconds, name, minimum=0)
        if (
            self.min_duration_s is not None
            and self.max_duration_s is not None
            and self.max_duration_s <= self.min_duration_s
        ):
            raise InvalidValue("max_duration_s must be above min_duration_s")
        if not isinstance(self.day_of_week, tuple):
            raise InvalidValue("day_of_week must be a tuple")
        for weekday in self.day_of_week:
            require_instance(weekday, DayOfWeek, "day_of_week")

    @property
    def local_times(self) -> tuple[time, ...]:
        """Local times of day at which this restriction can switch on or off."""
        times = {t for t in (self.start_time, self.end_time) if t is not None}
        if self.start_date or self.end_date or self.day_of_week or times:
            times.add(_MIDNIGHT)
        return tuple(sorted(times))

    @property
    def energy_thresholds_wh(self) -> tuple[Decimal, ...]:
        return tuple(kwh * 1000 for kwh in (self.min_kwh, self.max_kwh) if kwh is not None)

    @property
    def duration_thresholds_s(self) -> tuple[int, ...]:
        return tuple(s for s in (self.min_duration_s, self.max_duration_s) if s is not None)

    def matches(self, local: datetime, energy_wh: Decimal, elapsed_s: Decimal) -> bool:
        """Whether the element applies at a moment.

        `local` is the moment as wall-clock time in the station's zone, `energy_wh` the energy
        delivered in the session so far, `elapsed_s` the seconds since the session started.
        """
        return (
            self._time_matches(local.time())
            and (self.start_date is None or self.start_date <= local.date())
            and (self.end_date is None or local.date() < self.end_date)
            and (not self.day_of_week or DayOfWeek.of(local) in self.day_of_week)
            and (self.min_kwh is None or self.min_kwh * 1000 <= energy_wh)
            and (self.max_kwh is None or energy_wh < self.max_kwh * 1000)
            and (self.min_duration_s is None or self.min_duration_s <= elapsed_s)
            and (self.max_duration_s is None or elapsed_s < self.max_duration_s)
        )

    def _time_matches(self, moment: time) -> bool:
        if self.start_time is None and self.end_time is None:
            return True
        begin = self.start_time or _MIDNIGHT
        # OCPI: "To stop at end of the day use: 00:00", so an end of 00:00 means 24:00.
        end = None if self.end_time in (None, _MIDNIGHT) else self.end_time
        if end is None:
            return begin <= moment
        if begin < end:
            return begin <= moment < end
        return moment >= begin or moment < end  # wraps past midnight, e.g. 22:00-06:00


@dataclass(frozen=True)
class TariffElement:
    """Price components sharing one set of restrictions (OCPI TariffElement)."""

    price_components: tuple[PriceComponent, ...]
    restrictions: TariffRestrictions | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.price_components, tuple) or not self.price_components:
            raise InvalidValue("a tariff element needs a tuple of at least one price component")
        for component in self.price_components:
            require_instance(component, PriceComponent, "price component")
        dimensions = [component.type for component in self.price_components]
        if len(set(dimensions)) != len(dimensions):
            raise InvalidValue(f"a tariff element prices each dimension once, got {dimensions}")
        if self.restrictions is not None:
            require_instance(self.restrictions, TariffRestrictions, "restrictions")

    def component(self, dimension: TariffDimension) -> PriceComponent | None:
        return next((c for c in self.price_components if c.type is dimension), None)


def _require_elements(elements: tuple[TariffElement, ...]) -> tuple[TariffElement, ...]:
    if not isinstance(elements, tuple) or not elements:
        raise InvalidValue("a tariff needs a tuple of at least one element")
    for element in elements:
        require_instance(element, TariffElement, "element")
    return elements


def _require_vat(vat_percent: Decimal) -> Decimal:
    return require_decimal(vat_percent, "vat_percent", minimum=Decimal(0), maximum=Decimal(100))


@dataclass(frozen=True)
class TariffSnapshot:
    """The terms a session was started under, frozen so later tariff changes never reprice it.

    Prices exclude VAT; `vat_percent` applies to the whole session. Parking is free for the
    first `parking_grace_period_s` seconds after charging ends.
    """

    tariff_id: UUID
    tariff_version: int
    name: str
    currency: Currency
    vat_percent: Decimal
    elements: tuple[TariffElement, ...]
    parking_grace_period_s: int = 0

    def __post_init__(self) -> None:
        require_instance(self.currency, Currency, "currency")
        _require_vat(self.vat_percent)
        _require_elements(self.elements)
        require_int(self.parking_grace_period_s, "parking_grace_period_s", minimum=0)


class Tariff(Aggregate):
    """A company's price list for charging, in one currency with one VAT rate."""

    @classmethod
    def create(
        cls,
        id: UUID,
        company_id: UUID,
        name: str,
        currency: Currency,
        vat_percent: Decimal,
        elements: tuple[TariffElement, ...],
        at: datetime,
        parking_grace_period_s: int = 0,
    ) -> Self:
        return cls(
            id=id,
            company_id=company_id,
            name=require_text(name, "name", max_length=NAME_MAX_LENGTH),
            currency=require_instance(currency, Currency, "currency"),
            vat_percent=_require_vat(vat_percent),
            elements=_require_elements(elements),
            parking_grace_period_s=require_int(parking_grace_period_s, "parking_grace_period_s", minimum=0),
            timestamp=require_aware(at, "at"),
        )

    @event("Created")
    def __init__(
        self,
        id: UUID,
        company_id: UUID,
        name: str,
        currency: Currency,
        vat_percent: Decimal,
        elements: tuple[TariffElement, ...],
        parking_grace_period_s: int,
        timestamp: datetime,
    ) -> None:
        self.company_id = company_id
        self.name = name
        self.currency = currency
        self.vat_percent = vat_percent
        self.elements = elements
        self.parking_grace_period_s = parking_grace_period_s
        self.archived = False

    def snapshot(self) -> TariffSnapshot:
        """The current terms, to be stored with a session when it starts."""
        return TariffSnapshot(
            tariff_id=self.id,
            tariff_version=self.version,
            name=self.name,
            currency=self.currency,
            vat_percent=self.vat_percent,
            elements=self.elements,
            parking_grace_period_s=self.parking_grace_period_s,
        )

    def ensure_active(self) -> None:
        """Raise `TariffArchived` if the tariff may no longer be assigned to stations."""
        if self.archived:
            raise TariffArchived(f"tariff {self.name!r} is archived")

    def rename(self, name: str, at: datetime) -> None:
        self.ensure_active()
        name = require_text(name, "name", max_length=NAME_MAX_LENGTH)
        if name != self.name:
            self._renamed(name=name, timestamp=require_aware(at, "at"))

    def replace_elements(self, elements: tuple[TariffElement, ...], at: datetime) -> None:
        """New terms for sessions that start from now on."""
        self.ensure_active()
        if _require_elements(elements) != self.elements:
            self._elements_replaced(elements=elements, timestamp=require_aware(at, "at"))

    def change_vat(self, vat_percent: Decimal, at: datetime) -> None:
        self.ensure_active()
        if _require_vat(vat_percent) != self.vat_percent:
            self._vat_changed(vat_percent=vat_percent, timestamp=require_aware(at, "at"))

    def change_parking_grace_period(self, seconds: int, at: datetime) -> None:
        self.ensure_active()
        require_int(seconds, "parking_grace_period_s", minimum=0)
        if seconds != self.parking_grace_period_s:
            self._parking_grace_period_changed(
                parking_grace_period_s=seconds, timestamp=require_aware(at, "at")
            )

    def archive(self, at: datetime) -> None:
        """Retire the tariff; sessions that already started keep their snapshot."""
        if not self.archived:
            self._archived(timestamp=require_aware(at, "at"))

    @event("Renamed")
    def _renamed(self, name: str, timestamp: datetime) -> None:
        self.name = name

    @event("ElementsReplaced")
    def _elements_replaced(self, elements: tuple[TariffElement, ...], timestamp: datetime) -> None:
        self.elements = elements

    @event("VatChanged")
    def _vat_changed(self, vat_percent: Decimal, timestamp: datetime) -> None:
        self.vat_percent = vat_percent

    @event("ParkingGracePeriodChanged")
    def _parking_grace_period_changed(self, parking_grace_period_s: int, timestamp: datetime) -> None:
        self.parking_grace_period_s = parking_grace_period_s

    @event("Archived")
    def _archived(self, timestamp: datetime) -> None:
        self.archived = True
