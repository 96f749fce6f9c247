"""Pricing: a pure function from a session's facts and its tariff snapshot to a price breakdown."""

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise
from zoneinfo import ZoneInfo

from csms.domain.location import require_time_zone
from csms.domain.metering import EnergyPoint, MeterReading, charging_ended_at, energy_timeline
from csms.domain.money import Currency, Money, round_to_minor_unit
from csms.domain.tariff import PriceComponent, TariffDimension, TariffSnapshot
from csms.domain.validation import require_aware

# Enough digits that intermediate results of any realistic session are exact or off by far
# less than the minor unit; set explicitly so the price never depends on the caller's context.
_PRECISION = 40
# Energy apportioned between readings is kept to 1 mWh so that the pieces add up exactly.
_ENERGY_RESOLUTION = Decimal("0.001")
# Informational line figures are stored to this many decimal places; totals use exact values.
_LINE_RESOLUTION = Decimal("0.000001")
_HOUR_S = 3600
_KWH_WH = 1000
_TIME_BASED = (TariffDimension.TIME, TariffDimension.PARKING_TIME)


@dataclass(frozen=True)
class SessionFacts:
    """Everything about a finished session that its price depends on.

    `time_zone` is the station's: OCPI tariff restrictions are in the Location's local time.
    `charging_ended_at` is when energy stopped increasing (parking starts there); None
    derives it from the readings.
    """

    started_at: datetime
    stopped_at: datetime
    meter_start_wh: int
    meter_stop_wh: int
    readings: tuple[MeterReading, ...]
    time_zone: str
    charging_ended_at: datetime | None = None


@dataclass(frozen=True)
class PriceLine:
    """What one dimension cost at one unit price, excluding VAT.

    `quantity` is billed quantity in the step_size unit: Wh for ENERGY, seconds for TIME
    and PARKING_TIME, 1 for FLAT. `unit_price` is per kWh, per hour, or per session.
    """

    dimension: TariffDimension
    quantity: Decimal
    unit_price: Decimal
    amount_excl_vat: Decimal


@dataclass(frozen=True)
class PriceBreakdown:
    """A session's price: lines per dimension and the totals, rounded to the minor unit."""

    currency: Currency
    vat_percent: Decimal
    lines: tuple[PriceLine, ...]
    total_excl_vat: Decimal
    vat_amount: Decimal
    total_incl_vat: Decimal

    @property
    def total(self) -> Money:
        """What the driver pays."""
        return Money(self.total_incl_vat, self.currency)


@dataclass
class _Period:
    dimension: TariffDimension
    component: PriceComponent
    quantity: Decimal


def price_session(facts: SessionFacts, tariff: TariffSnapshot) -> PriceBreakdown:
    """Price a session under OCPI 2.2.1 tariff semantics.

    - The session is cut wherever any restriction could switch (local times and midnights,
      including both sides of a DST change; energy and duration thresholds), at every meter
      reading, and where charging ends and the parking grace period ends. Each piece is
      priced by, per dimension, the first element with a component for that dimension whose
      restrictions match (OCPI mod_tariffs, Tariff object: "the first Tariff Element with a
      Price Component for that dimension ... with matching Tariff Restrictions").
    - Energy between two readings is spread linearly over time, so a band boundary between
      them splits it in proportion.
    - TIME is charged while charging, PARKING_TIME after charging ended and the tariff's grace
      period passed. FLAT is charged once, by the first FLAT element matching at the start.
    - step_size is applied once per session (OCPI mod_cdrs, step_size): to the total ENERGY,
      using the last ENERGY component used; and to whichever time-based dimension came last,
      using its last component; the rounded-up remainder is billed with that last component.
    - Rounding happens once: the exact total including VAT is rounded half up to the
      currency's minor unit; that is what the driver pays. The total excluding VAT is rounded
      the same way for the receipt and VAT is the difference, so the receipt always adds up.
    """
    with localcontext() as context:
        context.prec = _PRECISION
        context.rounding = ROUND_HALF_EVEN
        return _price(facts, tariff)


def _price(facts: SessionFacts, tariff: TariffSnapshot) -> PriceBreakdown:
    zone = ZoneInfo(require_time_zone(facts.time_zone))
    start = require_aware(facts.started_at, "started_at").astimezone(UTC)
    stop = max(require_aware(facts.stopped_at, "stopped_at").astimezone(UTC), start)
    timeline = energy_timeline(start, stop, facts.meter_start_wh, facts.meter_stop_wh, facts.readings)
    curve = _EnergyCurve(timeline)
    charging_end = facts.charging_ended_at or charging_ended_at(timeline)
    charging_end = min(max(require_aware(charging_end, "charging_ended_at"), start), stop)
    grace_end = min(charging_end + timedelta(seconds=tariff.parking_grace_period_s), stop)

    def component_at(
        dimension: TariffDimension, local: datetime, energy_wh: Decimal, elapsed_s: Decimal
    ) -> PriceComponent | None:
        for element in tariff.elements:
            component = element.component(dimension)
            if component is not None and (
                element.restrictions is None or element.restrictions.matches(local, energy_wh, elapsed_s)
            ):
                return component
        return None

    periods: list[_Period] = []
    flat = component_at(TariffDimension.FLAT, start.astimezone(zone), Decimal(0), Decimal(0))
    if flat is not None:
        periods.append(_Period(TariffDimension.FLAT, flat, Decimal(1)))

    cuts = _cuts(start, stop, zone, tariff, curve, (charging_end, grace_end))
    for begin, end in pairwise(cuts):
        # Every instant where a restriction can change is a cut, so a restriction holds
        # throughout a piece; testing its midpoint avoids any doubt at the edges.
        middle = begin + (end - begin) / 2
        local = middle.astimezone(zone)
        energy_so_far = curve.energy_at(middle)
        elapsed = _seconds(middle - start)
        delivered = curve.energy_at(end) - curve.energy_at(begin)
        if delivered > 0:
            component = component_at(TariffDimension.ENERGY, local, energy_so_far, elapsed)
            if component is not None:
                periods.append(_Period(TariffDimension.ENERGY, component, delivered))
        if middle < charging_end:
            dimension: TariffDimension | None = TariffDimension.TIME
        elif middle >= grace_end:
            dimension = TariffDimension.PARKING_TIME
        else:
            dimension = None  # parking within the grace period is free
        if dimension is not None:
            component = component_at(dimension, local, energy_so_far, elapsed)
            if component is not None:
                periods.append(_Period(dimension, component, _seconds(end - begin)))

    _apply_step_size([p for p in periods if p.dimension is TariffDimension.ENERGY])
    time_based = [p for p in periods if p.dimension in _TIME_BASED]
    if time_based:
        last_dimension = time_based[-1].dimension
        _apply_step_size([p for p in time_based if p.dimension is last_dimension])

    return _breakdown(periods, tariff)


def _breakdown(periods: list[_Period], tariff: TariffSnapshot) -> PriceBreakdown:
    merged: dict[tuple[TariffDimension, Decimal], Decimal] = {}
    for period in periods:
        key = (period.dimension, period.component.price)
        merged[key] = merged.get(key, Decimal(0)) + period.quantity

    # Numerators are exact (quantities have at most 6 decimals), so summing them before the
    # two divisions keeps the exact total exact whenever it terminates.
    per_kwh = sum(
        (q * price for (d, price), q in merged.items() if d is TariffDimension.ENERGY),
        Decimal(0),
    )
    per_hour = sum((q * price for (d, price), q in merged.items() if d in _TIME_BASED), Decimal(0))
    flat = sum((q * price for (d, price), q in merged.items() if d is TariffDimension.FLAT), Decimal(0))
    exact_excl_vat = per_kwh / _KWH_WH + per_hour / _HOUR_S + flat
    exact_incl_vat = exact_excl_vat * (100 + tariff.vat_percent) / 100

    total_incl_vat = round_to_minor_unit(exact_incl_vat, tariff.currency)
    total_excl_vat = round_to_minor_unit(exact_excl_vat, tariff.currency)
    lines = tuple(
        PriceLine(
            dimension=dimension,
            quantity=_tidy(quantity),
            unit_price=price,
            amount_excl_vat=_tidy(quantity * price / _unit(dimension)),
        )
        for (dimension, price), quantity in merged.items()
    )
    return PriceBreakdown(
        currency=tariff.currency,
        vat_percent=tariff.vat_percent,
        lines=lines,
        total_excl_vat=total_excl_vat,
        vat_amount=total_incl_vat - total_excl_vat,
        total_incl_vat=total_incl_vat,
    )


def _apply_step_size(periods: list[_Period]) -> None:
    """Round the dimension's total up to the last component's step; the last period pays it."""
    if not periods:
        return
    last = periods[-1]
    total = sum((p.quantity for p in periods), Decimal(0))
    step = last.component.step_size
    billed = (total / step).to_integral_value(rounding=ROUND_CEILING) * step
    last.quantity += billed - total


def _cuts(
    start: datetime,
    stop: datetime,
    zone: ZoneInfo,
    tariff: TariffSnapshot,
    curve: "_EnergyCurve",
    extra: Iterable[datetime],
) -> list[datetime]:
    cuts = {start, stop, *extra, *curve.times}
    restrictions = [e.restrictions for e in tariff.elements if e.restrictions is not None]
    local_times = sorted({t for r in restrictions for t in r.local_times})
    if local_times:
        cuts.update(_local_instants(start, stop, zone, local_times))
        cuts.update(_offset_changes(start, stop, zone))
    for restriction in restrictions:
        for threshold in restriction.energy_thresholds_wh:
            reached = curve.time_reaching(threshold)
            if reached is not None:
                cuts.add(reached)
        for seconds in restriction.duration_thresholds_s:
            cuts.add(start + timedelta(seconds=seconds))
    return sorted(cut for cut in (c.astimezone(UTC) for c in cuts) if start <= cut <= stop)


def _local_instants(
    start: datetime, stop: datetime, zone: ZoneInfo, local_times: list[time]
) -> Iterator[datetime]:
    """The instants at which local wall-clock time reads each of `local_times`.

    Both folds are produced: in the repeated hour after DST ends a local time occurs twice.
    A local time skipped when DST starts yields a harmless extra cut; the jump itself is
    covered by `_offset_changes`.
    """
    day = start.astimezone(zone).date() - timedelta(days=1)
    last_day = stop.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        for local_time in local_times:
            for fold in (0, 1):
                naive = datetime.combine(day, local_time).replace(fold=fold)
                yield naive.replace(tzinfo=zone).astimezone(UTC)
        day += timedelta(days=1)


def _offset_changes(start: datetime, stop: datetime, zone: ZoneInfo) -> Iterator[datetime]:
    """The instants within [start, stop] at which the zone's UTC offset changes (DST)."""
    step = timedelta(hours=1)  # no zone changes its offset twice within an hour
    here = start
    while here < stop:
        there = min(here + step, stop)
        before, after = here.astimezone(zone).utcoffset(), there.astimezone(zone).utcoffset()
        if before != after:
            low, high = here, there
            while high - low > timedelta(microseconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == before:
                    low = middle
                else:
                    high = middle
            yield high
        here = there


class _EnergyCurve:
    """Session energy over time, linear between known points."""

    def __init__(self, timeline: tuple[EnergyPoint, ...]) -> None:
        self._points = timeline
        self.times = tuple(point.at for point in timeline)

    def energy_at(self, moment: datetime) -> Decimal:
        index = bisect_right(self.times, moment)
        if index == 0:
            return Decimal(self._points[0].energy_wh)
        if index == len(self._points):
            return Decimal(self._points[-1].energy_wh)
        before, after = self._points[index - 1], self._points[index]
        fraction = _seconds(moment - before.at) / _seconds(after.at - before.at)
        energy = before.energy_wh + (after.energy_wh - before.energy_wh) * fraction
        return energy.quantize(_ENERGY_RESOLUTION, rounding=ROUND_HALF_EVEN)

    def time_reaching(self, energy_wh: Decimal) -> datetime | None:
        """The first instant at which the session's energy reaches `energy_wh`, if it does."""
        if energy_wh <= self._points[0].energy_wh:
            return self._points[0].at
        for before, after in pairwise(self._points):
            if before.energy_wh < energy_wh <= after.energy_wh:
                fraction = (energy_wh - before.energy_wh) / (after.energy_wh - before.energy_wh)
                offset = _seconds(after.at - before.at) * fraction
                microseconds = (offset * 1_000_000).to_integral_value(rounding=ROUND_CEILING)
                return before.at + timedelta(microseconds=int(microseconds))
        return None


def _seconds(delta: timedelta) -> Decimal:
    """A timedelta as exact Decimal seconds (timedelta.total_seconds() is a float)."""
    whole = delta.days * 86_400 + delta.seconds
    return Decimal(whole) + Decimal(delta.microseconds).scaleb(-6)


def _unit(dimension: TariffDimension) -> int:
    if dimension is TariffDimension.ENERGY:
        return _KWH_WH
    if dimension in _TIME_BASED:
        return _HOUR_S
    return 1


def _tidy(value: Decimal) -> Decimal:
    """Round an informational figure to 6 decimals and drop trailing zeros (never exponents)."""
    rounded = value.quantize(_LINE_RESOLUTION, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1))
    return rounded.normalize()
