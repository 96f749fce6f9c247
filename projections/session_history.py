"""The charging-session read model in Postgres: one row per session for history, live state and receipts.

Drivers read their history, live sessions and receipts from it; operators their company's sessions and
revenue. Each row is the fold of its session's events, and records the log `position` of the last one, which
makes a replayed event a no-op and gives live streams an id to resume from.

A batch is folded in memory per session, starting from the rows it touches (one query), and each touched
session is written once (one `unnest` upsert): a fleet's meter values arrive many per session per batch,
and a rebuild replays a million events.

The row keeps what a live session's price depends on (tariff snapshot, time zone, start, meter start, the
latest register and when it last moved) rather than a cost: readers price it with the domain's function
when asked (`projections.session_cost`). Pricing on every batch would cost more than everything else a
rebuild does, for figures the next batch overwrites.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from csms.domain.charging_session import SessionOrigin, SessionStatus
from csms.domain.pricing import PriceBreakdown
from csms.domain.tariff import TariffSnapshot
from csms.eventstore.recorder import Connection
from projections.projector import ProjectedEvent, Tables

_log = logging.getLogger(__name__)

NAME = "session_history"

# Payment status as drivers and operators see it: `pending` from pricing until the billing process manager
# reports the outcome.
PAYMENT_NONE = "none"
PAYMENT_PENDING = "pending"
PAYMENT_SUCCEEDED = "succeeded"
PAYMENT_FAILED = "failed"
PAYMENT_NOT_REQUIRED = "not_required"  # the session cost nothing
PAYMENT_REFUNDED = "refunded"  # everything paid was given back
PAYMENT_PARTIALLY_REFUNDED = "partially_refunded"

FINAL_STATUSES = frozenset(
    {
        SessionStatus.REJECTED.value,
        SessionStatus.EXPIRED.value,
        SessionStatus.PAID.value,
        SessionStatus.PAYMENT_FAILED.value,
    }
)
"""Statuses after which only payment can still change (a failed payment may be retried and succeed)."""

PRICED_STATUSES = frozenset(
    {SessionStatus.PRICED.value, SessionStatus.PAID.value, SessionStatus.PAYMENT_FAILED.value}
)

_DDL = (
    """
    CREATE TABLE {table} (
        session_id              uuid        PRIMARY KEY,
        driver_id               uuid,                   -- NULL: an RFID token no driver holds
        company_id              uuid        NOT NULL,   -- the charge point operator that owns the charger
        station_id              uuid        NOT NULL,
        charger_id              uuid        NOT NULL,
        evse_id                 integer     NOT NULL,
        connector_id            integer     NOT NULL,
        origin                  text        NOT NULL,   -- APP (started from the app) | CHARGER (token at it)
        id_token_type           text        NOT NULL,   -- IdTokenType: APP, RFID, ISO14443, EMAID ...
        status                  text        NOT NULL,   -- SessionStatus: REQUESTED ... PAID, PAYMENT_FAILED
        created_at              timestamptz NOT NULL,   -- when the session was recorded; history sorts on it
        requested_at            timestamptz,            -- app sessions only
        started_at              timestamptz,            -- the charger's start time
        stopped_at              timestamptz,            -- the charger's stop time
        transaction_id          text,
        meter_start_wh          bigint,
        meter_latest_wh         bigint,                 -- latest register reading; meter stop once stopped
        energy_wh               bigint      NOT NULL,   -- delivered so far (final once stopped), >= 0
        power_w                 integer,                -- the latest power reading
        soc_percent             smallint,               -- the latest state of charge reading
        measured_at             timestamptz,            -- when the latest reading was taken
        energy_changed_at       timestamptz,            -- when the register last moved (parking starts there)
        tariff_id               uuid,
        tariff_version          integer,
        tariff_name             text,
        tariff                  jsonb,                  -- the TariffSnapshot the session is priced by
        time_zone               text,                   -- the station's, for time-of-day restrictions
        currency                text,                   -- ISO 4217, from the tariff snapshot
        vat_percent             numeric,
        total_excl_vat          numeric,                -- set by pricing
        vat_amount              numeric,
        total_incl_vat          numeric,                -- what the driver pays
        price_breakdown         jsonb,                  -- priced lines: dimension, quantity, unit price
        priced_at               timestamptz,
        payment_status          text        NOT NULL,   -- none | pending | succeeded | failed | not_required
                                                        -- | refunded | partially_refunded
        payment_intent_id       text,
        amount_paid             numeric,
        amount_refunded         numeric,
        dispute_status          text,                   -- NULL | open | the provider's outcome (won, lost)
        paid_at                 timestamptz,
        payment_failure_code    text,
        payment_failure_message text,
        stop_reason             text,                   -- OCPP reason (EVDisconnected, Remote, Local ...)
        rejection_reason        text,
        updated_at              timestamptz NOT NULL,   -- recorded time of the last event applied
        position                bigint      NOT NULL    -- log position of the last event applied
    ) WITH (fillfactor = 80)
    """,
    # fillfactor leaves room on each page for HOT updates: a meter value changes no indexed column.
    "CREATE INDEX ON {table} (driver_id, created_at DESC, session_id DESC) WHERE driver_id IS NOT NULL",
    "CREATE INDEX ON {table} (company_id, created_at DESC, session_id DESC)",
    "CREATE INDEX ON {table} (company_id, station_id, created_at DESC)",
    "CREATE INDEX ON {table} (company_id, status, created_at DESC)",
    "CREATE INDEX ON {table} (company_id, stopped_at)",
)


@dataclass(slots=True)
class _Row:
    """A session's row while a batch is folded into it (the columns, bar the two JSON documents)."""

    session_id: UUID
    driver_id: UUID | None
    company_id: UUID
    station_id: UUID
    charger_id: UUID
    evse_id: int
    connector_id: int
    origin: str
    id_token_type: str
    status: str
    created_at: datetime
    requested_at: datetime | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    transaction_id: str | None = None
    meter_start_wh: int | None = None
    meter_latest_wh: int | None = None
    energy_wh: int = 0
    power_w: int | None = None
    soc_percent: int | None = None
    measured_at: datetime | None = None
    energy_changed_at: datetime | None = None
    tariff_id: UUID | None = None
    tariff_version: int | None = None
    tariff_name: str | None = None
    time_zone: str | None = None
    currency: str | None = None
    vat_percent: Decimal | None = None
    total_excl_vat: Decimal | None = None
    vat_amount: Decimal | None = None
    total_incl_vat: Decimal | None = None
    priced_at: datetime | None = None
    payment_status: str = PAYMENT_NONE
    payment_intent_id: str | None = None
    amount_paid: Decimal | None = None
    amount_refunded: Decimal | None = None
    dispute_status: str | None = None
    paid_at: datetime | None = None
    payment_failure_code: str | None = None
    payment_failure_message: str | None = None
    stop_reason: str | None = None
    rejection_reason: str | None = None
    updated_at: datetime | None = None
    position: int = 0


# Columns as written, with the array type `unnest` reads them as. The JSON documents come last: they are
# written only by the batch that sets them (NULL otherwise) and kept by the upsert's COALESCE.
_ARRAY_TYPES = {
    "session_id": "uuid[]",
    "driver_id": "uuid[]",
    "company_id": "uuid[]",
    "station_id": "uuid[]",
    "charger_id": "uuid[]",
    "evse_id": "integer[]",
    "connector_id": "integer[]",
    "origin": "text[]",
    "id_token_type": "text[]",
    "status": "text[]",
    "created_at": "timestamptz[]",
    "requested_at": "timestamptz[]",
    "started_at": "timestamptz[]",
    "stopped_at": "timestamptz[]",
    "transaction_id": "text[]",
    "meter_start_wh": "bigint[]",
    "meter_latest_wh": "bigint[]",
    "energy_wh": "bigint[]",
    "power_w": "integer[]",
    "soc_percent": "smallint[]",
    "measured_at": "timestamptz[]",
    "energy_changed_at": "timestamptz[]",
    "tariff_id": "uuid[]",
    "tariff_version": "integer[]",
    "tariff_name": "text[]",
    "time_zone": "text[]",
    "currency": "text[]",
    "vat_percent": "numeric[]",
    "total_excl_vat": "numeric[]",
    "vat_amount": "numeric[]",
    "total_incl_vat": "numeric[]",
    "priced_at": "timestamptz[]",
    "payment_status": "text[]",
    "payment_intent_id": "text[]",
    "amount_paid": "numeric[]",
    "amount_refunded": "numeric[]",
    "dispute_status": "text[]",
    "paid_at": "timestamptz[]",
    "payment_failure_code": "text[]",
    "payment_failure_message": "text[]",
    "stop_reason": "text[]",
    "rejection_reason": "text[]",
    "updated_at": "timestamptz[]",
    "position": "bigint[]",
}
_STATE_COLUMNS = tuple(f.name for f in fields(_Row))
assert set(_STATE_COLUMNS) == set(_ARRAY_TYPES), "every column of _Row needs its array type"
_COLUMN_ARRAYS = tuple((name, _ARRAY_TYPES[name]) for name in _STATE_COLUMNS)
_JSON_COLUMNS = ("tariff", "price_breakdown")


def _upsert_sql(table: str) -> str:
    names = [name for name, _ in _COLUMN_ARRAYS] + list(_JSON_COLUMNS)
    arrays = [f"${i}::{array}" for i, (_, array) in enumerate(_COLUMN_ARRAYS, start=1)]
    arrays += [f"${len(arrays) + i}::text[]" for i in range(1, len(_JSON_COLUMNS) + 1)]
    selected = [name for name, _ in _COLUMN_ARRAYS] + [f"{name}::jsonb" for name in _JSON_COLUMNS]
    updates = [f"{name} = EXCLUDED.{name}" for name, _ in _COLUMN_ARRAYS if name != "session_id"]
    updates += [f"{name} = coalesce(EXCLUDED.{name}, {table}.{name})" for name in _JSON_COLUMNS]
    # The position guard keeps the upsert idempotent even outside the runner (a batch written twice).
    return f"""
        INSERT INTO {table} ({", ".join(names)})
        SELECT {", ".join(selected)} FROM unnest({", ".join(arrays)}) AS u({", ".join(names)})
        ON CONFLICT (session_id) DO UPDATE SET {", ".join(updates)}
        WHERE {table}.position < EXCLUDED.position
    """


_METER = "ChargingSession.MeterValuesRecorded"


@dataclass(slots=True)
class _Readings:
    """The part of a row a batch of meter readings reads and writes (None: keep the stored value)."""

    session_id: UUID
    position: int
    meter_start_wh: int | None
    meter_latest_wh: int | None
    energy_wh: int | None = None
    power_w: int | None = None
    soc_percent: int | None = None
    measured_at: datetime | None = None
    energy_changed_at: datetime | None = None
    updated_at: datetime | None = None


_READINGS_COLUMNS = {
    "session_id": "uuid[]",
    "position": "bigint[]",
    "meter_latest_wh": "bigint[]",
    "energy_wh": "bigint[]",
    "power_w": "integer[]",
    "soc_percent": "smallint[]",
    "measured_at": "timestamptz[]",
    "energy_changed_at": "timestamptz[]",
    "updated_at": "timestamptz[]",
}


def _readings_sql(table: str) -> str:
    names = list(_READINGS_COLUMNS)
    arrays = [f"${i}::{array}" for i, array in enumerate(_READINGS_COLUMNS.values(), start=1)]
    kept = [
        f"{name} = coalesce(u.{name}, t.{name})" for name in names if name not in ("session_id", "position")
    ]
    return f"""
        UPDATE {table} AS t SET {", ".join(kept)}, position = u.position
        FROM unnest({", ".join(arrays)}) AS u({", ".join(names)})
        WHERE t.session_id = u.session_id AND t.position < u.position
    """


class SessionHistoryProjector:
    """Projects `ChargingSession` events into the `session_history` table."""

    topics = frozenset(
        f"ChargingSession.{name}"
        for name in (
            "Requested",
            "StartedAtCharger",
            "Accepted",
            "Rejected",
            "Expired",
            "Started",
            "MeterValuesRecorded",
            "Stopped",
            "Priced",
            "PaymentSucceeded",
            "PaymentFailed",
            "PaymentNotRequired",
            "Refunded",
            "DisputeOpened",
            "DisputeClosed",
        )
    )

    def __init__(self, name: str = NAME) -> None:
        # Another name gives a second, independent copy of the model (its own tables, view and position):
        # tests and benchmarks use one beside the real one.
        self.name = name
        self.tables: Mapping[str, Sequence[str]] = {name: _DDL}

    async def apply(self, connection: Connection, tables: Tables, events: Sequence[ProjectedEvent]) -> None:
        table = tables[self.name]
        by_session: dict[UUID, list[ProjectedEvent]] = {}
        for event in events:
            by_session.setdefault(event.stream_id, []).append(event)
        # Most sessions in a batch only took meter readings: they are read and written through a handful of
        # columns (an UPDATE that touches no indexed column, so Postgres updates them in place). Sessions
        # whose lifecycle moved are folded on their whole row.
        lifecycle = [sid for sid, batch in by_session.items() if any(e.topic != _METER for e in batch)]
        metered = [sid for sid, batch in by_session.items() if all(e.topic == _METER for e in batch)]
        if lifecycle:
            await self._fold_rows(connection, table, lifecycle, by_session)
        if metered:
            await self._fold_readings(connection, table, metered, by_session)

    async def _fold_rows(
        self,
        connection: Connection,
        table: str,
        ids: list[UUID],
        by_session: dict[UUID, list[ProjectedEvent]],
    ) -> None:
        records = await connection.fetch(
            f"SELECT {', '.join(_STATE_COLUMNS)} FROM {table} WHERE session_id = ANY($1::uuid[])", ids
        )
        # Positional: the SELECT lists the columns in the order of _Row's fields (a dict per row costs more).
        rows = {record[0]: _Row(*record.values()) for record in records}
        written: list[tuple[_Row, str | None, str | None]] = []
        for session_id in ids:
            fold = _Fold(rows.get(session_id))
            for event in by_session[session_id]:
                fold.apply(event)
            if fold.changed and fold.row is not None:
                written.append((fold.row, fold.tariff_json, fold.breakdown_json))
        if not written:
            return
        columns: list[list[Any]] = [[] for _ in range(len(_COLUMN_ARRAYS) + len(_JSON_COLUMNS))]
        for row, tariff_json, breakdown_json in written:
            for index, name in enumerate(_STATE_COLUMNS):
                columns[index].append(getattr(row, name))
            columns[-2].append(tariff_json)
            columns[-1].append(breakdown_json)
        await connection.execute(_upsert_sql(table), *columns)

    async def _fold_readings(
        self,
        connection: Connection,
        table: str,
        ids: list[UUID],
        by_session: dict[UUID, list[ProjectedEvent]],
    ) -> None:
        records = await connection.fetch(
            f"SELECT session_id, position, meter_start_wh, meter_latest_wh FROM {table}"
            " WHERE session_id = ANY($1::uuid[])",
            ids,
        )
        rows = {record[0]: _Readings(*record.values()) for record in records}
        columns: tuple[list[Any], ...] = tuple([] for _ in _READINGS_COLUMNS)
        for session_id in ids:
            row = rows.get(session_id)
            if row is None:
                _log.warning(
                    "%s: meter values for unknown session %s",
                    self.name,
                    session_id,
                    extra={"session_id": str(session_id)},
                )
                continue
            changed = False
            for event in by_session[session_id]:
                if event.position > row.position:
                    _Fold.readings(row, event.event)
                    row.position, row.updated_at = event.position, event.recorded_at
                    changed = True
            if changed:
                if row.meter_start_wh is not None and row.meter_latest_wh is not None:
                    row.energy_wh = max(0, row.meter_latest_wh - row.meter_start_wh)
                for column, name in zip(columns, _READINGS_COLUMNS, strict=True):
                    column.append(getattr(row, name))
        if columns[0]:
            await connection.execute(_readings_sql(table), *columns)


class _Fold:
    """One session's events of a batch folded onto its row (None until its creation event)."""

    __slots__ = ("breakdown_json", "changed", "row", "tariff_json")

    def __init__(self, row: _Row | None) -> None:
        self.row = row
        self.changed = False
        self.tariff_json: str | None = None
        self.breakdown_json: str | None = None

    def apply(self, projected: ProjectedEvent) -> None:
        row = self.row
        if row is not None and projected.position <= row.position:
            return  # already in the row: a replay changes nothing
        event = projected.event
        topic = projected.topic
        if topic == "ChargingSession.Requested":
            if row is None:
                self.row = row = self._created(projected, SessionOrigin.APP, SessionStatus.REQUESTED)
                row.requested_at = event.timestamp
        elif topic == "ChargingSession.StartedAtCharger":
            if row is None:
                self.row = row = self._created(projected, SessionOrigin.CHARGER, SessionStatus.STARTED)
                self._start(row, event)
        elif row is None:
            # The log starts with each session's creation event, so this is a stream cut short by hand:
            # there is nothing to attach it to, and a projector must not stop on it.
            _log.warning(
                "%s: %s for unknown session %s",
                NAME,
                topic,
                projected.stream_id,
                extra={"session_id": str(projected.stream_id)},
            )
            return
        elif topic == "ChargingSession.MeterValuesRecorded":
            self.readings(row, event)
        elif topic == "ChargingSession.Accepted":
            row.status = SessionStatus.ACCEPTED.value
        elif topic == "ChargingSession.Rejected":
            row.status = SessionStatus.REJECTED.value
            row.rejection_reason = event.reason
        elif topic == "ChargingSession.Expired":
            row.status = SessionStatus.EXPIRED.value
        elif topic == "ChargingSession.Started":
            row.status = SessionStatus.STARTED.value
            self._start(row, event)
        elif topic == "ChargingSession.Stopped":
            row.status = SessionStatus.STOPPED.value
            row.stopped_at = event.stopped_at
            row.stop_reason = event.reason.value
            if row.meter_latest_wh != event.meter_stop_wh:
                row.energy_changed_at = None  # the register moved after the last reading we have
            row.meter_latest_wh = event.meter_stop_wh
        elif topic == "ChargingSession.Priced":
            row.status = SessionStatus.PRICED.value
            self._priced(row, event.breakdown, event.timestamp)
        elif topic == "ChargingSession.PaymentSucceeded":
            row.status = SessionStatus.PAID.value
            row.payment_status = PAYMENT_SUCCEEDED
            row.payment_intent_id = event.payment_intent_id
            row.amount_paid = event.amount.amount
            row.paid_at = event.timestamp
            row.payment_failure_code = row.payment_failure_message = None
        elif topic == "ChargingSession.PaymentFailed":
            row.status = SessionStatus.PAYMENT_FAILED.value
            row.payment_status = PAYMENT_FAILED
            row.payment_intent_id = event.payment_intent_id
            row.payment_failure_code = event.reason_code
            row.payment_failure_message = event.message
        elif topic == "ChargingSession.PaymentNotRequired":
            row.status = SessionStatus.PAID.value
            row.payment_status = PAYMENT_NOT_REQUIRED
            row.amount_paid = Decimal(0)
            row.paid_at = event.timestamp
        elif topic == "ChargingSession.Refunded":
            # The domain records each provider refund once (by its id), so each event adds its amount once.
            row.amount_refunded = (row.amount_refunded or Decimal(0)) + event.amount.amount
            paid = row.amount_paid or Decimal(0)
            row.payment_status = (
                PAYMENT_REFUNDED if row.amount_refunded >= paid else PAYMENT_PARTIALLY_REFUNDED
            )
        elif topic == "ChargingSession.DisputeOpened":
            row.dispute_status = "open"
        elif topic == "ChargingSession.DisputeClosed":
            row.dispute_status = event.outcome
        else:
            return
        if row.meter_start_wh is not None and row.meter_latest_wh is not None:
            row.energy_wh = max(0, row.meter_latest_wh - row.meter_start_wh)
        row.position = projected.position
        row.updated_at = projected.recorded_at
        self.changed = True

    @staticmethod
    def _created(projected: ProjectedEvent, origin: SessionOrigin, status: SessionStatus) -> _Row:
        event = projected.event
        return _Row(
            session_id=projected.stream_id,
            driver_id=event.driver_id,
            company_id=event.company_id,
            station_id=event.station_id,
            charger_id=event.charger_id,
            evse_id=event.evse_id,
            connector_id=event.connector_id,
            origin=origin.value,
            id_token_type=event.id_token.type.value,
            status=status.value,
            created_at=event.timestamp,
            updated_at=projected.recorded_at,
        )

    def _start(self, row: _Row, event: Any) -> None:
        tariff: TariffSnapshot = event.tariff
        row.transaction_id = event.transaction_id
        row.meter_start_wh = event.meter_start_wh
        row.started_at = event.started_at
        row.time_zone = event.time_zone
        row.tariff_id = tariff.tariff_id
        row.tariff_version = tariff.tariff_version
        row.tariff_name = tariff.name
        row.currency = tariff.currency.value
        row.vat_percent = tariff.vat_percent
        self.tariff_json = orjson.dumps(tariff, default=_json_default).decode()

    @staticmethod
    def readings(row: _Row | _Readings, event: Any) -> None:
        """Take in a MeterValuesRecorded. The domain records only readings newer than every stored one,
        in measured order."""
        for reading in event.readings:
            if reading.energy_wh is not None:
                if reading.energy_wh != row.meter_latest_wh:
                    row.energy_changed_at = reading.measured_at
                row.meter_latest_wh = reading.energy_wh
            if reading.power_w is not None:
                row.power_w = reading.power_w
            if reading.soc_percent is not None:
                row.soc_percent = reading.soc_percent
            row.measured_at = reading.measured_at

    def _priced(self, row: _Row, breakdown: PriceBreakdown, at: datetime) -> None:
        row.currency = breakdown.currency.value
        row.vat_percent = breakdown.vat_percent
        row.total_excl_vat = breakdown.total_excl_vat
        row.vat_amount = breakdown.vat_amount
        row.total_incl_vat = breakdown.total_incl_vat
        row.priced_at = at
        row.payment_status = PAYMENT_PENDING
        self.breakdown_json = orjson.dumps(breakdown.lines, default=_json_default).decode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)  # every digit kept, as the event store does
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__qualname__} is not JSON serialisable")
