"""localstripe as `csms.localstripe` runs it: lists read an index by object type instead of the whole store,
and answer as localstripe's own scan did (a charge's refunds, objects deleted or flushed, a restart from the
store file)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from csms.localstripe import LOCALSTRIPE_SECRET_KEY, free_loopback_port, running_localstripe

_CARD = {
    "type": "card",
    "card[number]": "4242424242424242",
    "card[exp_month]": "12",
    "card[exp_year]": "2040",
    "card[cvc]": "123",
}


class _Stripe:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http, self._url = http, url

    async def call(self, method: str, path: str, data: dict[str, str] | None = None) -> Any:
        async with self._http.request(method, self._url + path, data=data) as answer:
            body = await answer.json() if answer.content_type == "application/json" else None
            assert answer.status == 200, body
            return body

    async def paid_charge(self, customer: str, payment_method: str, amount: int) -> str:
        intent = await self.call(
            "POST",
            "/v1/payment_intents",
            {
                "amount": str(amount),
                "currency": "eur",
                "customer": customer,
                "payment_method": payment_method,
                "confirm": "true",
                "off_session": "true",
            },
        )
        assert intent["status"] == "succeeded"
        charge = intent["latest_charge"]  # localstripe expands it
        return str(charge["id"] if isinstance(charge, dict) else charge)

    async def ids(self, path: str, query: str = "") -> list[str]:
        return [item["id"] for item in (await self.call("GET", f"{path}?limit=100{query}"))["data"]]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {LOCALSTRIPE_SECRET_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        yield session


async def test_a_charge_lists_its_own_refunds_only(localstripe_url: str, http: aiohttp.ClientSession) -> None:
    stripe = _Stripe(http, localstripe_url)
    customer = (await stripe.call("POST", "/v1/customers", {"email": "refunds@example.com"}))["id"]
    card = (await stripe.call("POST", "/v1/payment_methods", _CARD))["id"]
    await stripe.call("POST", f"/v1/payment_methods/{card}/attach", {"customer": customer})
    refunded = await stripe.paid_charge(customer, card, 1500)
    kept = await stripe.paid_charge(customer, card, 2500)

    refund = await stripe.call("POST", "/v1/refunds", {"charge": refunded, "amount": "400"})

    assert await stripe.ids("/v1/refunds", f"&charge={refunded}") == [refund["id"]]
    assert await stripe.ids("/v1/refunds", f"&charge={kept}") == []
    charge = await stripe.call("GET", f"/v1/charges/{refunded}")
    assert (charge["amount_refunded"], charge["refunded"]) == (400, False)
    assert (await stripe.call("GET", f"/v1/charges/{kept}"))["amount_refunded"] == 0


async def test_a_list_forgets_deleted_objects_and_a_flush_forgets_all(http: aiohttp.ClientSession) -> None:
    with running_localstripe(free_loopback_port()) as url:
        stripe = _Stripe(http, url)
        created = [
            (await stripe.call("POST", "/v1/customers", {"email": f"{n}@example.com"}))["id"] for n in "abc"
        ]
        await stripe.call("DELETE", f"/v1/customers/{created[1]}")

        assert sorted(await stripe.ids("/v1/customers")) == sorted([created[0], created[2]])

        await stripe.call("DELETE", "/_config/data")
        assert await stripe.ids("/v1/customers") == []
        again = (await stripe.call("POST", "/v1/customers", {"email": "again@example.com"}))["id"]
        assert await stripe.ids("/v1/customers") == [again]


async def test_a_restart_lists_what_the_store_file_kept(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    store = tmp_path / "localstripe" / "store.pickle"
    with running_localstripe(free_loopback_port(), store) as url:
        kept = (await _Stripe(http, url).call("POST", "/v1/customers", {"email": "kept@example.com"}))["id"]

    with running_localstripe(free_loopback_port(), store) as url:
        stripe = _Stripe(http, url)
        assert await stripe.ids("/v1/customers") == [kept]
        added = (await stripe.call("POST", "/v1/customers", {"email": "added@example.com"}))["id"]
        assert sorted(await stripe.ids("/v1/customers")) == sorted([kept, added])
