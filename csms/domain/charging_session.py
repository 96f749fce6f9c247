"""The ChargingSession aggregate: one charging transaction, from request to payment."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Self
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from csms.domain.errors import InvalidState, InvalidValue
from csms.domain.id_tokens import IdToken
from csms.domain.location import require_time_zone
from csms.domain.meter_readings import MeterReadings
from csms.domain.metering import MeterReading, charging_ended_at, energy_timeline
from csms.domain.money import Money
from csms.domain.pricing import PriceBreakdown, SessionFacts, price_session
from csms.domain.tariff import TariffSnapshot
from csms.domain.validation import require_aware, require_instance, require_int, require_text


class SessionStatus(StrEnum):
    """Where a session is in its lifecycle."""

    REQUESTED = "REQUESTED"  # the app asked; the charger has not answered yet
    ACCEPTED = "ACCEPTED"  # the charger accepted the remote start
    REJECTED = "REJECTED"  # the charger refused the remote start
    EXPIRED = "EXPIRED"  # the charger did not start in time
    STARTED = "STARTED"
    STOPPED = "STOPPED"
    PRICED = "PRICED"
    PAID = "PAID"
    PAYMENT_FAILED = "PAYMENT_FAILED"


class SessionOrigin(StrEnum):
    """Who started the session: a driver from the app, or a token presented at the charger."""

    APP = "APP"
    CHARGER = "CHARGER"


class StopReason(StrEnum):
    """Why the transaction ended (OCPP 2.0.1 ReasonEnumType, a superset of 1.6 Reason)."""

    DE_AUTHORIZED = "DeAuthorized"
    EMERGENCY_STOP = "EmergencyStop"
    ENERGY_LIMIT_REACHED = "EnergyLimitReached"
    EV_DISCONNECTED = "EVDisconnected"
    GROUND_FAULT = "GroundFault"
    HARD_RESET = "HardReset"
    IMMEDIATE_RESET = "ImmediateReset"
    LOCAL = "Local"
    LOCAL_OUT_OF_CREDIT = "LocalOutOfCredit"
    MASTER_PASS = "MasterPass"  # noqa: S105 - an OCPP stop reason, not a credential
    OTHER = "Other"
    OVERCURRENT_FAULT = "OvercurrentFault"
    POWER_LOSS = "PowerLoss"
    POWER_QUALITY = "PowerQuality"
    REBOOT = "Reboot"
    REMOTE = "Remote"
    SOC_LIMIT_REACHED = "SOCLimitReached"
    SOFT_RESET = "SoftReset"
    STOPPED_BY_EV = "StoppedByEV"
    TIME_LIMIT_REACHED = "TimeLimitReached"
    TIMEOUT = "Timeout"
    UNLOCK_COMMAND = "UnlockCommand"


@dataclass(frozen=True)
class PaymentAttempt:
    """One attempt to charge the driver, recorded before the payment provider is called.

    The idempotency key is derived from the session and the attempt number, so whoever carries the
    attempt out (again, after a crash) sends the same key and the provider charges at most once.
    """

    number: int
    idempotency_key: str
    amount: Money
    payment_method_id: str
    customer_id: str
    off_session: bool  # True: the driver is not there to authenticate (the charge after a session)


@dataclass(frozen=True)
class RefundRequest:
    """A refund an operator asked for, recorded before the payment provider is called (same key on retry)."""

    number: int
    idempotency_key: str
    amount: Money
    reason: str


@dataclass(frozen=True)
class Refund:
    """Money given back to the driver, as the payment provider reports it (its refund id)."""

    refund_id: str
    amount: Money


def payment_idempotency_key(session_id: UUID, number: int) -> str:
    return f"csms-session-{session_id}-payment-{number}"


def refund_idempotency_key(session_id: UUID, number: int) -> str:
    return f"csms-session-{session_id}-refund-{number}"


_NOT_STARTED = frozenset(
    {
        SessionStatus.REQUESTED,
        SessionStatus.ACCEPTED,
        SessionStatus.REJECTED,
        SessionStatus.EXPIRED,
    }
)
_AWAITING_START = frozenset({SessionStatus.REQUESTED, SessionStatus.ACCEPTED})
_PAYABLE = frozenset({SessionStatus.PRICED, SessionStatus.PAYMENT_FAILED})
_FINISHED = frozenset(
    {
        SessionStatus.STOPPED,
        SessionStatus.PRICED,
        SessionStatus.PAID,
        SessionStatus.PAYMENT_FAILED,
    }
)


def _require_transaction_id(value: str) -> str:
    # OCPP 2.0.1 transactionId is a string of up to 36; a 1.6 integer id arrives as its digits.
    return require_text(value, "transaction_id", max_length=36)


class ChargingSession(Aggregate):
    """One charging transaction, and its price and payment.

    There are two ways in:

    - `ChargingSession.request(...)` records `Requested` when a driver starts from the app;
      the charger then accepts or rejects the remote start, and `start(...)` records
      `Started` when it reports the transaction.
    - `ChargingSession.start_at_charger(...)` records `StartedAtCharger`, a single creation
      event, when a charger reports a transaction it started itself for a token presented
      there (RFID, local authorisation). Nothing was requested, so no `Requested` is invented.

    Facts from the charger are accepted whenever they arrive: a start after the request
    expired still starts the session (energy is flowing and must be billed), while a
    repeated Start or Stop, and meter readings older than the newest stored one, are
    ignored so nothing is counted twice.
    """

    @classmethod
    def request(
        cls,
        id: UUID,
        driver_id: UUID,
        company_id: UUID,
        station_id: UUID,
        charger_id: UUID,
        evse_id: int,
        connector_id: int,
        id_token: IdToken,
        at: datetime,
    ) -> Self:
        """A driver asked to start charging from the app."""
        return cls(
            id=id,
            driver_id=require_instance(driver_id, UUID, "driver_id"),
            company_id=require_instance(company_id, UUID, "company_id"),
            station_id=require_instance(station_id, UUID, "station_id"),
            charger_id=require_instance(charger_id, UUID, "charger_id"),
            evse_id=require_int(evse_id, "evse_id", minimum=1),
            connector_id=require_int(connector_id, "connector_id", minimum=1),
            id_token=require_instance(id_token, IdToken, "id_token"),
            timestamp=require_aware(at, "at"),
        )

    @classmethod
    def start_at_charger(
        cls,
        id: UUID,
        driver_id: UUID | None,
        company_id: UUID,
        station_id: UUID,
        charger_id: UUID,
        evse_id: int,
        connector_id: int,
        id_token: IdToken,
        transaction_id: str,
        meter_start_wh: int,
        started_at: datetime,
        tariff: TariffSnapshot,
        time_zone: str,
        at: datetime,
    ) -> Self:
        """A charger started a transaction itself, for a token presented at it.

        `driver_id` is None when no driver holds the token (a charger may authorise from
        its local list while offline); the session is recorded all the same.
        """
        return cls._create(
            cls.StartedAtCharger,
            id=id,
            driver_id=None if driver_id is None else require_instance(driver_id, UUID, "driver_id"),
            company_id=require_instance(company_id, UUID, "company_id"),
            station_id=require_instance(station_id, UUID, "station_id"),
            charger_id=require_instance(charger_id, UUID, "charger_id"),
            evse_id=require_int(evse_id, "evse_id", minimum=1),
            connector_id=require_int(connector_id, "connector_id", minimum=1),
            id_token=require_instance(id_token, IdToken, "id_token"),
            transaction_id=_require_transaction_id(transaction_id),
            meter_start_wh=require_int(meter_start_wh, "meter_start_wh", minimum=0),
            started_at=require_aware(started_at, "started_at"),
            tariff=require_instance(tariff, TariffSnapshot, "tariff"),
            time_zone=require_time_zone(time_zone),
            timestamp=require_aware(at, "at"),
        )

    @event("Requested")
    def __init__(
        self,
        id: UUID,
        driver_id: UUID | None,
        company_id: UUID,
        station_id: UUID,
        charger_id: UUID,
        evse_id: int,
        connector_id: int,
        id_token: IdToken,
        timestamp: datetime,
    ) -> None:
        self.driver_id = driver_id
        self.company_id = company_id
        self.station_id = station_id
        self.charger_id = charger_id
        self.evse_id = evse_id
        self.connector_id = connector_id
        self.id_token = id_token
        self.origin = SessionOrigin.APP
        self.status = SessionStatus.REQUESTED
        self.rejection_reason: str | None = None
        self.transaction_id: str | None = None
        self.meter_start_wh: int | None = None
        self.started_at: datetime | None = None
        self.tariff: TariffSnapshot | None = None
        self.time_zone: str | None = None
        self.readings = MeterReadings()
        self.meter_stop_wh: int | None = None
        self.stopped_at: datetime | None = None
        self.stop_reason: StopReason | None = None
        self.breakdown: PriceBreakdown | None = None
        self.payment_intent_id: str | None = None
        self.amount_paid: Money | None = None
        self.payment_failure_code: str | None = None
        self.payment_failure_message: str | None = None
        self.payment_attempts = 0
        self.open_payment: PaymentAttempt | None = None
        self.refund_requests = 0
        self.open_refunds: dict[int, RefundRequest] = {}
        self.refunds: dict[str, Refund] = {}
        self.refund_results: dict[int, str | None] = {}  # request number -> refund id (None: refused)
        self.disputes: dict[str, str] = {}  # dispute id -> its status ("open" until closed)

    class StartedAtCharger(Aggregate.Created):
        """Creation event of a session the charger started itself (see the class docstring)."""

        driver_id: UUID | None
        company_id: UUID
        station_id: UUID
        charger_id: UUID
        evse_id: int
        connector_id: int
        id_token: IdToken
        transaction_id: str
        meter_start_wh: int
        started_at: datetime
        tariff: TariffSnapshot
        time_zone: str

        def apply(self, aggregate: "ChargingSession") -> None:
            # Runs after __init__ has assigned the fields shared with Requested.
            aggregate.origin = SessionOrigin.CHARGER
            aggregate._apply_start(
                self.transaction_id,
                self.meter_start_wh,
                self.started_at,
                self.tariff,
                self.time_zone,
            )

    # Queries

    @property
    def is_active(self) -> bool:
        """Whether the session holds its connector (waiting for the charger, or charging)."""
        return self.status in _AWAITING_START or self.status is SessionStatus.STARTED

    @property
    def latest_reading(self) -> MeterReading | None:
        return self.readings[-1] if self.readings else None

    @property
    def energy_wh(self) -> int:
        """Energy delivered so far: meter stop minus meter start once stopped, else the latest
        register reading minus meter start; never negative."""
        if self.meter_start_wh is None:
            return 0
        if self.meter_stop_wh is not None:
            return max(0, self.meter_stop_wh - self.meter_start_wh)
        for reading in reversed(self.readings):
            if reading.energy_wh is not None:
                return max(0, reading.energy_wh - self.meter_start_wh)
        return 0

    @property
    def charging_ended_at(self) -> datetime | None:
        """When energy stopped increasing (the start of parking time), once stopped."""
        if self.status not in _FINISHED:
            return None
        facts = self.facts()
        return charging_ended_at(
            energy_timeline(
                facts.started_at,
                facts.stopped_at,
                facts.meter_start_wh,
                facts.meter_stop_wh,
                facts.readings,
            )
        )

    def facts(self) -> SessionFacts:
        """What the price of this stopped session depends on."""
        if (
            self.started_at is None
            or self.stopped_at is None
            or self.meter_start_wh is None
            or self.meter_stop_wh is None
            or self.time_zone is None
        ):
            raise InvalidState(f"session is {self.status.value}, not stopped")
        return SessionFacts(
            started_at=self.started_at,
            # A charger clock that ran backwards must not make a negative duration.
            stopped_at=max(self.stopped_at, self.started_at),
            meter_start_wh=self.meter_start_wh,
            meter_stop_wh=self.meter_stop_wh,
            readings=tuple(self.readings),
            time_zone=self.time_zone,
        )

    # Commands

    def accept(self, at: datetime) -> None:
        """The charger accepted the remote start (ignored once it has moved on)."""
        require_aware(at, "at")
        if self.status is SessionStatus.REQUESTED:
            self._accepted(timestamp=at)

    def reject(self, reason: str, at: datetime) -> None:
        """The charger refused the remote start."""
        reason = require_text(reason, "reason", max_length=500)
        require_aware(at, "at")
        if self.status is SessionStatus.REQUESTED:
            self._rejected(reason=reason, timestamp=at)

    def expire(self, at: datetime) -> None:
        """The charger did not start in time; the driver may try again."""
        require_aware(at, "at")
        if self.status in _AWAITING_START:
            self._expired(timestamp=at)

    def start(
        self,
        transaction_id: str,
        meter_start_wh: int,
        started_at: datetime,
        tariff: TariffSnapshot,
        time_zone: str,
        at: datetime,
    ) -> None:
        """The charger reported the transaction started (1.6 StartTransaction, 2.0.1
        TransactionEvent Started). The tariff snapshot and the station's time zone fix the
        price terms for the whole session. A second Start is ignored."""
        transaction_id = _require_transaction_id(transaction_id)
        require_int(meter_start_wh, "meter_start_wh", minimum=0)
        require_aware(started_at, "started_at")
        require_instance(tariff, TariffSnapshot, "tariff")
        require_time_zone(time_zone)
        require_aware(at, "at")
        if self.status not in _NOT_STARTED:
            return
        self._started(
            transaction_id=transaction_id,
            meter_start_wh=meter_start_wh,
            started_at=started_at,
            tariff=tariff,
            time_zone=time_zone,
            timestamp=at,
        )

    def record_meter_values(self, readings: tuple[MeterReading, ...], at: datetime) -> None:
        """Record readings taken while charging.

        Readings are ordered by their own `measured_at`; any at or before the newest stored
        reading (or the start) is a replay or too late to place, and is dropped, so energy is
        never counted twice. Nothing is recorded unless something new remains.
        """
        if not isinstance(readings, tuple):
            raise InvalidValue("readings must be a tuple")
        for reading in readings:
            require_instance(reading, MeterReading, "reading")
        require_aware(at, "at")
        if self.status is not SessionStatus.STARTED or self.started_at is None:
            return
        newest = self.readings.last_measured_at or self.started_at
        fresh: dict[datetime, MeterReading] = {}
        for reading in sorted(readings, key=lambda r: r.measured_at):
            if reading.measured_at > newest and not reading.is_empty:
                fresh.setdefault(reading.measured_at, reading)
        if fresh:
            self._meter_values_recorded(readings=tuple(fresh.values()), timestamp=at)

    def stop(self, meter_stop_wh: int, stopped_at: datetime, reason: StopReason, at: datetime) -> None:
        """The charger reported the transaction ended. A second Stop is ignored.

        The Stop is always accepted, because a charger retries a refused StopTransaction
        forever: a meter below meter start is recorded as is and counts as no energy.
        """
        require_int(meter_stop_wh, "meter_stop_wh", minimum=0)
        require_aware(stopped_at, "stopped_at")
        require_instance(reason, StopReason, "reason")
        require_aware(at, "at")
        if self.status is not SessionStatus.STARTED:
            return
        self._stopped(meter_stop_wh=meter_stop_wh, stopped_at=stopped_at, reason=reason, timestamp=at)

    def price(self, at: datetime) -> None:
        """Price the stopped session from its facts and its tariff snapshot (once)."""
        require_aware(at, "at")
        if self.status is not SessionStatus.STOPPED:
            if self.status in _FINISHED:
                return
            raise InvalidState(f"session is {self.status.value}; only a stopped one is priced")
        assert self.tariff is not None
        self._priced(breakdown=price_session(self.facts(), self.tariff), timestamp=at)

    def payment_succeeded(self, payment_intent_id: str, amount: Money, at: datetime) -> None:
        """The driver was charged. The same success reported again is ignored."""
        payment_intent_id = require_text(payment_intent_id, "payment_intent_id", max_length=255)
        require_instance(amount, Money, "amount")
        require_aware(at, "at")
        if self.status is SessionStatus.PAID:
            if payment_intent_id == self.payment_intent_id:
                return
            raise InvalidState(
                f"session was already paid by {self.payment_intent_id}, not {payment_intent_id}"
            )
        if self.status not in _PAYABLE:
            raise InvalidState(f"session is {self.status.value}; it must be priced first")
        assert self.breakdown is not None
        if amount.currency is not self.breakdown.currency:
            raise InvalidValue(
                f"paid in {amount.currency}, but the session is priced in {self.breakdown.currency}"
            )
        self._payment_succeeded(payment_intent_id=payment_intent_id, amount=amount, timestamp=at)

    def payment_failed(
        self,
        reason_code: str,
        message: str,
        at: datetime,
        payment_intent_id: str | None = None,
    ) -> None:
        """An attempt to charge the driver failed (declined, authentication required, ...).

        A late failure after a success is ignored, as is a repeat of the last failure.
        """
        reason_code = require_text(reason_code, "reason_code", max_length=100)
        message = require_text(message, "message", max_length=1000)
        require_aware(at, "at")
        if self.status is SessionStatus.PAID:
            return
        if self.status not in _PAYABLE:
            raise InvalidState(f"session is {self.status.value}; it must be priced first")
        if (
            self.status is SessionStatus.PAYMENT_FAILED
            and self.open_payment is None
            and (
                reason_code,
                message,
                payment_intent_id,
            )
            == (self.payment_failure_code, self.payment_failure_message, self.payment_intent_id)
        ):
            return
        self._payment_failed(
            payment_intent_id=payment_intent_id,
            reason_code=reason_code,
            message=message,
            timestamp=at,
        )

    @property
    def amount_refunded(self) -> Money | None:
        if self.breakdown is None:
            return None
        total = Money.zero(self.breakdown.currency)
        for refund in self.refunds.values():
            total = total + refund.amount
        return total

    @property
    def amount_due(self) -> Money | None:
        """What the driver still owes: the total while unpaid, nothing once paid."""
        if self.breakdown is None:
            return None
        if self.status is SessionStatus.PAID:
            return Money.zero(self.breakdown.currency)
        return self.breakdown.total

    def begin_payment(
        self, payment_method_id: str, customer_id: str, at: datetime, *, off_session: bool = True
    ) -> PaymentAttempt:
        """Record an attempt to charge the priced total, before the payment provider is called.

        Only one attempt is open at a time: while one is, it is returned again (so a caller resuming
        after a crash carries out the same attempt with the same idempotency key).
        """
        payment_method_id = require_text(payment_method_id, "payment_method_id", max_length=255)
        customer_id = require_text(customer_id, "customer_id", max_length=255)
        require_aware(at, "at")
        if self.open_payment is not None:
            return self.open_payment
        if self.status not in _PAYABLE:
            raise InvalidState(f"session is {self.status.value}; there is nothing to pay")
        assert self.breakdown is not None
        total = self.breakdown.total
        if total.amount <= 0:
            raise InvalidState("the session costs nothing")
        number = self.payment_attempts + 1
        attempt = PaymentAttempt(
            number=number,
            idempotency_key=payment_idempotency_key(self.id, number),
            amount=total,
            payment_method_id=payment_method_id,
            customer_id=customer_id,
            off_session=off_session,
        )
        self._payment_attempted(attempt=attempt, timestamp=at)
        return attempt

    def settle_without_payment(self, at: datetime) -> None:
        """A priced session that costs nothing is settled as is (no charge of zero is attempted)."""
        require_aware(at, "at")
        if self.status is not SessionStatus.PRICED:
            return
        assert self.breakdown is not None
        if self.breakdown.total.amount > 0:
            raise InvalidState(f"the session costs {self.breakdown.total}")
        self._payment_not_required(timestamp=at)

    def request_refund(self, amount: Money | None, reason: str, at: datetime) -> RefundRequest:
        """Record an operator's refund (the whole remaining amount when `amount` is None) before the
        payment provider is called. The sum of refunds never exceeds what was paid."""
        reason = require_text(reason, "reason", max_length=500)
        require_aware(at, "at")
        if self.status is not SessionStatus.PAID or self.amount_paid is None:
            raise InvalidState(f"session is {self.status.value}; only a paid session is refunded")
        if self.payment_intent_id is None:
            raise InvalidState("the session cost nothing; there is nothing to refund")
        refundable = self.amount_paid - self._refunded_or_pending()
        if amount is None:
            amount = refundable
        require_instance(amount, Money, "amount")
        if amount.currency is not refundable.currency:
            raise InvalidValue(f"the session was paid in {refundable.currency}, not {amount.currency}")
        if amount.rounded() != amount or amount.amount <= 0:
            raise InvalidValue(f"a refund must be a positive amount in whole {amount.currency} minor units")
        if amount.amount > refundable.amount:
            raise InvalidValue(f"at most {refundable} can still be refunded")
        number = self.refund_requests + 1
        request = RefundRequest(
            number=number,
            idempotency_key=refund_idempotency_key(self.id, number),
            amount=amount,
            reason=reason,
        )
        self._refund_requested(request=request, timestamp=at)
        return request

    def record_refund(
        self, refund_id: str, amount: Money, at: datetime, request_number: int | None = None
    ) -> None:
        """The payment provider refunded `amount` (our request `request_number`, or one made elsewhere,
        such as its dashboard). The same refund reported again is ignored."""
        refund_id = require_text(refund_id, "refund_id", max_length=255)
        require_instance(amount, Money, "amount")
        require_aware(at, "at")
        if refund_id in self.refunds:
            if request_number is not None and request_number in self.open_refunds:
                # Reported first by a webhook, now confirmed by our own call: just close the request.
                self._refund_request_closed(request_number=request_number, refund_id=refund_id, timestamp=at)
            return
        if self.status is not SessionStatus.PAID:
            raise InvalidState(f"session is {self.status.value}; only a paid session is refunded")
        if request_number is not None and request_number not in self.open_refunds:
            request_number = None
        self._refunded(refund_id=refund_id, amount=amount, request_number=request_number, timestamp=at)

    def refund_failed(self, request_number: int, reason_code: str, message: str, at: datetime) -> None:
        """The payment provider refused our refund request; it is closed, the operator may ask again."""
        reason_code = require_text(reason_code, "reason_code", max_length=100)
        message = require_text(message, "message", max_length=1000)
        require_aware(at, "at")
        if request_number in self.open_refunds:
            self._refund_failed(
                request_number=request_number, reason_code=reason_code, message=message, timestamp=at
            )

    def open_dispute(self, dispute_id: str, amount: Money, reason: str, at: datetime) -> None:
        """The driver's bank disputes the payment (a chargeback). Reported again: ignored."""
        dispute_id = require_text(dispute_id, "dispute_id", max_length=255)
        require_instance(amount, Money, "amount")
        reason = require_text(reason, "reason", max_length=100)
        require_aware(at, "at")
        if self.breakdown is None:
            raise InvalidState(f"session is {self.status.value}; it was never priced, so never paid")
        if dispute_id not in self.disputes:
            self._dispute_opened(dispute_id=dispute_id, amount=amount, reason=reason, timestamp=at)

    def close_dispute(self, dispute_id: str, outcome: str, at: datetime) -> None:
        """The dispute ended (`won`, `lost`, `warning_closed`, ...). Closed twice: ignored."""
        dispute_id = require_text(dispute_id, "dispute_id", max_length=255)
        outcome = require_text(outcome, "outcome", max_length=100)
        require_aware(at, "at")
        if dispute_id not in self.disputes:
            raise InvalidState(f"no dispute {dispute_id} was opened")
        if self.disputes[dispute_id] == "open":
            self._dispute_closed(dispute_id=dispute_id, outcome=outcome, timestamp=at)

    def _refunded_or_pending(self) -> Money:
        assert self.amount_paid is not None
        total = Money.zero(self.amount_paid.currency)
        for refund in self.refunds.values():
            total = total + refund.amount
        for request in self.open_refunds.values():
            total = total + request.amount
        return total

    # Events

    def _apply_start(
        self,
        transaction_id: str,
        meter_start_wh: int,
        started_at: datetime,
        tariff: TariffSnapshot,
        time_zone: str,
    ) -> None:
        self.status = SessionStatus.STARTED
        self.transaction_id = transaction_id
        self.meter_start_wh = meter_start_wh
        self.started_at = started_at
        self.tariff = tariff
        self.time_zone = time_zone

    @event("Accepted")
    def _accepted(self, timestamp: datetime) -> None:
        self.status = SessionStatus.ACCEPTED

    @event("Rejected")
    def _rejected(self, reason: str, timestamp: datetime) -> None:
        self.status = SessionStatus.REJECTED
        self.rejection_reason = reason

    @event("Expired")
    def _expired(self, timestamp: datetime) -> None:
        self.status = SessionStatus.EXPIRED

    @event("Started")
    def _started(
        self,
        transaction_id: str,
        meter_start_wh: int,
        started_at: datetime,
        tariff: TariffSnapshot,
        time_zone: str,
        timestamp: datetime,
    ) -> None:
        self._apply_start(transaction_id, meter_start_wh, started_at, tariff, time_zone)

    @event("MeterValuesRecorded")
    def _meter_values_recorded(self, readings: tuple[MeterReading, ...], timestamp: datetime) -> None:
        self.readings = self.readings.extended(readings)

    @event("Stopped")
    def _stopped(
        self, meter_stop_wh: int, stopped_at: datetime, reason: StopReason, timestamp: datetime
    ) -> None:
        self.status = SessionStatus.STOPPED
        self.meter_stop_wh = meter_stop_wh
        self.stopped_at = stopped_at
        self.stop_reason = reason

    @event("Priced")
    def _priced(self, breakdown: PriceBreakdown, timestamp: datetime) -> None:
        self.status = SessionStatus.PRICED
        self.breakdown = breakdown

    @event("PaymentAttempted")
    def _payment_attempted(self, attempt: PaymentAttempt, timestamp: datetime) -> None:
        self.payment_attempts = attempt.number
        self.open_payment = attempt

    @event("PaymentNotRequired")
    def _payment_not_required(self, timestamp: datetime) -> None:
        assert self.breakdown is not None
        self.status = SessionStatus.PAID
        self.amount_paid = Money.zero(self.breakdown.currency)

    @event("PaymentSucceeded")
    def _payment_succeeded(self, payment_intent_id: str, amount: Money, timestamp: datetime) -> None:
        self.status = SessionStatus.PAID
        self.payment_intent_id = payment_intent_id
        self.amount_paid = amount
        self.open_payment = None

    @event("RefundRequested")
    def _refund_requested(self, request: RefundRequest, timestamp: datetime) -> None:
        self.refund_requests = request.number
        self.open_refunds[request.number] = request

    @event("Refunded")
    def _refunded(
        self, refund_id: str, amount: Money, request_number: int | None, timestamp: datetime
    ) -> None:
        self.refunds[refund_id] = Refund(refund_id, amount)
        if request_number is not None:
            self.open_refunds.pop(request_number, None)
            self.refund_results[request_number] = refund_id

    @event("RefundRequestClosed")
    def _refund_request_closed(self, request_number: int, refund_id: str, timestamp: datetime) -> None:
        self.open_refunds.pop(request_number, None)
        self.refund_results[request_number] = refund_id

    @event("RefundFailed")
    def _refund_failed(
        self, request_number: int, reason_code: str, message: str, timestamp: datetime
    ) -> None:
        self.open_refunds.pop(request_number, None)

    @event("DisputeOpened")
    def _dispute_opened(self, dispute_id: str, amount: Money, reason: str, timestamp: datetime) -> None:
        self.disputes[dispute_id] = "open"

    @event("DisputeClosed")
    def _dispute_closed(self, dispute_id: str, outcome: str, timestamp: datetime) -> None:
        self.disputes[dispute_id] = outcome

    @event("PaymentFailed")
    def _payment_failed(
        self,
        payment_intent_id: str | None,
        reason_code: str,
        message: str,
        timestamp: datetime,
    ) -> None:
        self.status = SessionStatus.PAYMENT_FAILED
        self.payment_intent_id = payment_intent_id
        self.payment_failure_code = reason_code
        self.payment_failure_message = message
        self.open_payment = None
