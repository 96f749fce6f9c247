"""Cost so far of a session still charging (or stopped, not yet priced), by the domain's own pricing function.

Readers compute it from a `session_history` row when they serve one, which keeps pricing out of the
projector's batches (a rebuild would otherwise price every live session again in every batch).

The row is a summary of the session, not every meter reading, so the estimate prices the session as if it
stopped at its latest reading, with the energy curve reduced to what the summary knows: linear from the
start to the instant the register last moved, flat from there on. That is exact for tariffs priced on
energy, time, parking and flat fees alone (the usual case) and close for those whose restrictions cut the
session at times of day or energy thresholds. The receipt never uses it: it shows the `Priced` breakdown
the domain recorded from every reading.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

from csms.domain.errors import DomainError
from csms.domain.metering import MeterReading
from csms.domain.pricing import PriceBreakdown, SessionFacts, price_session
from csms.domain.tariff import TariffSnapshot
from csms.eventstore.codec import decoder_for

_log = logging.getLogger(__name__)

_LIVE = frozenset({"STARTED", "STOPPED"})  # charging, or stopped and waiting to be priced
_TARIFF = decoder_for(TariffSnapshot)


class SessionRow(Protocol):
    """A `session_history` row as a reader holds it (an asyncpg record, a dict)."""

    def __getitem__(self, key: str) -> Any: ...


def cost_so_far(row: SessionRow) -> PriceBreakdown | None:
    """The live estimate for a row that is charging or awaiting its price; None for any other row.

    The row needs `status`, `tariff` (the snapshot's JSON text), `time_zone`, `started_at`, `stopped_at`,
    `measured_at`, `meter_start_wh`, `meter_latest_wh` and `energy_changed_at`.
    """
    if row["status"] not in _LIVE or row["tariff"] is None or row["started_at"] is None:
        return None
    meter_start = row["meter_start_wh"]
    latest = row["meter_latest_wh"]
    return estimate_cost(
        CostInputs(
            tariff=tariff_snapshot(row["tariff"]),
            time_zone=row["time_zone"],
            started_at=row["started_at"],
            as_of=row["stopped_at"] or row["measured_at"] or row["started_at"],
            meter_start_wh=meter_start,
            meter_latest_wh=meter_start if latest is None else latest,
            energy_changed_at=row["energy_changed_at"],
        )
    )


@lru_cache(maxsize=1024)
def tariff_snapshot(json_text: str) -> TariffSnapshot:
    """A stored snapshot, parsed once per process: a network has few tariffs and many sessions on each."""
    return _TARIFF(orjson.loads(json_text))  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class CostInputs:
    """What the live estimate depends on; two equal inputs always give the same cost (rows replay exactly)."""

    tariff: TariffSnapshot
    time_zone: str
    started_at: datetime
    as_of: datetime  # the latest reading, or the stop
    meter_start_wh: int
    meter_latest_wh: int  # the latest register reading, or meter stop
    energy_changed_at: datetime | None  # when the register last moved (where parking time may begin)


def estimate_cost(inputs: CostInputs) -> PriceBreakdown | None:
    """The session's price if it ended at `inputs.as_of`; None if the facts cannot be priced.

    A projector's apply must never fail on a stored fact, so a session the pricing function refuses (a
    clock that ran backwards in a way the domain did not clamp) shows no estimate rather than stopping
    the read model.
    """
    stopped_at = max(inputs.as_of, inputs.started_at)
    readings: tuple[MeterReading, ...] = ()
    changed = inputs.energy_changed_at
    if changed is not None and inputs.started_at < changed < stopped_at:
        # The register has not moved since `changed`: energy reached its latest value there.
        readings = (MeterReading(changed, energy_wh=inputs.meter_latest_wh),)
    facts = SessionFacts(
        started_at=inputs.started_at,
        stopped_at=stopped_at,
        meter_start_wh=inputs.meter_start_wh,
        meter_stop_wh=inputs.meter_latest_wh,
        readings=readings,
        time_zone=inputs.time_zone,
    )
    try:
        return price_session(facts, inputs.tariff)
    except (DomainError, ArithmeticError, ValueError) as error:
        _log.warning("session cost estimate failed: %s", error)
        return None
