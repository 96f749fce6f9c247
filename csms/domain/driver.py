"""The Driver aggregate: a person who charges, with their id tokens and payment profile."""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Self
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from csms.domain.errors import (
    IdTokenBlocked,
    InvalidState,
    InvalidValue,
    PaymentMethodRequired,
    UnknownIdToken,
)
from csms.domain.id_tokens import IdToken, token_key
from csms.domain.validation import (
    require_aware,
    require_instance,
    require_int,
    require_optional_text,
    require_text,
)

DISPLAY_NAME_MAX_LENGTH = 100
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_LAST4 = re.compile(r"[0-9]{4}")


def require_email(value: str) -> str:
    """Return the address stripped, if it looks like one (delivery proves the rest)."""
    email = require_text(value, "email", max_length=254)
    if not _EMAIL.fullmatch(email):
        raise InvalidValue(f"not an email address: {email!r}")
    return email


@dataclass(frozen=True)
class PaymentMethod:
    """A card saved with the payment provider; we only keep its id and what the driver sees."""

    payment_method_id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    def __post_init__(self) -> None:
        require_text(self.payment_method_id, "payment_method_id", max_length=255)
        require_text(self.brand, "brand", max_length=50)
        if not isinstance(self.last4, str) or not _LAST4.fullmatch(self.last4):
            raise InvalidValue(f"last4 must be four digits, got {self.last4!r}")
        require_int(self.exp_month, "exp_month", minimum=1, maximum=12)
        require_int(self.exp_year, "exp_year", minimum=2000, maximum=9999)

    def is_expired_at(self, at: datetime) -> bool:
        """A card is valid through the last day of its expiry month."""
        return (at.year, at.month) > (self.exp_year, self.exp_month)


@dataclass(frozen=True)
class RegisteredIdToken:
    """An id token as the driver holds it: blocked tokens are kept, but refused."""

    token: IdToken
    blocked: bool = False


class Driver(Aggregate):
    """A driver: profile, id tokens (RFID cards, app token) and the payment profile.

    Uniqueness of a token across drivers is not this aggregate's to guarantee; the write side
    checks it before `add_id_token`.
    """

    @classmethod
    def register(cls, id: UUID, email: str, display_name: str, at: datetime) -> Self:
        return cls(
            id=id,
            email=require_email(email),
            display_name=require_text(display_name, "display_name", max_length=DISPLAY_NAME_MAX_LENGTH),
            timestamp=require_aware(at, "at"),
        )

    @event("Registered")
    def __init__(self, id: UUID, email: str, display_name: str, timestamp: datetime) -> None:
        self.email = email
        self.display_name = display_name
        self._id_tokens: dict[str, RegisteredIdToken] = {}
        self.stripe_customer_id: str | None = None
        self._payment_methods: dict[str, PaymentMethod] = {}
        self.default_payment_method_id: str | None = None

    # Profile

    def update_profile(
        self, at: datetime, *, email: str | None = None, display_name: str | None = None
    ) -> None:
        """Change the email and/or display name; only changed fields go in the event."""
        new_email = None if email is None else require_email(email)
        new_name = require_optional_text(display_name, "display_name", max_length=DISPLAY_NAME_MAX_LENGTH)
        new_email = None if new_email == self.email else new_email
        new_name = None if new_name == self.display_name else new_name
        if new_email is not None or new_name is not None:
            self._profile_updated(email=new_email, display_name=new_name, timestamp=require_aware(at, "at"))

    # Id tokens

    @property
    def id_tokens(self) -> tuple[RegisteredIdToken, ...]:
        return tuple(self._id_tokens.values())

    def id_token(self, value: str) -> RegisteredIdToken | None:
        """The registered token with this value, compared as OCPP does: case-insensitively."""
        return self._id_tokens.get(token_key(value))

    def ensure_id_token_usable(self, value: str) -> IdToken:
        """Return the token if it may start a session; raise if unknown or blocked."""
        registered = self.id_token(value)
        if registered is None:
            raise UnknownIdToken(f"id token {value!r} is not registered to this driver")
        if registered.blocked:
            raise IdTokenBlocked(f"id token {value!r} is blocked")
        return registered.token

    def add_id_token(self, token: IdToken, at: datetime) -> None:
        require_instance(token, IdToken, "token")
        registered = self._id_tokens.get(token.key)
        if registered is not None:
            if registered.token == token:
                return
            raise InvalidValue(f"id token {token.value!r} is already registered")
        self._id_token_added(token=token, timestamp=require_aware(at, "at"))

    def block_id_token(self, value: str, reason: str, at: datetime) -> None:
        registered = self._require_token(value)
        reason = require_text(reason, "reason", max_length=500)
        if not registered.blocked:
            self._id_token_blocked(token=registered.token, reason=reason, timestamp=require_aware(at, "at"))

    def unblock_id_token(self, value: str, at: datetime) -> None:
        registered = self._require_token(value)
        if registered.blocked:
            self._id_token_unblocked(token=registered.token, timestamp=require_aware(at, "at"))

    def remove_id_token(self, value: str, at: datetime) -> None:
        registered = self.id_token(value)
        if registered is not None:
            self._id_token_removed(token=registered.token, timestamp=require_aware(at, "at"))

    def _require_token(self, value: str) -> RegisteredIdToken:
        registered = self.id_token(value)
        if registered is None:
            raise UnknownIdToken(f"id token {value!r} is not registered to this driver")
        return registered

    # Payment profile

    @property
    def payment_methods(self) -> tuple[PaymentMethod, ...]:
        return tuple(self._payment_methods.values())

    @property
    def default_payment_method(self) -> PaymentMethod | None:
        if self.default_payment_method_id is None:
            return None
        return self._payment_methods.get(self.default_payment_method_id)

    def set_stripe_customer(self, customer_id: str, at: datetime) -> None:
        """Link the payment provider's customer; set once (repeating the same id is a no-op)."""
        customer_id = require_text(customer_id, "customer_id", max_length=255)
        if self.stripe_customer_id == customer_id:
            return
        if self.stripe_customer_id is not None:
            raise InvalidState(f"driver already has payment customer {self.stripe_customer_id}")
        self._stripe_customer_set(customer_id=customer_id, timestamp=require_aware(at, "at"))

    def add_payment_method(self, method: PaymentMethod, at: datetime, *, make_default: bool = False) -> None:
        """Save a card; the first card (or `make_default`) becomes the default."""
        require_instance(method, PaymentMethod, "method")
        require_aware(at, "at")
        if self.stripe_customer_id is None:
            raise InvalidState("a payment customer must exist before adding payment methods")
        existing = self._payment_methods.get(method.payment_method_id)
        if existing is None:
            self._payment_method_added(method=method, timestamp=at)
        elif existing != method:
            raise InvalidValue(
                f"payment method {method.payment_method_id} is already saved with other details"
            )
        if make_default or self.default_payment_method_id is None:
            self.set_default_payment_method(method.payment_method_id, at)

    def remove_payment_method(self, payment_method_id: str, at: datetime) -> None:
        """Forget a card; removing the default leaves the driver without one."""
        if payment_method_id in self._payment_methods:
            self._payment_method_removed(
                payment_method_id=payment_method_id, timestamp=require_aware(at, "at")
            )

    def set_default_payment_method(self, payment_method_id: str, at: datetime) -> None:
        if payment_method_id not in self._payment_methods:
            raise InvalidValue(f"unknown payment method {payment_method_id!r}")
        if payment_method_id != self.default_payment_method_id:
            self._default_payment_method_set(
                payment_method_id=payment_method_id, timestamp=require_aware(at, "at")
            )

    def ensure_may_charge(self, require_payment_method: bool, at: datetime | None = None) -> None:
        """Raise `PaymentMethodRequired` if payment is required and no usable card is on file.

        Usable means: a payment customer exists and the default card is saved and, when `at`
        is given, not expired at that time.
        """
        if not require_payment_method:
            return
        card = self.default_payment_method
        if self.stripe_customer_id is None or card is None:
            raise PaymentMethodRequired("add a payment method before charging")
        if at is not None and card.is_expired_at(require_aware(at, "at")):
            raise PaymentMethodRequired(
                f"the default card ending {card.last4} expired {card.exp_month:02d}/{card.exp_year}"
            )

    # Events

    @event("ProfileUpdated")
    def _profile_updated(self, email: str | None, display_name: str | None, timestamp: datetime) -> None:
        if email is not None:
            self.email = email
        if display_name is not None:
            self.display_name = display_name

    @event("IdTokenAdded")
    def _id_token_added(self, token: IdToken, timestamp: datetime) -> None:
        self._id_tokens[token.key] = RegisteredIdToken(token=token)

    @event("IdTokenBlocked")
    def _id_token_blocked(self, token: IdToken, reason: str, timestamp: datetime) -> None:
        self._id_tokens[token.key] = RegisteredIdToken(token=token, blocked=True)

    @event("IdTokenUnblocked")
    def _id_token_unblocked(self, token: IdToken, timestamp: datetime) -> None:
        self._id_tokens[token.key] = RegisteredIdToken(token=token)

    @event("IdTokenRemoved")
    def _id_token_removed(self, token: IdToken, timestamp: datetime) -> None:
        self._id_tokens.pop(token.key, None)

    @event("StripeCustomerSet")
    def _stripe_customer_set(self, customer_id: str, timestamp: datetime) -> None:
        self.stripe_customer_id = customer_id

    @event("PaymentMethodAdded")
    def _payment_method_added(self, method: PaymentMethod, timestamp: datetime) -> None:
        self._payment_methods[method.payment_method_id] = method

    @event("PaymentMethodRemoved")
    def _payment_method_removed(self, payment_method_id: str, timestamp: datetime) -> None:
        self._payment_methods.pop(payment_method_id, None)
        if self.default_payment_method_id == payment_method_id:
            self.default_payment_method_id = None

    @event("DefaultPaymentMethodSet")
    def _default_payment_method_set(self, payment_method_id: str, timestamp: datetime) -> None:
        self.default_payment_method_id = payment_method_id
