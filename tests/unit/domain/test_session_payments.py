"""ChargingSession payments: attempts recorded before the provider is called, refunds and disputes."""

from decimal import Decimal

import pytest

from csms.domain import ChargingSession, Currency, InvalidState, InvalidValue, Money, SessionStatus
from tests.unit.domain.support import SESSION_ID, at, given, new_events, topics
from tests.unit.domain.test_charging_session import priced

EUR = Currency.EUR


def eur(amount: str) -> Money:
    return Money(Decimal(amount), EUR)


def paid() -> ChargingSession:
    session = given(ChargingSession, *priced())
    attempt = session.begin_payment("pm_1", "cus_1", at(63))
    session.payment_succeeded("pi_1", attempt.amount, at(63))
    return session


class TestAttempts:
    def test_an_attempt_carries_a_key_derived_from_the_session_and_its_number(self) -> None:
        session = given(ChargingSession, *priced())

        attempt = session.begin_payment("pm_1", "cus_1", at(63))

        assert attempt.number == 1
        assert attempt.idempotency_key == f"csms-session-{SESSION_ID}-payment-1"
        assert attempt.amount == session.breakdown.total  # type: ignore[union-attr]
        assert topics(new_events(session)) == ["ChargingSession.PaymentAttempted"]

    def test_an_open_attempt_is_resumed_not_repeated(self) -> None:
        session = given(ChargingSession, *priced())
        first = session.begin_payment("pm_1", "cus_1", at(63))

        again = session.begin_payment("pm_2", "cus_1", at(64))

        assert again == first
        assert len(new_events(session)) == 1

    def test_a_failure_closes_the_attempt_and_the_next_one_gets_a_new_key(self) -> None:
        session = given(ChargingSession, *priced())
        session.begin_payment("pm_1", "cus_1", at(63))
        session.payment_failed("card_declined", "Your card was declined.", at(63), "pi_1")

        second = session.begin_payment("pm_2", "cus_1", at(70))
        session.payment_failed("card_declined", "Your card was declined.", at(70), "pi_1")

        assert second.number == 2
        assert second.idempotency_key.endswith("-payment-2")
        assert session.open_payment is None  # the identical failure still closes the second attempt
        assert session.status is SessionStatus.PAYMENT_FAILED

    def test_a_paid_session_takes_no_attempt(self) -> None:
        session = paid()

        with pytest.raises(InvalidState, match="nothing to pay"):
            session.begin_payment("pm_1", "cus_1", at(70))

    def test_rebuilt_from_its_events_a_session_knows_its_open_attempt(self) -> None:
        session = given(ChargingSession, *priced())
        session.begin_payment("pm_1", "cus_1", at(63))

        rebuilt = given(ChargingSession, *priced(), *new_events(session))

        assert rebuilt.open_payment == session.open_payment


class TestRefunds:
    def test_partial_then_remaining_refund(self) -> None:
        session = paid()
        total = session.amount_paid
        assert total is not None

        first = session.request_refund(eur("1.00"), "goodwill", at(70))
        session.record_refund("re_1", eur("1.00"), at(70), first.number)
        second = session.request_refund(None, "charger fault", at(71))
        session.record_refund("re_2", second.amount, at(71), second.number)
        session.record_refund("re_2", second.amount, at(72))  # the webhook, later

        assert second.amount == total - eur("1.00")
        assert session.amount_refunded == total
        assert session.open_refunds == {}
        assert topics(new_events(session))[-4:] == [
            "ChargingSession.RefundRequested",
            "ChargingSession.Refunded",
            "ChargingSession.RefundRequested",
            "ChargingSession.Refunded",
        ]

    def test_never_more_than_was_paid(self) -> None:
        session = paid()
        session.request_refund(eur("1.00"), "goodwill", at(70))

        with pytest.raises(InvalidValue, match="at most"):
            session.request_refund(session.amount_paid, "everything again", at(71))

    def test_an_unpaid_session_is_not_refunded(self) -> None:
        session = given(ChargingSession, *priced())

        with pytest.raises(InvalidState, match="only a paid session"):
            session.request_refund(None, "why", at(70))

    def test_a_webhook_first_then_our_own_answer_closes_the_request(self) -> None:
        session = paid()
        request = session.request_refund(eur("1.00"), "goodwill", at(70))
        session.record_refund("re_1", eur("1.00"), at(70))  # webhook before our call returned

        session.record_refund("re_1", eur("1.00"), at(71), request.number)

        assert session.open_refunds == {}
        assert session.amount_refunded == eur("1.00")


class TestDisputes:
    def test_opened_and_closed_once(self) -> None:
        session = paid()

        session.open_dispute("dp_1", eur("3.60"), "fraudulent", at(80))
        session.open_dispute("dp_1", eur("3.60"), "fraudulent", at(81))
        session.close_dispute("dp_1", "won", at(90))
        session.close_dispute("dp_1", "won", at(91))

        assert topics(new_events(session))[-2:] == [
            "ChargingSession.DisputeOpened",
            "ChargingSession.DisputeClosed",
        ]
        assert session.disputes == {"dp_1": "won"}

    def test_closing_an_unknown_dispute_is_refused(self) -> None:
        with pytest.raises(InvalidState, match="no dispute"):
            paid().close_dispute("dp_x", "lost", at(90))
