"""Meter readings and the session energy timeline built from them."""

from dataclasses import dataclass
from datetime import datetime

from csms.domain.errors import InvalidValue
from csms.domain.validation import require_aware, require_int


@dataclass(frozen=True, slots=True)
class MeterReading:
    """What the charger measured at one instant (OCPP MeterValues sampled values).

    `energy_wh` is the energy register (Energy.Active.Import.Register), not energy since
    the session started; `power_w` may be negative when the vehicle feeds power back.
    """

    measured_at: datetime
    energy_wh: int | None = None
    power_w: int | None = None
    soc_percent: int | None = None

    def __post_init__(self) -> None:
        require_aware(self.measured_at, "measured_at")
        if self.energy_wh is not None:
            require_int(self.energy_wh, "energy_wh", minimum=0)
        if self.power_w is not None:
            require_int(self.power_w, "power_w")
        if self.soc_percent is not None:
            require_int(self.soc_percent, "soc_percent", minimum=0, maximum=100)

    @property
    def is_empty(self) -> bool:
        return self.energy_wh is None and self.power_w is None and self.soc_percent is None


@dataclass(frozen=True)
class EnergyPoint:
    """Energy delivered in the session up to an instant, in Wh."""

    at: datetime
    energy_wh: int


def energy_timeline(
    started_at: datetime,
    stopped_at: datetime,
    meter_start_wh: int,
    meter_stop_wh: int,
    readings: tuple[MeterReading, ...],
) -> tuple[EnergyPoint, ...]:
    """Session energy at each known instant: 0 at start, the total at stop, never decreasing.

    Register readings between start and stop fill in the shape. A register that dips or
    overshoots (meter glitches, a Stop reported with a lower meter than a reading) is clamped
    into [0, total], so the timeline always adds up to exactly the billed total, which is
    `meter_stop_wh - meter_start_wh` and never negative.
    """
    if stopped_at < started_at:
        raise InvalidValue("stopped_at must not be before started_at")
    total = max(0, meter_stop_wh - meter_start_wh)
    points = [EnergyPoint(started_at, 0)]
    inner = sorted(
        (r for r in readings if r.energy_wh is not None and started_at < r.measured_at < stopped_at),
        key=lambda reading: reading.measured_at,
    )
    for reading in inner:
        assert reading.energy_wh is not None
        delivered = min(max(reading.energy_wh - meter_start_wh, points[-1].energy_wh), total)
        if reading.measured_at > points[-1].at:
            points.append(EnergyPoint(reading.measured_at, delivered))
    if stopped_at > started_at:
        points.append(EnergyPoint(stopped_at, total))
    else:
        points[0] = EnergyPoint(started_at, total)
    return tuple(points)


def charging_ended_at(timeline: tuple[EnergyPoint, ...]) -> datetime:
    """When energy stopped increasing: the first instant the session's final total was reached.

    With no energy at all, charging "ended" when the session started (all of it was parking).
    """
    final = timeline[-1].energy_wh
    return next(point.at for point in timeline if point.energy_wh == final)
