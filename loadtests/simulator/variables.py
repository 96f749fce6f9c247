"""Configuration the CSMS may read and change: 1.6 configuration keys, 2.0.1 variables, over charger state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from loadtests.simulator.charger import Charger


def format_number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class Variable:
    """A configuration value: read from the charger's state, or kept among its settings when the simulation
    does not act upon it."""

    name: str
    kind: Literal["int", "bool", "text"] = "text"
    default: str = ""
    readonly: bool = False
    get: Callable[[Charger], str] | None = None
    #: For int variables the simulation acts upon (intervals); receives the parsed value.
    set: Callable[[Charger, int], None] | None = None

    def read(self, charger: Charger) -> str:
        if self.get is not None:
            return self.get(charger)
        value = charger.setting(self.name)
        return self.default if value is None else value

    def write(self, charger: Charger, value: str) -> bool:
        """Apply `value`; False when the variable is read-only or the value is not acceptable."""
        if self.readonly:
            return False
        if self.kind == "int":
            try:
                number = int(value)
            except ValueError:
                return False
            if number < (1 if self.set is not None else 0):
                return False  # an interval of 0 would mean "never" in the spec, and a busy loop here
            if self.set is not None:
                self.set(charger, number)
                return True
        elif self.kind == "bool" and value.lower() not in ("true", "false"):
            return False
        charger.set_setting(self.name, value)
        return True


def _set_heartbeat(charger: Charger, seconds: int) -> None:
    charger.heartbeat_interval = float(seconds)


def _set_meter_interval(charger: Charger, seconds: int) -> None:
    charger.meter_interval = float(seconds)


def heartbeat_interval(name: str) -> Variable:
    return Variable(
        name, "int", get=lambda charger: format_number(charger.heartbeat_interval), set=_set_heartbeat
    )


def meter_interval(name: str) -> Variable:
    return Variable(
        name, "int", get=lambda charger: format_number(charger.meter_interval), set=_set_meter_interval
    )


def connector_count(name: str) -> Variable:
    return Variable(name, "int", readonly=True, get=lambda charger: str(charger.connectors))
