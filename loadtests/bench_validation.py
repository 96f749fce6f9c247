"""`csms bench validation`: parsing and validating charger frames, ours beside the `ocpp` library's own path.

Both sides do the same work on the same bytes in the same run: read the JSON frame, then check its payload
against the action's schema from the `ocpp` package. Ours is `parse_frame` + `validate_call` (orjson and
validators compiled by jsonschema-rs). The baseline is the library's `unpack` + `validate_payload` (json and
jsonschema), measured both inline and the way its ChargePoint runs it by default, in the event loop's thread
pool executor, with as many messages in flight as a busy gateway has chargers.

Run with `csms bench validation` or `python -m loadtests.bench_validation`; needs no database.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import orjson
from ocpp import messages

from write_api.ocpp.frames import Call, parse_frame
from write_api.ocpp.validation import compile_validators, validate_call
from write_api.ocpp.versions import ProtocolVersion

_TARGET_MICROSECONDS = 50.0
"""Parse + validate of a typical MeterValues CALL must stay well under this."""
_IN_FLIGHT = 64
"""Concurrent messages for the thread-pool baseline: one per charger sending at the same moment."""
_AT = "2026-11-28T12:00:00.000Z"


def _meter_values_16() -> dict[str, Any]:
    """An AC three-phase charger's periodic sample: energy, power, current and voltage per phase, SoC."""
    sampled = [
        {
            "value": "12345.6",
            "context": "Sample.Periodic",
            "format": "Raw",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        },
        {"value": "10950", "context": "Sample.Periodic", "measurand": "Power.Active.Import", "unit": "W"},
        *(
            {
                "value": "15.9",
                "context": "Sample.Periodic",
                "measurand": "Current.Import",
                "phase": p,
                "unit": "A",
            }
            for p in ("L1", "L2", "L3")
        ),
        *(
            {"value": "229.8", "context": "Sample.Periodic", "measurand": "Voltage", "phase": p, "unit": "V"}
            for p in ("L1-N", "L2-N", "L3-N")
        ),
        {
            "value": "67",
            "context": "Sample.Periodic",
            "measurand": "SoC",
            "location": "EV",
            "unit": "Percent",
        },
    ]
    return {
        "connectorId": 1,
        "transactionId": 4711,
        "meterValue": [{"timestamp": _AT, "sampledValue": sampled}],
    }


def _sampled_values_201() -> list[dict[str, Any]]:
    return [
        {
            "value": 12345.6,
            "context": "Sample.Periodic",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "Wh"},
        },
        {
            "value": 10950,
            "context": "Sample.Periodic",
            "measurand": "Power.Active.Import",
            "unitOfMeasure": {"unit": "W"},
        },
        *(
            {"value": 15.9, "context": "Sample.Periodic", "measurand": "Current.Import", "phase": p}
            for p in ("L1", "L2", "L3")
        ),
        *(
            {"value": 229.8, "context": "Sample.Periodic", "measurand": "Voltage", "phase": p}
            for p in ("L1-N", "L2-N", "L3-N")
        ),
        {
            "value": 67,
            "context": "Sample.Periodic",
            "measurand": "SoC",
            "location": "EV",
            "unitOfMeasure": {"unit": "Percent"},
        },
    ]


_PAYLOADS: list[tuple[ProtocolVersion, str, dict[str, Any]]] = [
    (ProtocolVersion.OCPP16, "MeterValues", _meter_values_16()),
    (
        ProtocolVersion.OCPP201,
        "MeterValues",
        {"evseId": 1, "meterValue": [{"timestamp": _AT, "sampledValue": _sampled_values_201()}]},
    ),
    (
        ProtocolVersion.OCPP201,
        "TransactionEvent",
        {
            "eventType": "Updated",
            "timestamp": _AT,
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 42,
            "transactionInfo": {
                "transactionId": "f3b3c7e0-5f0b-4a7e-9f57-4c1d2e3f4a5b",
                "chargingState": "Charging",
            },
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [{"timestamp": _AT, "sampledValue": _sampled_values_201()}],
        },
    ),
    (
        ProtocolVersion.OCPP16,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": _AT},
    ),
    (
        ProtocolVersion.OCPP201,
        "StatusNotification",
        {"timestamp": _AT, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    ),
    (
        ProtocolVersion.OCPP16,
        "BootNotification",
        {
            "chargePointVendor": "VendorX",
            "chargePointModel": "SingleSocketCharger",
            "chargePointSerialNumber": "SN-000123",
            "firmwareVersion": "1.4.2",
            "iccid": "8931440400012345678",
            "imsi": "204043212345678",
            "meterType": "ABB B23",
            "meterSerialNumber": "MTR-998877",
        },
    ),
    (
        ProtocolVersion.OCPP201,
        "BootNotification",
        {
            "reason": "PowerUp",
            "chargingStation": {
                "model": "SingleSocketCharger",
                "vendorName": "VendorX",
                "serialNumber": "SN-000123",
                "firmwareVersion": "2.0.1-7",
                "modem": {"iccid": "8931440400012345678", "imsi": "204043212345678"},
            },
        },
    ),
]


@dataclass
class Row:
    frame: str
    size_bytes: int
    ours: float
    library_inline: float
    library_thread_pool: float
    target: str
    met: bool | None

    @property
    def ours_microseconds(self) -> float:
        return 1e6 / self.ours

    @property
    def vs_inline(self) -> float:
        return self.ours / self.library_inline

    @property
    def vs_thread_pool(self) -> float:
        return self.ours / self.library_thread_pool


def _rate(work: Callable[[], object], seconds: float) -> float:
    """Messages per second of `work` run back to back for `seconds` (checking the clock every 100)."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while (now := time.perf_counter()) < deadline:
        for _ in range(100):
            work()
        count += 100
    return count / (now - started)


async def _async_rate(work: Callable[[], Awaitable[None]], seconds: float, in_flight: int) -> float:
    """Messages per second with `in_flight` loops each awaiting `work` back to back for `seconds`."""
    counts = [0] * in_flight
    deadline = time.perf_counter() + seconds

    async def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            await work()
            counts[i] += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(i) for i in range(in_flight)))
    return sum(counts) / (time.perf_counter() - started)


def _library_version(version: ProtocolVersion) -> str:
    return version.value.removeprefix("ocpp")


def _ours(raw: bytes, version: ProtocolVersion) -> Callable[[], None]:
    def work() -> None:
        call = parse_frame(raw, version)
        assert isinstance(call, Call)
        validate_call(version, call)

    return work


def _library(raw: bytes, version: ProtocolVersion) -> Callable[[], Awaitable[None]]:
    library_version = _library_version(version)

    async def work() -> None:
        await messages.validate_payload(messages.unpack(raw), library_version)

    return work


async def _library_rate(raw: bytes, version: ProtocolVersion, seconds: float, thread_pool: bool) -> float:
    # The library reads this module flag on every call; restore it so nothing else in the process notices.
    saved = messages.ASYNC_VALIDATION
    messages.ASYNC_VALIDATION = thread_pool
    try:
        work = _library(raw, version)
        await work()  # warm its schema cache
        return await _async_rate(work, seconds, _IN_FLIGHT if thread_pool else 1)
    finally:
        messages.ASYNC_VALIDATION = saved


def run(seconds: float, rounds: int) -> list[Row]:
    compile_validators()
    rows = []
    for version, action, payload in _PAYLOADS:
        raw = orjson.dumps([2, "0b6a8f5e-2c1d-4b8a-9f3e-7d6c5b4a3e21", action, payload])
        ours_work = _ours(raw, version)
        ours_work()  # fails loudly if our validators refuse the frame: the figures would mean nothing
        ours = statistics.median(_rate(ours_work, seconds) for _ in range(rounds))
        inline = statistics.median(
            asyncio.run(_library_rate(raw, version, seconds, thread_pool=False)) for _ in range(rounds)
        )
        pooled = statistics.median(
            asyncio.run(_library_rate(raw, version, seconds, thread_pool=True)) for _ in range(rounds)
        )
        row = Row(f"{action} {_library_version(version)}", len(raw), ours, inline, pooled, "", None)
        if action == "MeterValues":
            row.target = f"< {_TARGET_MICROSECONDS:.0f} µs"
            row.met = row.ours_microseconds < _TARGET_MICROSECONDS
        rows.append(row)
    return rows


def format_table(rows: list[Row]) -> str:
    header = (
        "| frame | bytes | ours (msg/s) | ours (µs/msg) | library inline (msg/s) | ours / inline "
        f"| library thread pool, {_IN_FLIGHT} in flight (msg/s) | ours / thread pool | target | met |"
    )
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        cells = [
            r.frame,
            str(r.size_bytes),
            f"{r.ours:,.0f}",
            f"{r.ours_microseconds:.1f}",
            f"{r.library_inline:,.0f}",
            f"{r.vs_inline:.0f}x",
            f"{r.library_thread_pool:,.0f}",
            f"{r.vs_thread_pool:.0f}x",
            r.target,
            met,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@click.command("validation")
@click.option("--seconds", default=1.0, show_default=True, help="Duration of each measurement.")
@click.option("--rounds", default=3, show_default=True, help="Repeat each measurement; report the median.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def validation(ctx: click.Context, seconds: float, rounds: int, json_file: Path | None) -> None:
    """Parse + validate throughput of charger frames: ours beside the ocpp library's jsonschema path."""
    rows = run(seconds, rounds)
    click.echo(format_table(rows))
    if json_file is not None:
        figures: list[dict[str, Any]] = [
            {
                **asdict(r),
                "ours_microseconds": r.ours_microseconds,
                "vs_inline": r.vs_inline,
                "vs_thread_pool": r.vs_thread_pool,
            }
            for r in rows
        ]
        document = {"seconds": seconds, "rounds": rounds, "in_flight": _IN_FLIGHT, "rows": figures}
        json_file.write_text(json.dumps(document, indent=2))
    if any(r.met is False for r in rows):
        ctx.exit(1)


if __name__ == "__main__":
    validation()
