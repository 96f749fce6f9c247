"""The whole flow over HTTP, as the README tells it: admin, company, operator, station, tariff, charger,
driver, card, then a session started, stopped and paid through the API on a simulated charger (both OCPP
versions), against localstripe.

Every response is checked against the OpenAPI document the write API serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema
import pytest

from csms.eventstore import EventStore, create_pool
from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet
from tests.e2e.processes import free_port, role_process
from tests.integration.payments.world import GOOD_CARD, tokenize

_PASSWORD = "correct horse battery staple"


class Api:
    """An HTTP client of the write API that checks every answer against its OpenAPI document."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base
        self.token: str | None = None
        self.spec: dict[str, Any] = {}

    async def load_spec(self) -> None:
        async with self.http.get(f"{self.base}/openapi.json") as response:
            assert response.status == 200
            self.spec = await response.json()

    async def call(
        self, method: str, path: str, template: str, body: dict[str, Any] | None = None, **headers: str
    ) -> tuple[int, dict[str, Any]]:
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.http.request(method, self.base + path, json=body, headers=headers) as response:
            document: dict[str, Any] = (
                await response.json(content_type=None) if response.status != 204 else {}
            )
            self._check(template, method.lower(), response.status, response.content_type, document)
            return response.status, document

    def _check(
        self, template: str, method: str, status: int, content_type: str, document: dict[str, Any]
    ) -> None:
        operation = self.spec["paths"].get(template, {}).get(method)
        if operation is None:  # the auth routes document themselves elsewhere
            return
        declared = operation["responses"].get(str(status))
        assert declared is not None, f"{method.upper()} {template} answered {status}, which is not documented"
        media = declared.get("content", {}).get(content_type)
        assert media is not None, (
            f"{method.upper()} {template} {status}: undocumented content type {content_type}"
        )
        schema = {**media["schema"], "components": self.spec["components"]}
        jsonschema.Draft202012Validator(schema).validate(document)


@contextlib.asynccontextmanager
async def _system(
    database_url: str, redis_url: str, prefix: str, data_dir: str, stripe_url: str
) -> AsyncIterator[tuple[str, str]]:
    ocpp_port, api_port = free_port(), free_port()
    async with role_process(
        "gateway",
        "write-api",
        "billing",
        STRIPE_API_KEY=LOCALSTRIPE_SECRET_KEY,
        CSMS_STRIPE_API_BASE=stripe_url,
        STRIPE_WEBHOOK_SECRET="whsec_e2e",
        CSMS_BILLING_PORT=str(free_port()),
        CSMS_DATABASE_URL=database_url,
        CSMS_REDIS_URL=redis_url,
        CSMS_REDIS_KEY_PREFIX=prefix,
        CSMS_DATA_DIR=data_dir,
        CSMS_OCPP_PORT=str(ocpp_port),
        CSMS_WRITE_API_PORT=str(api_port),
    ):
        yield f"http://127.0.0.1:{api_port}", f"ws://127.0.0.1:{ocpp_port}/ocpp"


async def _create_admin(database_url: str, email: str, data_dir: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms.cli", "admin", "create-admin", "--email", email, "--password-stdin",
        env={**os.environ, "CSMS_DATABASE_URL": database_url, "CSMS_DATA_DIR": data_dir},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(_PASSWORD.encode() + b"\n"), 60)
    assert process.returncode == 0, stderr.decode()


async def _login(api: Api, email: str) -> None:
    api.token = None
    status, tokens = await api.call(
        "POST", "/auth/login", "/auth/login", {"email": email, "password": _PASSWORD}
    )
    assert status == 200, tokens
    api.token = tokens["accessToken"]


async def _wait_for(store: EventStore, stream: uuid.UUID, topic: str) -> None:
    async with asyncio.timeout(20):
        async with await store.subscribe(f"test-{uuid.uuid4()}", start_after=0) as events:
            while not any(e.topic == topic for e in await store.read_stream(stream)):
                await events.next_batch()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_readme_flow_over_http(
    database_url: str,
    redis_url: str,
    redis_key_prefix: str,
    tmp_path: Any,
    version: str,
    localstripe_url: str,
) -> None:
    run = uuid.uuid4().hex[:8]
    admin_email, operator_email, driver_email = (
        f"{who}-{run}@example.com" for who in ("admin", "op", "driver")
    )
    data_dir = str(tmp_path)
    await _create_admin(database_url, admin_email, data_dir)
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    stop_fleet = asyncio.Event()
    fleet_task: asyncio.Task[Any] | None = None
    try:
        async with (
            _system(database_url, redis_url, redis_key_prefix, data_dir, localstripe_url) as (base, ocpp_url),
            aiohttp.ClientSession() as http,
        ):
            api = Api(http, base)
            await api.load_spec()

            # Admin: a company and its operator.
            await _login(api, admin_email)
            status, company = await api.call("POST", "/companies", "/companies", {"name": f"Co {run}"})
            assert status == 201
            company_id = company["companyId"]
            path = f"/companies/{company_id}/operators"
            status, _ = await api.call(
                "POST",
                path,
                "/companies/{company_id}/operators",
                {"email": operator_email, "password": _PASSWORD},
            )
            assert status == 201

            # Operator: station, tariff, charger.
            await _login(api, operator_email)
            status, station = await api.call(
                "POST",
                "/stations",
                "/stations",
                {
                    "name": "Harbour",
                    "address": {
                        "street": "Kade 1",
                        "city": "Rotterdam",
                        "postalCode": "3011 AA",
                        "country": "NLD",
                    },
                    "coordinates": {"latitude": "51.9225", "longitude": "4.4792"},
                    "timeZone": "Europe/Amsterdam",
                    "published": True,
                },
            )
            assert status == 201, station
            status, tariff = await api.call(
                "POST",
                "/tariffs",
                "/tariffs",
                {
                    "name": "Standard",
                    "currency": "EUR",
                    "vatPercent": "21",
                    # A start fee, so even these few seconds of charging cost something to pay.
                    "elements": [
                        {
                            "priceComponents": [
                                {"type": "ENERGY", "price": "0.40"},
                                {"type": "FLAT", "price": "0.50"},
                            ]
                        }
                    ],
                },
            )
            assert status == 201, tariff
            path = f"/stations/{station['stationId']}"
            status, _ = await api.call(
                "PATCH", path, "/stations/{station_id}", {"tariffId": tariff["tariffId"]}
            )
            assert status == 200
            charge_point_id = f"HTTP-{run}-{version.replace('.', '')}"
            status, charger = await api.call(
                "POST",
                "/chargers",
                "/chargers",
                {
                    "chargerId": charge_point_id,
                    "stationId": station["stationId"],
                    "evses": ["1:IEC_62196_T2:22"],
                },
            )
            assert status == 201, charger

            # The charger comes online.
            config = ChargerConfig(url=ocpp_url, version=version, connectors=1, meter_interval=0.3)  # type: ignore[arg-type]
            fleet = Fleet(
                [charge_point_id],
                config,
                passwords={charge_point_id: charger["password"]},
                charging_share=0,
            )
            fleet_task = asyncio.create_task(fleet.run(stop=stop_fleet))

            # A driver registers, logs in, starts and stops.
            api.token = None
            status, registered = await api.call(
                "POST",
                "/auth/register",
                "/auth/register",
                {"email": driver_email, "password": _PASSWORD, "displayName": "Dee"},
            )
            assert status == 201, registered
            await _login(api, driver_email)

            # No card yet: a clear 402, not a session.
            status, refused = await api.call(
                "POST", "/sessions/start", "/sessions/start", {"chargerId": charge_point_id}
            )
            assert status == 402, refused
            assert refused["type"].endswith("payment-method-required")

            # The app tokenizes the card with the publishable key and sends us only its id.
            method_id = await tokenize(http, localstripe_url, GOOD_CARD)
            status, methods = await api.call(
                "POST", "/me/payment-methods", "/me/payment-methods", {"paymentMethodId": method_id}
            )
            assert status == 201, methods
            assert methods["defaultPaymentMethodId"] == method_id
            assert methods["paymentMethods"][0]["last4"] == "4242"

            async with asyncio.timeout(20):
                while True:  # until the charger has booted and reported its connector
                    key = str(uuid.uuid4())
                    status, started = await api.call(
                        "POST",
                        "/sessions/start",
                        "/sessions/start",
                        {"chargerId": charge_point_id},
                        **{"Idempotency-Key": key},
                    )
                    if status == 201:
                        break
                    assert status in (409, 503), started
                    await asyncio.sleep(0.2)
            assert started["status"] in ("ACCEPTED", "STARTED")  # the charger may report the start first
            session_id = uuid.UUID(started["sessionId"])

            # The same request again with the same key: the first answer, not a second session.
            status, replayed = await api.call(
                "POST",
                "/sessions/start",
                "/sessions/start",
                {"chargerId": charge_point_id},
                **{"Idempotency-Key": key},
            )
            assert (status, replayed) == (201, started)
            status, mismatch = await api.call(
                "POST",
                "/sessions/start",
                "/sessions/start",
                {"chargerId": "OTHER"},
                **{"Idempotency-Key": key},
            )
            assert status == 422, mismatch

            await _wait_for(store, session_id, "ChargingSession.Started")
            await _wait_for(store, session_id, "ChargingSession.MeterValuesRecorded")
            status, stopped = await api.call(
                "POST", "/sessions/stop", "/sessions/stop", {"sessionId": str(session_id)}
            )
            assert status == 200, stopped
            await _wait_for(store, session_id, "ChargingSession.Priced")
            # Billing charges the card for the priced total.
            await _wait_for(store, session_id, "ChargingSession.PaymentSucceeded")
            [paid] = [e for e in await store.read_stream(session_id) if e.topic.endswith("PaymentSucceeded")]
            [priced] = [e for e in await store.read_stream(session_id) if e.topic.endswith("Priced")]
            assert paid.data["amount"] == {
                "amount": priced.data["breakdown"]["total_incl_vat"],
                "currency": "EUR",
            }

            # The operator commands the charger through the API; the answer is the charger's.
            await _login(api, operator_email)
            path = f"/chargers/{charge_point_id}/commands/trigger"
            status, triggered = await api.call(
                "POST", path, "/chargers/{charger_id}/commands/{command}", {"message": "StatusNotification"}
            )
            assert (status, triggered["status"]) == (200, "accepted"), triggered

            # Another driver cannot see it: 404, not 403.
            other = f"other-{run}@example.com"
            api.token = None
            await api.call(
                "POST",
                "/auth/register",
                "/auth/register",
                {"email": other, "password": _PASSWORD, "displayName": "O"},
            )
            await _login(api, other)
            status, hidden = await api.call(
                "POST", "/sessions/stop", "/sessions/stop", {"sessionId": str(session_id)}
            )
            assert status == 404, hidden
            api.token = None
            status, _ = await api.call(
                "POST", "/sessions/stop", "/sessions/stop", {"sessionId": str(session_id)}
            )
            assert status == 401
    finally:
        stop_fleet.set()
        if fleet_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(fleet_task, 10)
        await store.close()
        await pool.close()
