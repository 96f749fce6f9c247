"""What the write API logs at DEBUG while drivers register, log in, refresh, fail to log in, add a card and
Stripe calls back: never a password, token, key or secret; every line about a request carries its id."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp.test_utils import TestServer

from csms.settings import Settings
from csms.stripe_endpoint import StripeEndpoint
from csms.web.request_id import REQUEST_ID_HEADER
from tests.integration.payments.world import GOOD_CARD, tokenize
from tests.json_logs import json_logs
from write_api.billing.webhooks import sign
from write_api.http.runtime import write_api_app

_PASSWORD = "correct horse battery staple " + uuid.uuid4().hex[:8]
_WRONG_PASSWORD = "incorrect horse battery " + uuid.uuid4().hex[:8]


class _Client:
    """Sends every request with an id of its own, and remembers them."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.request_ids: list[str] = []

    async def request(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        request_id = f"test-{len(self.request_ids)}-{uuid.uuid4().hex[:8]}"
        self.request_ids.append(request_id)
        data = body if isinstance(body, bytes) else None
        async with self.http.request(
            method,
            self.base + path,
            json=None if data is not None else body,
            data=data,
            headers={REQUEST_ID_HEADER: request_id, **(headers or {})},
        ) as response:
            assert response.headers[REQUEST_ID_HEADER] == request_id
            document = await response.json(content_type=None) if response.content_length else None
            return response.status, document


async def test_no_secret_is_ever_logged_and_request_lines_carry_their_id(
    database_url: str, redis_url: str, redis_key_prefix: str, localstripe_url: str, tmp_path: Path
) -> None:
    stripe = StripeEndpoint(
        api_key=f"sk_test_{uuid.uuid4().hex}",
        api_base=localstripe_url,
        webhook_secret=f"whsec_{uuid.uuid4().hex}",
    )
    settings = Settings(data_dir=tmp_path, redis_key_prefix=redis_key_prefix)
    email = f"secret-{uuid.uuid4().hex[:8]}@example.com"
    with json_logs() as log:
        # The capture really is at DEBUG for the write API's own loggers (whatever else the run logs).
        assert logging.getLogger("write_api.auth").getEffectiveLevel() == logging.DEBUG
        async with write_api_app(settings, database_url, redis_url, stripe) as app:
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            try:
                async with aiohttp.ClientSession() as http:
                    client = _Client(http, f"http://127.0.0.1:{server.port}")
                    status, _ = await client.request(
                        "POST",
                        "/auth/register",
                        body={"email": email, "password": _PASSWORD, "displayName": "Dee"},
                    )
                    assert status == 201
                    status, first = await client.request(
                        "POST", "/auth/login", body={"email": email, "password": _PASSWORD}
                    )
                    assert status == 200
                    status, second = await client.request(
                        "POST", "/auth/refresh", body={"refreshToken": first["refreshToken"]}
                    )
                    assert status == 200
                    # A spent refresh token presented again: refused, its family revoked, and a warning.
                    status, _ = await client.request(
                        "POST", "/auth/refresh", body={"refreshToken": first["refreshToken"]}
                    )
                    assert status == 401
                    status, _ = await client.request(
                        "POST", "/auth/login", body={"email": email, "password": _WRONG_PASSWORD}
                    )
                    assert status == 401
                    bearer = {"Authorization": f"Bearer {second['accessToken']}"}
                    status, _ = await client.request("GET", "/me/payment-methods", headers=bearer)
                    assert status == 200
                    forged = second["accessToken"][:-4] + "AAAA"
                    status, _ = await client.request(
                        "GET", "/me/payment-methods", headers={"Authorization": f"Bearer {forged}"}
                    )
                    assert status == 401
                    method_id = await tokenize(http, localstripe_url, GOOD_CARD)
                    status, _ = await client.request(
                        "POST", "/me/payment-methods", body={"paymentMethodId": method_id}, headers=bearer
                    )
                    assert status == 201
                    event = orjson.dumps(
                        {"id": f"evt_{uuid.uuid4().hex}", "type": "customer.created", "data": {"object": {}}}
                    )
                    signature = sign(event, stripe.webhook_secret or "", int(time.time()))
                    status, _ = await client.request(
                        "POST", "/webhooks/stripe", body=event, headers={"Stripe-Signature": signature}
                    )
                    assert status == 200
                    status, _ = await client.request(
                        "POST", "/webhooks/stripe", body=event, headers={"Stripe-Signature": "t=1,v1=00"}
                    )
                    assert status == 400
            finally:
                await server.close()

    secrets = {
        "password": _PASSWORD,
        "wrong password": _WRONG_PASSWORD,
        "access token": first["accessToken"],
        "access token signature": first["accessToken"].rsplit(".", 1)[1],
        "refreshed access token": second["accessToken"],
        "refresh token": first["refreshToken"],
        "rotated refresh token": second["refreshToken"],
        "forged token": forged,
        "Stripe secret key": stripe.api_key,
        "webhook secret": stripe.webhook_secret,
    }
    leaked = [name for name, value in secrets.items() if value and value in log.text]
    assert leaked == []
    assert "Bearer " not in log.text

    lines = log.lines()
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert [line["correlation_id"] for line in access] == client.request_ids
    [reuse] = [line for line in lines if "presented again" in line["message"]]
    assert reuse["correlation_id"] == client.request_ids[3]
