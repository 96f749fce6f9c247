"""ChargingSession: request, start, meter values, stop, price and payment, replays included."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from csms.domain import (
    ChargingSession,
    Currency,
    IdToken,
    IdTokenType,
    InvalidState,
    InvalidValue,
    MeterReading,
    Money,
    SessionOrigin,
    SessionStatus,
    StopReason,
)
from tests.unit.domain.support import (
    CHARGER_ID,
    COMPANY_ID,
    DRIVER_ID,
    SESSION_ID,
    STATION_ID,
    at,
    energy_snapshot,
    given,
    history,
    new_events,
    topics,
)

APP_TOKEN = IdToken("APP-0004", IdTokenType.CENTRAL)
TAG = IdToken("04A2B3C4", IdTokenType.ISO14443)
TARIFF = energy_snapshot("0.30", "20")


def reading(minutes: float, energy_wh: int | None = None, **values: int) -> MeterReading:
    return MeterReading(measured_at=at(minutes), energy_wh=energy_wh, **values)


def status(session: ChargingSession) -> SessionStatus:
    """The status read afresh (mypy would otherwise keep an earlier narrowing)."""
    return session.status


def requested() -> list[Any]:
    return history(
        ChargingSession.request(
            id=SESSION_ID,
            driver_id=DRIVER_ID,
            company_id=COMPANY_ID,
            station_id=STATION_ID,
            charger_id=CHARGER_ID,
            evse_id=1,
            connector_id=1,
            id_token=APP_TOKEN,
            at=at(),
        )
    )


def started() -> list[Any]:
    session = given(ChargingSession, *requested())
    session.accept(at(0.1))
    session.start("tx-1", 100_000, at(1), TARIFF, "Europe/Amsterdam", at(1))
    return requested() + new_events(session)


def charging() -> list[Any]:
    session = given(ChargingSession, *started())
    session.record_meter_values((reading(16, 102_000, power_w=11_000, soc_percent=40),), at(16))
    return started() + new_events(session)


def stopped() -> list[Any]:
    session = given(ChargingSession, *charging())
    session.stop(110_000, at(61), StopReason.REMOTE, at(61))
    return charging() + new_events(session)


def priced() -> list[Any]:
    session = given(ChargingSession, *stopped())
    session.price(at(62))
    return stopped() + new_events(session)


class TestStartingFromTheApp:
    def test_request_records_who_where_and_with_which_token(self) -> None:
        [requested_event] = requested()

        assert topics([requested_event]) == ["ChargingSession.Requested"]
        assert requested_event.driver_id == DRIVER_ID
        assert (requested_event.evse_id, requested_event.connector_id) == (1, 1)
        assert requested_event.id_token == APP_TOKEN
        session = given(ChargingSession, *requested())
        assert session.status is SessionStatus.REQUESTED
        assert session.origin is SessionOrigin.APP
        assert session.is_active

    def test_request_refuses_connector_zero(self) -> None:
        with pytest.raises(InvalidValue, match="connector_id must be at least 1"):
            ChargingSession.request(
                id=SESSION_ID,
                driver_id=DRIVER_ID,
                company_id=COMPANY_ID,
                station_id=STATION_ID,
                charger_id=CHARGER_ID,
                evse_id=1,
                connector_id=0,
                id_token=APP_TOKEN,
                at=at(),
            )

    def test_accept_then_start(self) -> None:
        session = given(ChargingSession, *requested())

        session.accept(at(0.1))
        session.start("tx-1", 100_000, at(1), TARIFF, "Europe/Amsterdam", at(1))

        events = new_events(session)
        assert topics(events) == ["ChargingSession.Accepted", "ChargingSession.Started"]
        assert events[1].transaction_id == "tx-1"
        assert events[1].meter_start_wh == 100_000
        assert events[1].tariff == TARIFF
        assert session.status is SessionStatus.STARTED

    def test_a_rejected_request_is_no_longer_active(self) -> None:
        session = given(ChargingSession, *requested())

        session.reject("Rejected by charger", at(0.1))
        session.accept(at(0.2))

        [rejected] = new_events(session)
        assert topics([rejected]) == ["ChargingSession.Rejected"]
        assert session.status is SessionStatus.REJECTED
        assert not session.is_active

    def test_an_expired_request_still_starts_if_the_charger_starts_late(self) -> None:
        session = given(ChargingSession, *requested())
        session.expire(at(2))
        session.expire(at(3))
        assert topics(new_events(session)) == ["ChargingSession.Expired"]

        session.start("tx-1", 100_000, at(4), TARIFF, "Europe/Amsterdam", at(4))

        assert topics(new_events(session)) == ["ChargingSession.Started"]

    def test_a_second_start_is_ignored(self) -> None:
        session = given(ChargingSession, *started())

        session.start("tx-1", 100_000, at(1), TARIFF, "Europe/Amsterdam", at(5))
        session.start("tx-2", 100_500, at(3), TARIFF, "Europe/Amsterdam", at(6))

        assert new_events(session) == []
        assert session.transaction_id == "tx-1"

    def test_a_start_after_accept_ignores_a_late_accept(self) -> None:
        session = given(ChargingSession, *started())

        session.accept(at(2))

        assert new_events(session) == []


class TestStartingAtTheCharger:
    def test_one_creation_event_records_the_start(self) -> None:
        session = ChargingSession.start_at_charger(
            id=SESSION_ID,
            driver_id=None,
            company_id=COMPANY_ID,
            station_id=STATION_ID,
            charger_id=CHARGER_ID,
            evse_id=2,
            connector_id=1,
            id_token=TAG,
            transaction_id="1234",
            meter_start_wh=5_000,
            started_at=at(1),
            tariff=TARIFF,
            time_zone="Europe/Amsterdam",
            at=at(1.5),
        )

        events = new_events(session)
        assert topics(events) == ["ChargingSession.StartedAtCharger"]
        assert events[0].id_token == TAG
        assert events[0].driver_id is None
        assert session.status is SessionStatus.STARTED
        assert session.origin is SessionOrigin.CHARGER
        assert session.meter_start_wh == 5_000

        rebuilt = given(ChargingSession, *events)
        assert rebuilt == session
        assert rebuilt.origin is SessionOrigin.CHARGER

        rebuilt.start("1234", 5_000, at(1), TARIFF, "Europe/Amsterdam", at(2))
        assert new_events(rebuilt) == []


class TestMeterValues:
    def test_readings_are_recorded_in_measurement_order(self) -> None:
        session = given(ChargingSession, *started())

        session.record_meter_values((reading(10, 101_500), reading(5, 100_700, power_w=7_400)), at(10))

        [recorded] = new_events(session)
        assert topics([recorded]) == ["ChargingSession.MeterValuesRecorded"]
        assert recorded.readings == (reading(5, 100_700, power_w=7_400), reading(10, 101_500))
        assert session.energy_wh == 1_500

    def test_readings_at_or_before_the_latest_are_dropped(self) -> None:
        session = given(ChargingSession, *charging())

        # A replay of the stored 16 min reading and an older one queued while offline.
        session.record_meter_values((reading(16, 102_000), reading(12, 101_200)), at(20))

        assert new_events(session) == []
        assert session.energy_wh == 2_000

    def test_only_the_new_part_of_a_batch_is_recorded(self) -> None:
        session = given(ChargingSession, *charging())

        session.record_meter_values((reading(12, 101_200), reading(20, 103_000)), at(20))

        [recorded] = new_events(session)
        assert recorded.readings == (reading(20, 103_000),)

    def test_readings_before_the_start_and_empty_readings_are_dropped(self) -> None:
        session = given(ChargingSession, *started())

        session.record_meter_values((reading(0.5, 99_000), reading(3)), at(3))

        assert new_events(session) == []

    def test_readings_before_start_and_after_stop_are_ignored(self) -> None:
        waiting = given(ChargingSession, *requested())
        waiting.record_meter_values((reading(1, 100_000),), at(1))
        assert new_events(waiting) == []

        done = given(ChargingSession, *stopped())
        done.record_meter_values((reading(70, 111_000),), at(70))
        assert new_events(done) == []


class TestStopping:
    def test_stop_records_the_meter_and_reason(self) -> None:
        session = given(ChargingSession, *charging())

        session.stop(110_000, at(61), StopReason.EV_DISCONNECTED, at(61.1))

        [stopped_event] = new_events(session)
        assert topics([stopped_event]) == ["ChargingSession.Stopped"]
        assert stopped_event.meter_stop_wh == 110_000
        assert stopped_event.reason is StopReason.EV_DISCONNECTED
        assert session.energy_wh == 10_000
        assert not session.is_active

    def test_a_second_stop_is_ignored(self) -> None:
        session = given(ChargingSession, *stopped())

        session.stop(120_000, at(70), StopReason.LOCAL, at(70))

        assert new_events(session) == []
        assert session.energy_wh == 10_000

    def test_a_stop_below_meter_start_counts_no_energy(self) -> None:
        session = given(ChargingSession, *started())

        session.stop(90_000, at(30), StopReason.OTHER, at(30))

        assert topics(new_events(session)) == ["ChargingSession.Stopped"]
        assert session.energy_wh == 0

    def test_charging_ends_when_energy_stops_increasing(self) -> None:
        session = given(ChargingSession, *started())
        session.record_meter_values((reading(30, 110_000), reading(45, 110_000)), at(45))
        session.stop(110_000, at(61), StopReason.EV_DISCONNECTED, at(61))

        assert session.charging_ended_at == at(30)


class TestPricing:
    def test_price_uses_the_snapshot_taken_at_start(self) -> None:
        """10 000 Wh at 0.30 EUR/kWh = 3.00 excl. VAT, 3.60 incl. 20% VAT."""
        session = given(ChargingSession, *stopped())

        session.price(at(62))

        [priced_event] = new_events(session)
        assert topics([priced_event]) == ["ChargingSession.Priced"]
        assert priced_event.breakdown.total_excl_vat == Decimal("3.00")
        assert priced_event.breakdown.total_incl_vat == Decimal("3.60")
        assert session.status is SessionStatus.PRICED

    def test_pricing_twice_records_once(self) -> None:
        session = given(ChargingSession, *priced())

        session.price(at(63))

        assert new_events(session) == []

    def test_a_running_session_cannot_be_priced(self) -> None:
        session = given(ChargingSession, *charging())

        with pytest.raises(InvalidState, match="only a stopped one is priced"):
            session.price(at(30))


class TestPayment:
    def test_payment_succeeded(self) -> None:
        session = given(ChargingSession, *priced())
        amount = Money(Decimal("3.60"), Currency.EUR)

        session.payment_succeeded("pi_123", amount, at(63))
        session.payment_succeeded("pi_123", amount, at(64))

        [paid] = new_events(session)
        assert topics([paid]) == ["ChargingSession.PaymentSucceeded"]
        assert paid.payment_intent_id == "pi_123"
        assert paid.amount == amount
        assert session.status is SessionStatus.PAID

    def test_a_second_different_payment_is_refused(self) -> None:
        session = given(ChargingSession, *priced())
        session.payment_succeeded("pi_123", Money(Decimal("3.60"), Currency.EUR), at(63))

        with pytest.raises(InvalidState, match="already paid by pi_123"):
            session.payment_succeeded("pi_456", Money(Decimal("3.60"), Currency.EUR), at(64))

    def test_payment_in_another_currency_is_refused(self) -> None:
        session = given(ChargingSession, *priced())

        with pytest.raises(InvalidValue, match="priced in EUR"):
            session.payment_succeeded("pi_123", Money(Decimal("3.60"), Currency.USD), at(63))

    def test_payment_failed_then_a_retry_succeeds(self) -> None:
        session = given(ChargingSession, *priced())

        session.payment_failed("card_declined", "Your card was declined.", at(63), "pi_1")
        session.payment_failed("card_declined", "Your card was declined.", at(64), "pi_1")
        assert status(session) is SessionStatus.PAYMENT_FAILED

        session.payment_succeeded("pi_2", Money(Decimal("3.60"), Currency.EUR), at(70))
        session.payment_failed("card_declined", "late webhook", at(71), "pi_1")

        events = new_events(session)
        assert topics(events) == [
            "ChargingSession.PaymentFailed",
            "ChargingSession.PaymentSucceeded",
        ]
        assert events[0].reason_code == "card_declined"
        assert status(session) is SessionStatus.PAID

    def test_payment_before_pricing_is_refused(self) -> None:
        session = given(ChargingSession, *stopped())

        with pytest.raises(InvalidState, match="must be priced first"):
            session.payment_failed("card_declined", "declined", at(62))


def test_rebuilding_from_events_reproduces_the_state() -> None:
    session = given(ChargingSession, *priced())
    session.payment_succeeded("pi_1", Money(Decimal("3.60"), Currency.EUR), at(63))
    events = [*priced(), *new_events(session)]

    assert given(ChargingSession, *events) == session
    assert events[-1].timestamp == at(63)
    assert events[1].timestamp - events[0].timestamp == timedelta(seconds=6)
