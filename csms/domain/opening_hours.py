"""When a station is open, as OCPI Hours: around the clock, or regular weekday periods."""

from dataclasses import dataclass, field
from datetime import datetime, time

from csms.domain.errors import InvalidValue
from csms.domain.validation import require_int

_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class RegularHours:
    """One opening period on a weekday (1 = Monday ... 7 = Sunday), in the station's local time.

    OCPI requires `period_end` later than `period_begin`; as OCPI times cannot say 24:00,
    a `period_end` of 00:00 means "until the end of the day".
    """

    weekday: int
    period_begin: time
    period_end: time

    def __post_init__(self) -> None:
        require_int(self.weekday, "weekday", minimum=1, maximum=7)
        for name, value in (("period_begin", self.period_begin), ("period_end", self.period_end)):
            if not isinstance(value, time) or value.tzinfo is not None:
                raise InvalidValue(f"{name} must be a local time of day without time zone")
        if self.period_end != _MIDNIGHT and self.period_end <= self.period_begin:
            raise InvalidValue(
                f"period_end {self.period_end:%H:%M} must be later than "
                f"period_begin {self.period_begin:%H:%M}"
            )

    def includes(self, local: datetime) -> bool:
        if local.isoweekday() != self.weekday:
            return False
        moment = local.time()
        return self.period_begin <= moment and (self.period_end == _MIDNIGHT or moment < self.period_end)


@dataclass(frozen=True)
class OpeningHours:
    """OCPI Hours: `twentyfourseven`, or at least one regular period (never both)."""

    twentyfourseven: bool
    regular_hours: tuple[RegularHours, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.twentyfourseven, bool):
            raise InvalidValue("twentyfourseven must be a bool")
        if self.twentyfourseven and self.regular_hours:
            raise InvalidValue("regular_hours must be empty when open twentyfourseven")
        if not self.twentyfourseven and not self.regular_hours:
            raise InvalidValue("regular_hours needs at least one period unless open twentyfourseven")

    @classmethod
    def always(cls) -> "OpeningHours":
        return cls(twentyfourseven=True)

    def is_open_at(self, local: datetime) -> bool:
        """Whether a local wall-clock time (in the station's time zone) falls in opening hours."""
        return self.twentyfourseven or any(period.includes(local) for period in self.regular_hours)
