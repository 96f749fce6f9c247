"""A driver's cards: saved with Stripe (customer created on first use), remembered on the Driver aggregate.

Card data never reaches us: the app tokenizes the card with Stripe's publishable key and sends the
PaymentMethod id; we attach it to the driver's Stripe customer and keep only brand, last four digits and
expiry, which the driver sees in the app.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from csms.domain import Driver, PaymentMethod
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from write_api.access import NotFound
from write_api.billing.stripe_gateway import StripeGateway, StripeRejected

_RETRIES = 3


class PaymentsUnavailable(Exception):
    """Stripe is not configured in this process."""


class CardRefused(Exception):
    """Stripe refused the card (declined on attach, unknown, expired, someone else's); `status` says how."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


async def save_with_position(repository: Repository, aggregate: object) -> int:
    results = await repository.save(aggregate)
    return max((r.position for r in results), default=0)


class PaymentMethods:
    def __init__(
        self, repository: Repository, gateway: StripeGateway | None, clock: Callable[[], datetime]
    ) -> None:
        self._repository = repository
        self._gateway = gateway
        self._clock = clock

    def _stripe(self) -> StripeGateway:
        if self._gateway is None:
            raise PaymentsUnavailable("payments are not configured (STRIPE_API_KEY)")
        return self._gateway

    async def _driver(self, driver_id: UUID) -> Driver:
        try:
            return await self._repository.get(driver_id, Driver, refresh=True)
        except AggregateNotFoundError:
            raise NotFound(f"no driver {driver_id}") from None

    async def add(self, driver_id: UUID, payment_method_id: str) -> tuple[Driver, int]:
        """Save the card with Stripe and make it the default. Raises CardRefused, StripeUnavailable."""
        stripe = self._stripe()
        driver = await self._driver(driver_id)
        customer_id = driver.stripe_customer_id
        if customer_id is None:
            # The key is per driver: a retried or concurrent first card still makes one customer.
            customer_id = await stripe.create_customer(driver_id, driver.email)
        try:
            card = await stripe.card(payment_method_id)
        except StripeRejected as error:
            raise CardRefused(422, error.code, f"unknown payment method {payment_method_id!r}") from None
        if card.customer_id not in (None, customer_id):
            raise CardRefused(422, "payment_method_taken", "this payment method belongs to another customer")
        method = PaymentMethod(card.payment_method_id, card.brand, card.last4, card.exp_month, card.exp_year)
        if method.is_expired_at(self._clock()):
            raise CardRefused(422, "expired_card", f"the card ending {card.last4} has expired")
        if card.customer_id is None:
            try:
                await stripe.attach(payment_method_id, customer_id)
            except StripeRejected as error:
                status = 402 if error.http_status == 402 else 422
                raise CardRefused(status, error.code, error.message) from None
        for attempt in range(_RETRIES + 1):
            at = self._clock()
            driver = await self._driver(driver_id)
            driver.set_stripe_customer(customer_id, at)
            driver.add_payment_method(method, at, make_default=True)
            try:
                return driver, await save_with_position(self._repository, driver)
            except ConcurrencyError:
                if attempt == _RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def list(self, driver_id: UUID) -> Driver:
        return await self._driver(driver_id)

    async def remove(self, driver_id: UUID, payment_method_id: str) -> tuple[Driver, int]:
        """Detach the card at Stripe and forget it; another saved card becomes the default."""
        driver = await self._driver(driver_id)
        if payment_method_id not in {m.payment_method_id for m in driver.payment_methods}:
            raise NotFound(f"no payment method {payment_method_id}")
        # Already detached (or deleted) at Stripe: forgetting it is all that is left.
        with contextlib.suppress(StripeRejected):
            await self._stripe().detach(payment_method_id)
        for attempt in range(_RETRIES + 1):
            at = self._clock()
            driver = await self._driver(driver_id)
            driver.remove_payment_method(payment_method_id, at)
            if driver.default_payment_method is None and driver.payment_methods:
                driver.set_default_payment_method(driver.payment_methods[-1].payment_method_id, at)
            try:
                return driver, await save_with_position(self._repository, driver)
            except ConcurrencyError:
                if attempt == _RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def make_default(self, driver_id: UUID, payment_method_id: str) -> tuple[Driver, int]:
        for attempt in range(_RETRIES + 1):
            driver = await self._driver(driver_id)
            if payment_method_id not in {m.payment_method_id for m in driver.payment_methods}:
                raise NotFound(f"no payment method {payment_method_id}")
            driver.set_default_payment_method(payment_method_id, self._clock())
            try:
                return driver, await save_with_position(self._repository, driver)
            except ConcurrencyError:
                if attempt == _RETRIES:
                    raise
        raise AssertionError("unreachable")
