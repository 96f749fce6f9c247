"""Driver: profile, id tokens and payment profile."""

from typing import Any

import pytest

from csms.domain import (
    Driver,
    IdToken,
    IdTokenBlocked,
    IdTokenType,
    InvalidState,
    InvalidValue,
    PaymentMethod,
    PaymentMethodRequired,
    UnknownIdToken,
)
from tests.unit.domain.support import DRIVER_ID, at, given, history, new_events, topics

CARD = PaymentMethod("pm_card_visa", "visa", "4242", exp_month=12, exp_year=2030)
OTHER_CARD = PaymentMethod("pm_card_mc", "mastercard", "4444", exp_month=1, exp_year=2024)
TAG = IdToken("04A2B3C4D5E6F7", IdTokenType.ISO14443)


def registered() -> list[Any]:
    return history(Driver.register(DRIVER_ID, "ada@example.org", "Ada", at()))


def with_tag() -> list[Any]:
    driver = given(Driver, *registered())
    driver.add_id_token(TAG, at(1))
    return registered() + new_events(driver)


def with_card() -> list[Any]:
    driver = given(Driver, *registered())
    driver.set_stripe_customer("cus_123", at(1))
    driver.add_payment_method(CARD, at(2))
    return registered() + new_events(driver)


class TestProfile:
    def test_register(self) -> None:
        driver = Driver.register(DRIVER_ID, " ada@example.org ", "Ada", at())

        [registered_event] = new_events(driver)
        assert topics([registered_event]) == ["Driver.Registered"]
        assert registered_event.email == "ada@example.org"

    def test_register_refuses_a_malformed_email(self) -> None:
        with pytest.raises(InvalidValue, match="not an email address"):
            Driver.register(DRIVER_ID, "ada.example.org", "Ada", at())

    def test_update_profile_records_only_changes(self) -> None:
        driver = given(Driver, *registered())

        driver.update_profile(at(1), email="ada@example.org", display_name="Ada L.")

        [updated] = new_events(driver)
        assert topics([updated]) == ["Driver.ProfileUpdated"]
        assert updated.email is None
        assert updated.display_name == "Ada L."

        driver.update_profile(at(2), display_name="Ada L.")
        assert new_events(driver) == []


class TestIdTokens:
    def test_add_then_look_up_case_insensitively(self) -> None:
        driver = given(Driver, *registered())

        driver.add_id_token(TAG, at(1))

        [added] = new_events(driver)
        assert topics([added]) == ["Driver.IdTokenAdded"]
        assert added.token == TAG
        assert driver.ensure_id_token_usable("04a2b3c4d5e6f7") == TAG

    def test_adding_the_same_token_again_changes_nothing(self) -> None:
        driver = given(Driver, *with_tag())

        driver.add_id_token(TAG, at(2))

        assert new_events(driver) == []

    def test_the_same_value_with_another_type_is_refused(self) -> None:
        driver = given(Driver, *with_tag())

        with pytest.raises(InvalidValue, match="already registered"):
            driver.add_id_token(IdToken(TAG.value, IdTokenType.RFID), at(2))

    def test_a_blocked_token_is_refused_until_unblocked(self) -> None:
        driver = given(Driver, *with_tag())

        driver.block_id_token(TAG.value, "reported lost", at(2))
        driver.block_id_token(TAG.value, "reported lost", at(3))

        [blocked] = new_events(driver)
        assert topics([blocked]) == ["Driver.IdTokenBlocked"]
        assert blocked.reason == "reported lost"
        with pytest.raises(IdTokenBlocked):
            driver.ensure_id_token_usable(TAG.value)

        driver.unblock_id_token(TAG.value, at(4))

        assert topics(new_events(driver)) == ["Driver.IdTokenUnblocked"]
        driver.ensure_id_token_usable(TAG.value)

    def test_removed_and_unknown_tokens_are_refused(self) -> None:
        driver = given(Driver, *with_tag())

        driver.remove_id_token(TAG.value, at(2))
        driver.remove_id_token(TAG.value, at(3))

        assert topics(new_events(driver)) == ["Driver.IdTokenRemoved"]
        with pytest.raises(UnknownIdToken):
            driver.ensure_id_token_usable(TAG.value)
        with pytest.raises(UnknownIdToken):
            driver.block_id_token("NOPE", "lost", at(4))


class TestPaymentProfile:
    def test_stripe_customer_is_set_once(self) -> None:
        driver = given(Driver, *registered())

        driver.set_stripe_customer("cus_123", at(1))
        driver.set_stripe_customer("cus_123", at(2))

        [customer_set] = new_events(driver)
        assert topics([customer_set]) == ["Driver.StripeCustomerSet"]
        with pytest.raises(InvalidState, match="already has payment customer cus_123"):
            driver.set_stripe_customer("cus_456", at(3))

    def test_the_first_card_becomes_the_default(self) -> None:
        driver = given(Driver, *registered())
        driver.set_stripe_customer("cus_123", at(1))
        new_events(driver)

        driver.add_payment_method(CARD, at(2))

        events = new_events(driver)
        assert topics(events) == ["Driver.PaymentMethodAdded", "Driver.DefaultPaymentMethodSet"]
        assert events[0].method == CARD
        assert events[1].payment_method_id == "pm_card_visa"
        assert driver.default_payment_method == CARD

    def test_a_card_needs_a_customer_first(self) -> None:
        driver = given(Driver, *registered())

        with pytest.raises(InvalidState, match="payment customer must exist"):
            driver.add_payment_method(CARD, at(1))

    def test_later_cards_do_not_change_the_default_unless_asked(self) -> None:
        driver = given(Driver, *with_card())

        driver.add_payment_method(OTHER_CARD, at(3))
        assert topics(new_events(driver)) == ["Driver.PaymentMethodAdded"]

        driver.set_default_payment_method("pm_card_mc", at(4))
        assert topics(new_events(driver)) == ["Driver.DefaultPaymentMethodSet"]

        with pytest.raises(InvalidValue, match="unknown payment method"):
            driver.set_default_payment_method("pm_missing", at(5))

    def test_removing_the_default_card_leaves_none(self) -> None:
        driver = given(Driver, *with_card())

        driver.remove_payment_method("pm_card_visa", at(3))
        driver.remove_payment_method("pm_card_visa", at(4))

        assert topics(new_events(driver)) == ["Driver.PaymentMethodRemoved"]
        assert driver.default_payment_method is None

    def test_ensure_may_charge(self) -> None:
        without = given(Driver, *registered())
        without.ensure_may_charge(require_payment_method=False)
        with pytest.raises(PaymentMethodRequired, match="add a payment method"):
            without.ensure_may_charge(require_payment_method=True)

        with_default = given(Driver, *with_card())
        with_default.ensure_may_charge(require_payment_method=True, at=at())

    def test_an_expired_default_card_is_not_usable(self) -> None:
        driver = given(Driver, *with_card())
        driver.add_payment_method(OTHER_CARD, at(3), make_default=True)

        # Valid through January 2024, T0 is 15 January 2024.
        driver.ensure_may_charge(require_payment_method=True, at=at())
        with pytest.raises(PaymentMethodRequired, match="ending 4444 expired 01/2024"):
            driver.ensure_may_charge(require_payment_method=True, at=at().replace(month=2, day=1))

    def test_card_details_are_validated(self) -> None:
        with pytest.raises(InvalidValue, match="last4"):
            PaymentMethod("pm_x", "visa", "42", exp_month=1, exp_year=2030)
        with pytest.raises(InvalidValue, match="exp_month"):
            PaymentMethod("pm_x", "visa", "4242", exp_month=13, exp_year=2030)


def test_rebuilding_from_events_reproduces_the_state() -> None:
    driver = Driver.register(DRIVER_ID, "ada@example.org", "Ada", at())
    driver.add_id_token(TAG, at(1))
    driver.block_id_token(TAG.value, "lost", at(2))
    driver.set_stripe_customer("cus_123", at(3))
    driver.add_payment_method(CARD, at(4))
    driver.add_payment_method(OTHER_CARD, at(5), make_default=True)
    driver.remove_payment_method(CARD.payment_method_id, at(6))

    assert given(Driver, *history(driver)) == driver
