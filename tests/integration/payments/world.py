"""Drivers with cards in localstripe and priced sessions in the event store, built directly for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aiohttp

from csms.domain import ChargingSession, Driver, IdToken, IdTokenType, PaymentMethod, StopReason
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository
from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from tests.unit.domain.support import energy_snapshot

TARIFF = energy_snapshot("0.40", "21")
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # attaches, then every charge is declined
AUTHENTICATION_CARD = "4000002500003155"  # the bank asks the cardholder to authenticate


async def stripe_post(
    http: aiohttp.ClientSession, base: str, path: str, data: dict[str, str]
) -> dict[str, object]:
    async with http.post(
        base + path, data=data, headers={"Authorization": f"Bearer {LOCALSTRIPE_SECRET_KEY}"}
    ) as response:
        assert response.status == 200, await response.text()
        body: dict[str, object] = await response.json()
        return body


async def tokenize(http: aiohttp.ClientSession, base: str, number: str) -> str:
    """A PaymentMethod id, created with the publishable key as a client would."""
    async with http.post(
        base + "/v1/payment_methods",
        data={"type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034",
              "card[cvc]": "123"},
        headers={"Authorization": "Bearer pk_test_localstripe"},
    ) as response:  # fmt: skip
        assert response.status == 200, await response.text()
        return str((await response.json())["id"])


async def driver_with_card(
    repository: Repository, http: aiohttp.ClientSession, base: str, number: str
) -> uuid.UUID:
    """A driver whose Stripe customer holds the card (as POST /me/payment-methods leaves them)."""
    now = datetime.now(UTC)
    driver = Driver.register(uuid.uuid4(), f"d-{uuid.uuid4().hex[:8]}@example.com", "Dee", now)
    customer = await stripe_post(http, base, "/v1/customers", {"email": driver.email})
    method_id = await tokenize(http, base, number)
    await stripe_post(
        http, base, f"/v1/payment_methods/{method_id}/attach", {"customer": str(customer["id"])}
    )
    driver.set_stripe_customer(str(customer["id"]), now)
    driver.add_payment_method(PaymentMethod(method_id, "visa", number[-4:], 12, 2034), now)
    await repository.save(driver)
    return driver.id


def priced_session(driver_id: uuid.UUID | None, energy_wh: int = 10_000) -> ChargingSession:
    start = datetime.now(UTC) - timedelta(hours=1)
    session = ChargingSession.start_at_charger(
        id=uuid.uuid4(),
        driver_id=driver_id,
        company_id=uuid.uuid4(),
        station_id=uuid.uuid4(),
        charger_id=uuid.uuid4(),
        evse_id=1,
        connector_id=1,
        id_token=IdToken(uuid.uuid4().hex[:20].upper(), IdTokenType.CENTRAL),
        transaction_id=uuid.uuid4().hex[:20],
        meter_start_wh=1000,
        started_at=start,
        tariff=TARIFF,
        time_zone="Europe/Amsterdam",
        at=start,
    )
    session.stop(
        1000 + energy_wh, start + timedelta(minutes=30), StopReason.REMOTE, start + timedelta(minutes=30)
    )
    session.price(start + timedelta(minutes=31))
    return session


def repository_for(store: EventStore) -> Repository:
    return Repository(store, EventCodec(EVENT_TYPES))
