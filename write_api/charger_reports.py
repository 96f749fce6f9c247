"""What chargers report (boot, status, tokens, transactions, readings, uploads, device data) as domain events.

Protocol-neutral: the OCPP 1.6 and 2.0.1 handlers translate their payloads into these calls, which load the
aggregates, run the domain's commands and commit the events before returning, so the gateway acknowledges a
charger's message only once its facts are durable.

They run while the gateway handles one of the charger's messages, whose log context they add the session to
once they know it (`bind_log_fields`), so every later line about that message names the session.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from csms.directories import EarlyMeterValues, IdTokenDirectory, TransactionDirectory
from csms.domain import (
    Charger,
    ChargingSession,
    ConnectorStatus,
    Currency,
    DeviceEvent,
    Driver,
    IdToken,
    IdTokenBlocked,
    IdTokenType,
    MeterReading,
    OcppVersion,
    PriceComponent,
    ReportEntry,
    SessionStatus,
    Station,
    StopReason,
    Tariff,
    TariffDimension,
    TariffElement,
    TariffSnapshot,
    UnknownIdToken,
)
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from csms.observability.logging import bind_log_fields

A = TypeVar("A")

_log = logging.getLogger(__name__)

# A station without a tariff charges nothing; the session still records its energy.
FREE_TARIFF = TariffSnapshot(
    tariff_id=UUID(int=0),
    tariff_version=0,
    name="Free",
    currency=Currency.EUR,
    vat_percent=Decimal(0),
    elements=(TariffElement((PriceComponent(TariffDimension.FLAT, Decimal(0)),)),),
)


# A transaction started without any token (2.0.1 idToken type NoAuthorization, free vend).
_NO_TOKEN = IdToken("NO-TOKEN", IdTokenType.NO_AUTHORIZATION)


class Authorization(enum.Enum):
    """The verdict on an id token; each protocol spells it its own way."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class TokenVerdict:
    authorization: Authorization
    driver_id: UUID | None


@dataclass(frozen=True, slots=True)
class StartedTransaction:
    transaction_id: str
    session_id: UUID
    verdict: TokenVerdict


@dataclass(frozen=True, slots=True)
class TransactionStart:
    """A transaction the charger reports as started, in protocol-neutral terms."""

    evse_id: int
    connector_id: int
    id_token: IdToken | None
    meter_start_wh: int
    started_at: datetime


def _stop_anomaly(session: ChargingSession, meter_stop_wh: int) -> str | None:
    """Why a Stop for a session that is not running does not add up, or None for a plain replay."""
    if session.status in (SessionStatus.REQUESTED, SessionStatus.ACCEPTED):
        return "Stop for a transaction that never started"
    if session.status in (SessionStatus.REJECTED, SessionStatus.EXPIRED):
        return f"Stop for a session that was {session.status.value.lower()}"
    if session.meter_stop_wh is not None and session.meter_stop_wh != meter_stop_wh:
        return (
            f"second Stop with different figures: meter stop {meter_stop_wh} Wh,"
            f" recorded {session.meter_stop_wh} Wh"
        )
    return None


class ChargerReports:
    """The write side's handling of facts reported by chargers."""

    def __init__(
        self,
        repository: Repository,
        transactions: TransactionDirectory,
        tokens: IdTokenDirectory,
        early_readings: EarlyMeterValues,
        clock: Callable[[], datetime],
        retries: int = 5,
    ) -> None:
        self._repository = repository
        self._transactions = transactions
        self._tokens = tokens
        self._early_readings = early_readings
        self._clock = clock
        self._retries = retries

    # Charger

    async def charger(self, charger_id: UUID) -> Charger | None:
        """The charger, brought up to date (passwords rotate and layouts change while it is connected)."""
        try:
            return await self._repository.get(charger_id, Charger, refresh=True)
        except AggregateNotFoundError:
            return None

    async def connected(self, charger_id: UUID, protocol: OcppVersion, connection_id: UUID) -> None:
        at = self._clock()
        await self._on_charger(charger_id, lambda c: c.connected(protocol, at, connection_id))

    async def disconnected(self, charger_id: UUID, connection_id: UUID, reason: str) -> None:
        at = self._clock()
        await self._on_charger(charger_id, lambda c: c.disconnected(at, reason, connection_id))

    async def boot(
        self, charger_id: UUID, vendor: str, model: str, serial_number: str | None, firmware: str | None
    ) -> None:
        at = self._clock()
        await self._on_charger(
            charger_id, lambda c: c.record_boot(vendor, model, serial_number, firmware, at)
        )

    async def status(
        self,
        charger_id: UUID,
        evse_id: int,
        connector_id: int,
        status: ConnectorStatus,
        error_code: str | None,
        reported_at: datetime,
    ) -> None:
        at = self._clock()

        def report(charger: Charger) -> None:
            # A status for a connector we do not know is recorded only for the charger as a whole
            # (0, 0) or a configured connector; anything else is the charger's business, not a fact of ours.
            if (evse_id, connector_id) != (0, 0) and charger.connector(evse_id, connector_id) is None:
                return
            charger.report_connector_status(evse_id, connector_id, status, error_code, reported_at, at)

        await self._on_charger(charger_id, report)

    async def firmware_status(self, charger_id: UUID, status: str, request_id: int | None) -> None:
        at = self._clock()
        await self._on_charger(charger_id, lambda c: c.record_firmware_status(status, request_id, at))

    async def diagnostics_status(self, charger_id: UUID, status: str, request_id: int | None) -> None:
        at = self._clock()
        await self._on_charger(charger_id, lambda c: c.record_diagnostics_status(status, request_id, at))

    async def security_event(
        self, charger_id: UUID, event_type: str, occurred_at: datetime, tech_info: str | None
    ) -> None:
        at = self._clock()
        await self._on_charger(
            charger_id, lambda c: c.record_security_event(event_type, occurred_at, tech_info, at)
        )

    async def device_events(self, charger_id: UUID, events: tuple[DeviceEvent, ...]) -> None:
        at = self._clock()
        await self._on_charger(charger_id, lambda c: c.record_device_events(events, at))

    async def device_report(
        self, charger_id: UUID, request_id: int, seq_no: int, complete: bool, entries: tuple[ReportEntry, ...]
    ) -> None:
        at = self._clock()
        await self._on_charger(
            charger_id, lambda c: c.record_device_report(request_id, seq_no, complete, entries, at)
        )

    # Tokens

    async def authorize(self, id_token: IdToken, current: frozenset[UUID] = frozenset()) -> TokenVerdict:
        """The token's verdict, from its holder's Driver (read unless it is among the `current` ones)."""
        driver_id = await self._tokens.owner(id_token.value)
        if driver_id is None:
            return TokenVerdict(Authorization.UNKNOWN, None)
        try:
            driver = await self._repository.get(driver_id, Driver, refresh=driver_id not in current)
            driver.ensure_id_token_usable(id_token.value)
        except AggregateNotFoundError:
            return TokenVerdict(Authorization.UNKNOWN, None)
        except IdTokenBlocked:
            return TokenVerdict(Authorization.BLOCKED, driver_id)
        except UnknownIdToken:
            return TokenVerdict(Authorization.UNKNOWN, None)
        return TokenVerdict(Authorization.ACCEPTED, driver_id)

    # Transactions

    async def start_16(self, charger_id: UUID, start: TransactionStart) -> StartedTransaction:
        """OCPP 1.6 StartTransaction: we assign the transactionId; a replayed Start gets the same one."""
        token = start.id_token.value if start.id_token else ""
        fingerprint = f"{start.evse_id}|{token.upper()}|{start.started_at.isoformat()}|{start.meter_start_wh}"
        start_key = hashlib.sha256(fingerprint.encode()).hexdigest()
        current = await self._read_ahead(charger_id, start.id_token)
        charger = await self._repository.get(charger_id, Charger, refresh=charger_id not in current)
        waiting = self._session_awaiting_start(charger, start.evse_id, start.connector_id)
        ref = await self._transactions.allocate_16(charger_id, start_key, waiting or uuid.uuid4())
        bind_log_fields(session_id=str(ref.session_id))
        verdict = await self._verdict(start.id_token, current)
        # A 1.6 charger learns its transactionId from our answer, so readings can only have come early for
        # a Start seen before (its first handling may have failed before recording them).
        await self._start(
            charger_id,
            ref.session_id,
            ref.transaction_id,
            start,
            verdict,
            current,
            early_readings=not ref.created,
        )
        return StartedTransaction(ref.transaction_id, ref.session_id, verdict)

    async def start_201(
        self, charger_id: UUID, transaction_id: str, start: TransactionStart
    ) -> StartedTransaction:
        """OCPP 2.0.1 TransactionEvent(Started): the charger chose the transaction id (and may have sent
        readings under it before this)."""
        current = await self._read_ahead(charger_id, start.id_token)
        charger = await self._repository.get(charger_id, Charger, refresh=charger_id not in current)
        waiting = self._session_awaiting_start(charger, start.evse_id, start.connector_id)
        ref = await self._transactions.link(charger_id, transaction_id, waiting or uuid.uuid4())
        bind_log_fields(session_id=str(ref.session_id))
        verdict = await self._verdict(start.id_token, current)
        await self._start(
            charger_id, ref.session_id, transaction_id, start, verdict, current, early_readings=True
        )
        return StartedTransaction(transaction_id, ref.session_id, verdict)

    async def meter_values(
        self, charger_id: UUID, transaction_id: str | None, readings: tuple[MeterReading, ...]
    ) -> None:
        """Readings for a transaction. Readings that arrive before their transaction's start are kept and
        recorded when it starts; readings outside any transaction describe no session."""
        if not readings or transaction_id is None:
            return
        session_id = await self._transactions.find(charger_id, transaction_id)
        if session_id is None:
            await self._early_readings.keep(charger_id, transaction_id, readings)
            return
        bind_log_fields(session_id=str(session_id))
        at = self._clock()
        await self._execute(
            session_id, ChargingSession, lambda s: s.record_meter_values(readings, at), optimistic=True
        )

    async def knows(self, charger_id: UUID, transaction_id: str) -> bool:
        """Whether the transaction's start has been recorded."""
        return await self._transactions.find(charger_id, transaction_id) is not None

    async def stop(
        self,
        charger_id: UUID,
        transaction_id: str,
        meter_stop_wh: int,
        stopped_at: datetime,
        reason: StopReason,
        readings: tuple[MeterReading, ...] = (),
    ) -> UUID | None:
        """The charger ended a transaction: record the last readings, stop, free the connector, price.

        A Stop for a transaction we never saw, or saw end already, returns quietly: it must be acknowledged,
        because a charger whose StopTransaction is refused retries it forever.
        """
        session_id = await self._transactions.find(charger_id, transaction_id)
        at = self._clock()
        if session_id is None:
            anomaly = "Stop for a transaction whose start was never reported"
            await self._on_charger(
                charger_id, lambda c: c.record_transaction_anomaly(transaction_id, anomaly, at)
            )
            _log.warning("transaction anomaly: %s", anomaly, extra={"transaction_id": transaction_id})
            return None
        bind_log_fields(session_id=str(session_id))
        for attempt in range(self._retries + 1):
            if attempt == 0:
                # Optimistic, as for readings: this gateway wrote the session's and the charger's latest
                # events (their starts, readings and statuses), so its cached copies are usually current.
                # A copy can only be behind the log, and every decision below appends events (checked
                # against the streams' versions) unless the session has ended, which it then has in the log
                # too; a conflict reads both again.
                session = await self._repository.get(session_id, ChargingSession)
                charger = await self._repository.get(charger_id, Charger)
            else:
                session, charger = await self._repository.get_many(
                    (session_id, ChargingSession), (charger_id, Charger)
                )
            stop_anomaly = None
            if session.status is not SessionStatus.STARTED:
                stop_anomaly = _stop_anomaly(session, meter_stop_wh)
                if stop_anomaly is not None:
                    charger.record_transaction_anomaly(transaction_id, stop_anomaly, at)
            if readings:
                session.record_meter_values(readings, at)
            session.stop(max(meter_stop_wh, 0), stopped_at, reason, at)
            if session.status is SessionStatus.STOPPED:
                session.price(at)
            charger.release_session(session.evse_id, session.connector_id, session.id, at)
            try:
                await self._repository.save(session, charger)
            except ConcurrencyError:
                if attempt == self._retries:
                    raise
                continue
            if stop_anomaly is not None:
                _log.warning(
                    "transaction anomaly: %s", stop_anomaly, extra={"transaction_id": transaction_id}
                )
            if not session.is_active:
                # Done here: keep the cache and the directory's memory for the sessions still running.
                self._repository.forget(session_id)
                self._transactions.forget_ended(charger_id, transaction_id)
            return session_id
        raise AssertionError("unreachable")

    # Internals

    async def _start(
        self,
        charger_id: UUID,
        session_id: UUID,
        transaction_id: str,
        start: TransactionStart,
        verdict: TokenVerdict,
        current: frozenset[UUID],
        *,
        early_readings: bool,
    ) -> None:
        """Record the start. `current`: aggregates read ahead a moment ago (trusted on the first attempt)."""
        at = self._clock()
        for attempt in range(self._retries + 1):
            if attempt > 0:
                current = frozenset()  # a conflict: someone wrote meanwhile, read everything again
            session: ChargingSession | None
            try:  # a session the app requested (one read for both); a start at the charger has none yet
                session, charger = await self._repository.get_many(
                    (session_id, ChargingSession), (charger_id, Charger)
                )
            except AggregateNotFoundError:
                session, charger = None, await self._require_charger(charger_id)
            tariff, time_zone = await self._terms(charger.station_id, current)
            if session is None:
                session = ChargingSession.start_at_charger(
                    id=session_id,
                    driver_id=verdict.driver_id if verdict.authorization is Authorization.ACCEPTED else None,
                    company_id=charger.company_id,
                    station_id=charger.station_id,
                    charger_id=charger_id,
                    evse_id=start.evse_id,
                    connector_id=start.connector_id,
                    id_token=start.id_token or _NO_TOKEN,
                    transaction_id=transaction_id,
                    meter_start_wh=max(start.meter_start_wh, 0),
                    started_at=start.started_at,
                    tariff=tariff,
                    time_zone=time_zone,
                    at=at,
                )
            else:
                session.start(
                    transaction_id, max(start.meter_start_wh, 0), start.started_at, tariff, time_zone, at
                )
            if session.is_active and charger.connector(start.evse_id, start.connector_id) is not None:
                holder = charger.active_session_id(start.evse_id, start.connector_id)
                if holder is None:
                    charger.assign_session(start.evse_id, start.connector_id, session_id, at)
            early = await self._early_readings.kept(charger_id, transaction_id) if early_readings else ()
            if early:
                session.record_meter_values(early, at)
            try:
                await self._repository.save(session, charger)
            except ConcurrencyError:
                if attempt == self._retries:
                    raise
                continue
            if early:
                await self._early_readings.forget(charger_id, transaction_id)
            return

    async def _terms(self, station_id: UUID, current: frozenset[UUID]) -> tuple[TariffSnapshot, str]:
        station = await self._repository.get(station_id, Station, refresh=station_id not in current)
        if station.tariff_id is None:
            return FREE_TARIFF, station.time_zone
        tariff = await self._repository.get(
            station.tariff_id, Tariff, refresh=station.tariff_id not in current
        )
        return tariff.snapshot(), station.time_zone

    async def _read_ahead(self, charger_id: UUID, id_token: IdToken | None) -> frozenset[UUID]:
        """What a transaction start decides on, brought up to date in one round trip: the charger, its
        station and the station's tariff (as last seen here), and the driver holding the token. Returns the
        ids now current; the rest is read when needed."""
        wanted: list[tuple[UUID, type[Any]]] = [(charger_id, Charger)]
        charger = self._repository.peek(charger_id, Charger)
        if charger is not None:
            wanted.append((charger.station_id, Station))
            station = self._repository.peek(charger.station_id, Station)
            if station is not None and station.tariff_id is not None:
                wanted.append((station.tariff_id, Tariff))
        driver_id = await self._tokens.owner(id_token.value) if id_token is not None else None
        if driver_id is not None:
            wanted.append((driver_id, Driver))
        return await self._repository.read_ahead(*wanted)

    async def _verdict(self, id_token: IdToken | None, current: frozenset[UUID]) -> TokenVerdict:
        if id_token is None:
            return TokenVerdict(Authorization.UNKNOWN, None)
        return await self.authorize(id_token, current)

    @staticmethod
    def _session_awaiting_start(charger: Charger, evse_id: int, connector_id: int) -> UUID | None:
        # A session requested from the app holds the connector until the charger reports the start.
        return charger.active_session_id(evse_id, connector_id)

    async def _require_charger(self, charger_id: UUID) -> Charger:
        return await self._repository.get(charger_id, Charger, refresh=True)

    async def _on_charger(self, charger_id: UUID, command: Callable[[Charger], Any]) -> None:
        # Optimistic: this gateway holds the charger's socket and writes most of its events, so its cached
        # copy is usually current (authentication has just refreshed it when the charger connects). When
        # another process wrote meanwhile (the write API assigning a session), the save conflicts and the
        # retry catches up first: one wasted append instead of a read before every report.
        await self._execute(charger_id, Charger, command, optimistic=True)

    async def _execute(
        self, aggregate_id: UUID, cls: type[A], command: Callable[[A], Any], *, optimistic: bool = False
    ) -> None:
        """Run `command` and save, retrying after a conflict. `optimistic` first trusts this process's cached
        copy without reading the stream's tail (the hot path of meter values, whose session only this process
        writes while it charges); a conflict then reloads, so nothing is decided twice on stale state."""
        for attempt in range(self._retries + 1):
            refresh = not optimistic or attempt > 0
            aggregate = await self._repository.get(aggregate_id, cls, refresh=refresh)
            command(aggregate)
            try:
                await self._repository.save(aggregate, handover=True)
            except ConcurrencyError:
                if attempt == self._retries:
                    raise
                continue
            return
