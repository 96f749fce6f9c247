"""Daily energy and revenue per station, for operators' reports: summed once per priced session.

`station_daily` has one row per station, local day and currency. The day is the session's stop time in the
station's time zone: the zone the session took at its start (the write side copies the station's into
`Started` / `StartedAtCharger`, and prices with it), so a session stopped at 00:30 in Amsterdam counts for
that calendar day there, whatever UTC says. A station whose tariff changed currency during a day has a row
per currency; sessions and energy add up across them.

A session is counted when it is priced (`ChargingSession.Priced`): sessions, energy (meter stop minus meter
start, never negative) and the price with and without VAT. What happens to the money afterwards is counted
apart, on the day the session was counted: a settled session (`PaymentSucceeded`, or `PaymentNotRequired`
for one that cost nothing) adds to `paid_sessions` and `paid_incl_vat`, and money given back (`Refunded`)
to `refunded_incl_vat`. So billed minus paid is what is still owed, and paid minus refunded what was kept.
Failed payments change nothing (the session stays billed and unpaid); disputes are left to the session
history, since their outcome is not money moved until the provider reports it.

`Priced` carries only the price, so `station_revenue_sessions` keeps per session what counting needs from
its earlier events (company, station, zone, meters, stop time) and, once counted, the day and currency the
payment goes to. Its `version` column (the session stream's version last folded in) is what makes applying
a batch twice add nothing the second time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from csms.eventstore.recorder import Connection
from projections.fleet_rows import Row, RowTable, fold_into
from projections.projector import ProjectedEvent, Tables

NAME = "station_revenue"

SESSIONS = RowTable(
    key="session_id",
    columns=(
        "session_id",
        "company_id",
        "station_id",
        "time_zone",
        "meter_start_wh",
        "meter_stop_wh",
        "stopped_at",
        "day",
        "currency",
        "version",
    ),
)

_TABLES: Mapping[str, Sequence[str]] = {
    "station_daily": [
        """
        CREATE TABLE {table} (
            station_id uuid NOT NULL,
            day date NOT NULL,                   -- the local day, in the station's time zone
            currency text NOT NULL,              -- ISO 4217
            company_id uuid NOT NULL,
            sessions integer NOT NULL,           -- priced sessions that stopped that day
            energy_wh bigint NOT NULL,
            revenue_excl_vat numeric NOT NULL,
            revenue_incl_vat numeric NOT NULL,   -- what the drivers were billed
            paid_sessions integer NOT NULL,      -- of those, the ones whose payment succeeded
            paid_incl_vat numeric NOT NULL,
            refunded_incl_vat numeric NOT NULL,  -- given back to drivers since
            PRIMARY KEY (station_id, day, currency)
        )
        """,
        "CREATE INDEX ON {table} (company_id, day)",
        "CREATE INDEX ON {table} (day)",
    ],
    "station_revenue_sessions": [
        """
        CREATE TABLE {table} (
            session_id uuid PRIMARY KEY,
            company_id uuid NOT NULL,
            station_id uuid NOT NULL,
            time_zone text,                      -- from the start; NULL until started
            meter_start_wh bigint,
            meter_stop_wh bigint,
            stopped_at timestamptz,              -- the charger's stop time
            day date,                            -- set once counted (priced)
            currency text,
            version bigint NOT NULL             -- the session stream's version last folded in
        )
        """
    ],
}

_TOPICS = frozenset(
    {
        "ChargingSession.Requested",
        "ChargingSession.StartedAtCharger",
        "ChargingSession.Started",
        "ChargingSession.Stopped",
        "ChargingSession.Priced",
        "ChargingSession.PaymentSucceeded",
        "ChargingSession.PaymentNotRequired",
        "ChargingSession.Refunded",
    }
)


@dataclass(slots=True)
class _DayTotals:
    company_id: UUID
    sessions: int = 0
    energy_wh: int = 0
    revenue_excl_vat: Decimal = field(default_factory=Decimal)
    revenue_incl_vat: Decimal = field(default_factory=Decimal)
    paid_sessions: int = 0
    paid_incl_vat: Decimal = field(default_factory=Decimal)
    refunded_incl_vat: Decimal = field(default_factory=Decimal)


class StationRevenue:
    """Projector `station_revenue`: tables `station_daily` and `station_revenue_sessions`."""

    name = NAME
    topics = _TOPICS
    tables = _TABLES

    async def apply(self, connection: Connection, tables: Tables, events: Sequence[ProjectedEvent]) -> None:
        added: dict[tuple[UUID, date, str], _DayTotals] = {}

        def fold(row: Row | None, projected: ProjectedEvent) -> Row | None:
            return _fold_session(row, projected, added)

        # The fold only runs for events not yet in their session's row, so `added` holds each amount once.
        await fold_into(connection, SESSIONS, tables["station_revenue_sessions"], events, fold)
        await _add_to_days(connection, tables["station_daily"], added)


def local_day(stopped_at: datetime, time_zone: str) -> date:
    """The calendar day `stopped_at` falls on in `time_zone`."""
    return stopped_at.astimezone(ZoneInfo(time_zone)).date()


def _fold_session(
    row: Row | None, projected: ProjectedEvent, added: dict[tuple[UUID, date, str], _DayTotals]
) -> Row | None:
    event: Any = projected.event
    topic = projected.topic
    if topic in ("ChargingSession.Requested", "ChargingSession.StartedAtCharger"):
        row = {
            "session_id": projected.stream_id,
            "company_id": event.company_id,
            "station_id": event.station_id,
            "time_zone": None,
            "meter_start_wh": None,
            "meter_stop_wh": None,
            "stopped_at": None,
            "day": None,
            "currency": None,
        }
    elif row is None:
        return None  # a session whose creation this projector never saw: nothing to count it against
    match topic:
        case "ChargingSession.StartedAtCharger" | "ChargingSession.Started":
            row["time_zone"], row["meter_start_wh"] = event.time_zone, event.meter_start_wh
        case "ChargingSession.Stopped":
            row["meter_stop_wh"], row["stopped_at"] = event.meter_stop_wh, event.stopped_at
        case "ChargingSession.Priced":
            _count_priced(row, event, projected.recorded_at, added)
        case "ChargingSession.PaymentSucceeded" | "ChargingSession.PaymentNotRequired":
            if row["day"] is not None:
                totals = _totals(added, row, row["day"], row["currency"])
                totals.paid_sessions += 1
                if topic == "ChargingSession.PaymentSucceeded":
                    totals.paid_incl_vat += event.amount.amount
        case "ChargingSession.Refunded":
            if row["day"] is not None:
                _totals(added, row, row["day"], row["currency"]).refunded_incl_vat += event.amount.amount
    return row


def _count_priced(
    row: Row, event: Any, recorded_at: datetime, added: dict[tuple[UUID, date, str], _DayTotals]
) -> None:
    # A priced session always stopped and started first; the fallbacks only guard against a log that
    # somehow lacks those facts (the session then counts on the UTC day it was priced, with no energy).
    stopped_at: datetime = row["stopped_at"] or recorded_at
    day = local_day(stopped_at, row["time_zone"] or "UTC")
    start, stop = row["meter_start_wh"], row["meter_stop_wh"]
    energy = max(0, stop - start) if start is not None and stop is not None else 0
    breakdown = event.breakdown
    currency = breakdown.currency.value
    row["day"], row["currency"] = day, currency
    totals = _totals(added, row, day, currency)
    totals.sessions += 1
    totals.energy_wh += energy
    totals.revenue_excl_vat += breakdown.total_excl_vat
    totals.revenue_incl_vat += breakdown.total_incl_vat


def _totals(
    added: dict[tuple[UUID, date, str], _DayTotals], row: Row, day: date, currency: str
) -> _DayTotals:
    key = (row["station_id"], day, currency)
    totals = added.get(key)
    if totals is None:
        totals = added[key] = _DayTotals(company_id=row["company_id"])
    return totals


async def _add_to_days(
    connection: Connection, table: str, added: Mapping[tuple[UUID, date, str], _DayTotals]
) -> None:
    if not added:
        return
    await connection.executemany(
        f"""
        INSERT INTO {table} AS t (station_id, day, currency, company_id, sessions, energy_wh,
                                  revenue_excl_vat, revenue_incl_vat, paid_sessions, paid_incl_vat,
                                  refunded_incl_vat)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (station_id, day, currency) DO UPDATE SET
            sessions = t.sessions + EXCLUDED.sessions,
            energy_wh = t.energy_wh + EXCLUDED.energy_wh,
            revenue_excl_vat = t.revenue_excl_vat + EXCLUDED.revenue_excl_vat,
            revenue_incl_vat = t.revenue_incl_vat + EXCLUDED.revenue_incl_vat,
            paid_sessions = t.paid_sessions + EXCLUDED.paid_sessions,
            paid_incl_vat = t.paid_incl_vat + EXCLUDED.paid_incl_vat,
            refunded_incl_vat = t.refunded_incl_vat + EXCLUDED.refunded_incl_vat
        """,
        [
            (
                station_id,
                day,
                currency,
                totals.company_id,
                totals.sessions,
                totals.energy_wh,
                totals.revenue_excl_vat,
                totals.revenue_incl_vat,
                totals.paid_sessions,
                totals.paid_incl_vat,
                totals.refunded_incl_vat,
            )
            for (station_id, day, currency), totals in sorted(added.items(), key=lambda item: item[0])
        ],
    )
