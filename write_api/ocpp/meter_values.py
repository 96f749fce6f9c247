"""OCPP meterValue arrays (1.6 and 2.0.1) turned into domain `MeterReading`s.

Only whole-charger totals are kept (a sampled value with a `phase` is one line of a three-phase total): the
energy register (Energy.Active.Import.Register, the measurand's default in both versions), active power
(Power.Active.Import) and state of charge (SoC). Units are normalised to Wh, W and percent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from csms.domain import MeterReading

_ENERGY = "Energy.Active.Import.Register"
_POWER = "Power.Active.Import"
_SOC = "SoC"
# OCPP 1.6 §7.31 UnitOfMeasure and 2.0.1 UnitOfMeasureType: energy and power may come in k-units.
_SCALE = {"Wh": 1, "kWh": 1000, "W": 1, "kW": 1000, "Percent": 1}


def readings_from_16(meter_values: Iterable[Mapping[str, Any]]) -> tuple[MeterReading, ...]:
    """OCPP 1.6 MeterValue[]: `value` is a string, `unit` a plain unit name (default Wh for energy)."""
    readings = []
    for meter_value in meter_values:
        measured_at = parse_timestamp(meter_value.get("timestamp"))
        if measured_at is None:
            continue
        samples = (
            (
                sample.get("measurand", _ENERGY),
                sample.get("phase"),
                sample.get("format", "Raw"),
                sample.get("value"),
                sample.get("unit"),
                0,
            )
            for sample in meter_value.get("sampledValue", ())
        )
        reading = _reading(measured_at, samples)
        if reading is not None:
            readings.append(reading)
    return tuple(readings)


def readings_from_201(meter_values: Iterable[Mapping[str, Any]]) -> tuple[MeterReading, ...]:
    """OCPP 2.0.1 MeterValueType[]: `value` is a number; `unitOfMeasure` has a unit and a 10^n multiplier."""
    readings = []
    for meter_value in meter_values:
        measured_at = parse_timestamp(meter_value.get("timestamp"))
        if measured_at is None:
            continue
        samples = []
        for sample in meter_value.get("sampledValue", ()):
            unit_of_measure = sample.get("unitOfMeasure") or {}
            samples.append(
                (
                    sample.get("measurand", _ENERGY),
                    sample.get("phase"),
                    "Raw",
                    sample.get("value"),
                    unit_of_measure.get("unit"),
                    unit_of_measure.get("multiplier", 0),
                )
            )
        reading = _reading(measured_at, samples)
        if reading is not None:
            readings.append(reading)
    return tuple(readings)


def _reading(
    measured_at: datetime, samples: Iterable[tuple[Any, Any, Any, Any, Any, Any]]
) -> MeterReading | None:
    energy_wh = power_w = soc = None
    for measurand, phase, value_format, value, unit, multiplier in samples:
        if phase is not None or value_format != "Raw":
            continue
        if measurand == _ENERGY:
            energy_wh = _scaled(value, unit or "Wh", multiplier)
        elif measurand == _POWER:
            power_w = _scaled(value, unit or "W", multiplier)
        elif measurand == _SOC:
            soc = _scaled(value, unit or "Percent", multiplier)
    if energy_wh is not None and energy_wh < 0:
        energy_wh = None  # a register cannot run backwards below zero: a broken meter, not a fact
    if soc is not None and not 0 <= soc <= 100:
        soc = None
    if energy_wh is None and power_w is None and soc is None:
        return None
    return MeterReading(measured_at=measured_at, energy_wh=energy_wh, power_w=power_w, soc_percent=soc)


def _scaled(value: Any, unit: str, multiplier: Any) -> int | None:
    scale = _SCALE.get(unit)
    if scale is None or isinstance(value, bool) or not isinstance(multiplier, int):
        return None
    if multiplier == 0:
        # The common case, a whole number (1.6 sends it as a string), without a round through Decimal.
        if type(value) is int:
            return value * scale
        if type(value) is str and value.isascii() and value.isdigit():
            return int(value) * scale
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    return int((number * scale).scaleb(multiplier).to_integral_value())


def parse_timestamp(value: Any) -> datetime | None:
    """An OCPP dateTime (RFC 3339 with a zone, `Z` allowed) or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
