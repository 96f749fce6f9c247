"""The read side through the whole system: gateway, write API, projector and read API as real processes.

A station published through the write API shows up in the nearby search; a session started on a simulated
charger is live on the read API (server-sent events until it is priced), then in the driver's history, on a
receipt, and in the operator's session list and daily report; another driver sees none of it. Reads pass the
write API's `position` as `minPosition`, so each one reflects the write before it without polling. Every
answer is checked against the read API's OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from csms.localstripe import LOCALSTRIPE_SECRET_KEY
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet
from tests.e2e.processes import free_port, role_process
from tests.e2e.test_http_flow import _PASSWORD, Api, _create_admin, _login
from tests.integration.payments.world import GOOD_CARD, tokenize


@contextlib.asynccontextmanager
async def _whole_system(
    database_url: str, redis_url: str, prefix: str, data_dir: str, stripe_url: str
) -> AsyncIterator[tuple[str, str, str, str]]:
    ocpp_port, write_port, read_port, projector_port = free_port(), free_port(), free_port(), free_port()
    environment = {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": prefix,
        "CSMS_DATA_DIR": data_dir,
        "CSMS_OCPP_PORT": str(ocpp_port),
        "CSMS_WRITE_API_PORT": str(write_port),
        "CSMS_READ_API_PORT": str(read_port),
        "CSMS_PROJECTOR_PORT": str(projector_port),
        "STRIPE_API_KEY": LOCALSTRIPE_SECRET_KEY,
        "CSMS_STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRET": "whsec_read_flow",
        "CSMS_BILLING_PORT": str(free_port()),
    }
    async with (
        role_process("gateway", "write-api", "billing", **environment),
        role_process("projector", "read-api", **environment),
    ):
        yield (
            f"http://127.0.0.1:{write_port}",
            f"http://127.0.0.1:{read_port}",
            f"ws://127.0.0.1:{ocpp_port}/ocpp",
            f"http://127.0.0.1:{projector_port}",
        )


async def _server_sent_events(
    http: aiohttp.ClientSession, url: str, token: str, last_event_id: int | None = None
) -> AsyncIterator[tuple[int, dict[str, Any]]]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        event_id, data = None, None
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line[4:])
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
            elif not line and event_id is not None and data is not None:
                yield event_id, data
                event_id, data = None, None


async def test_a_charge_seen_from_the_read_side(
    database_url: str, redis_url: str, redis_key_prefix: str, localstripe_url: str, tmp_path: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    admin_email, operator_email, driver_email = (f"{who}-{run}@example.com" for who in ("ra", "ro", "rd"))
    data_dir = str(tmp_path)
    await _create_admin(database_url, admin_email, data_dir)
    stop_fleet = asyncio.Event()
    fleet_task: asyncio.Task[Any] | None = None
    try:
        async with (
            _whole_system(database_url, redis_url, redis_key_prefix, data_dir, localstripe_url) as (
                write_base,
                read_base,
                ocpp,
                projector,
            ),
            aiohttp.ClientSession() as http,
        ):
            writes, reads = Api(http, write_base), Api(http, read_base)
            await writes.load_spec()
            await reads.load_spec()

            # Set-up through the write API: company, operator, a published station with a tariff, a charger.
            await _login(writes, admin_email)
            _, company = await writes.call("POST", "/companies", "/companies", {"name": f"Read {run}"})
            await writes.call(
                "POST",
                f"/companies/{company['companyId']}/operators",
                "/companies/{company_id}/operators",
                {"email": operator_email, "password": _PASSWORD},
            )
            await _login(writes, operator_email)
            # A spot in the North Sea nobody else's test uses, so the nearby search is about this station.
            latitude, longitude = f"54.{int(run, 16) % 10_000:04d}", "3.5"
            status, station = await writes.call(
                "POST",
                "/stations",
                "/stations",
                {
                    "name": "Platform",
                    "address": {
                        "street": "Pier 1",
                        "city": "Offshore",
                        "postalCode": "0000",
                        "country": "NLD",
                    },
                    "coordinates": {"latitude": latitude, "longitude": longitude},
                    "timeZone": "Europe/Amsterdam",
                    "published": True,
                },
            )
            assert status == 201, station
            _, tariff = await writes.call(
                "POST",
                "/tariffs",
                "/tariffs",
                {
                    "name": "Flat",
                    "currency": "EUR",
                    "vatPercent": "21",
                    "elements": [
                        {
                            "priceComponents": [
                                {"type": "ENERGY", "price": "0.50"},
                                {"type": "FLAT", "price": "0.50"},
                            ]
                        }
                    ],
                },
            )
            await writes.call(
                "PATCH",
                f"/stations/{station['stationId']}",
                "/stations/{station_id}",
                {"tariffId": tariff["tariffId"]},
            )
            charge_point_id = f"READ-{run}"
            status, charger = await writes.call(
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

            # Public discovery, reading the write just made.
            nearby = (
                f"/stations/nearby?lat={latitude}&lon={longitude}&radiusKm=1"
                f"&minPosition={charger['position']}"
            )
            status, found = await reads.call("GET", nearby, "/stations/nearby")
            assert status == 200, found
            [listed] = [s for s in found["stations"] if s["id"] == station["stationId"]]
            assert listed["price"]["currency"] == "EUR"
            assert listed["distanceM"] < 5

            # The charger comes online; a driver charges.
            config = ChargerConfig(url=ocpp, version="1.6", connectors=1, meter_interval=0.3)
            fleet = Fleet(
                [charge_point_id], config, passwords={charge_point_id: charger["password"]}, charging_share=0
            )
            fleet_task = asyncio.create_task(fleet.run(stop=stop_fleet))
            writes.token = None
            await writes.call(
                "POST",
                "/auth/register",
                "/auth/register",
                {"email": driver_email, "password": _PASSWORD, "displayName": "R"},
            )
            await _login(writes, driver_email)
            reads.token = writes.token
            # Two cards saved, the second made the default, then removed again: the first is the default.
            method_id = await tokenize(http, localstripe_url, GOOD_CARD)
            status, _ = await writes.call(
                "POST", "/me/payment-methods", "/me/payment-methods", {"paymentMethodId": method_id}
            )
            assert status == 201
            spare_id = await tokenize(http, localstripe_url, GOOD_CARD)
            status, _ = await writes.call(
                "POST", "/me/payment-methods", "/me/payment-methods", {"paymentMethodId": spare_id}
            )
            assert status == 201
            status, cards = await writes.call(
                "POST",
                f"/me/payment-methods/{spare_id}/default",
                "/me/payment-methods/{payment_method_id}/default",
            )
            assert (status, cards["defaultPaymentMethodId"]) == (200, spare_id), cards
            status, cards = await writes.call(
                "DELETE", f"/me/payment-methods/{spare_id}", "/me/payment-methods/{payment_method_id}"
            )
            assert status == 200, cards
            status, cards = await writes.call("GET", "/me/payment-methods", "/me/payment-methods")
            assert status == 200, cards
            assert [card["paymentMethodId"] for card in cards["paymentMethods"]] == [method_id]
            assert cards["defaultPaymentMethodId"] == method_id
            async with asyncio.timeout(30):
                while True:  # until the charger has booted and reported its connector
                    status, started = await writes.call(
                        "POST", "/sessions/start", "/sessions/start", {"chargerId": charge_point_id}
                    )
                    if status == 201:
                        break
                    assert status in (409, 503), started
                    await asyncio.sleep(0.2)
            session_id = started["sessionId"]
            path = f"/sessions/{session_id}?minPosition={started['position']}"
            status, live = await reads.call("GET", path, "/sessions/{session_id}")
            assert status == 200, live
            assert live["status"] in ("ACCEPTED", "STARTED", "CHARGING"), live

            # Live updates until energy flows, then stop and follow the stream to the priced session.
            assert writes.token is not None
            events_url = f"{read_base}/sessions/{session_id}/events"
            last_id = 0
            async with asyncio.timeout(30):
                async for event_id, state in _server_sent_events(http, events_url, writes.token):
                    assert event_id > last_id
                    last_id = event_id
                    if state["energyWh"] > 0:
                        break
            status, _ = await writes.call(
                "POST", "/sessions/stop", "/sessions/stop", {"sessionId": session_id}
            )
            assert status == 200
            async with asyncio.timeout(30):
                async for event_id, state in _server_sent_events(http, events_url, writes.token, last_id):
                    assert event_id > last_id  # a resumed stream sends nothing already seen
                    last_id = event_id
                    if state["status"] in ("PAID", "PAYMENT_FAILED"):
                        break
            assert (state["status"], state["paymentStatus"]) == ("PAID", "succeeded"), state
            status, receipt = await reads.call(
                "GET", f"/sessions/{session_id}/receipt", "/sessions/{session_id}/receipt"
            )
            assert status == 200, receipt
            assert receipt["currency"] == "EUR"
            assert receipt["paymentStatus"] == "succeeded", receipt
            assert receipt["amountPaid"] == receipt["totalInclVat"], receipt
            status, history = await reads.call("GET", "/me/sessions", "/me/sessions")
            assert [item["sessionId"] for item in history["items"]] == [session_id]

            # Another driver sees nothing of it: 404, not 403.
            writes.token = None
            await writes.call(
                "POST",
                "/auth/register",
                "/auth/register",
                {"email": f"nosy-{run}@example.com", "password": _PASSWORD, "displayName": "N"},
            )
            await _login(writes, f"nosy-{run}@example.com")
            reads.token = writes.token
            status, _ = await reads.call("GET", f"/sessions/{session_id}", "/sessions/{session_id}")
            assert status == 404

            # The operator sees the session and the station's day.
            await _login(writes, operator_email)
            reads.token = writes.token
            status, sessions = await reads.call("GET", "/manage/sessions", "/manage/sessions")
            assert status == 200, sessions
            assert [item["sessionId"] for item in sessions["items"]] == [session_id]
            status, daily = await reads.call("GET", "/manage/reports/daily", "/manage/reports/daily")
            assert status == 200, daily
            assert sum(int(day["sessions"]) for day in daily["items"]) == 1

            # The operator gives part of it back; the driver's receipt shows it once billing has done it.
            status, refund = await writes.call(
                "POST",
                f"/sessions/{session_id}/refunds",
                "/sessions/{session_id}/refunds",
                {"amount": "0.10", "reason": "goodwill"},
            )
            assert status == 200, refund
            assert refund["status"] == "refunded", refund
            await _login(writes, driver_email)
            reads.token = writes.token
            path = f"/sessions/{session_id}/receipt?minPosition={refund['position']}"
            async with asyncio.timeout(20):
                while True:  # the refund's own events come after the position of its request
                    status, receipt = await reads.call("GET", path, "/sessions/{session_id}/receipt")
                    if receipt.get("paymentStatus") == "partially_refunded":
                        break
                    await asyncio.sleep(0.1)
            assert receipt["amountRefunded"] == "0.10"
            await _login(writes, operator_email)
            reads.token = writes.token

            # On call: the read API is ready (its projections are caught up), the projector shows its work.
            async with http.get(f"{read_base}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["checks"]["projections"] == "ok"
            async with http.get(f"{projector}/metrics") as response:
                exposition = await response.text()
            assert 'csms_projection_active{projection="session_history"} 1.0' in exposition
            assert 'csms_projection_events_total{projection="session_history"}' in exposition
            assert "csms_event_loop_lag_seconds_count" in exposition
            async with http.get(f"{write_base}/metrics") as response:
                exposition = await response.text()
            assert "csms_eventstore_appended_events_total" in exposition
            async with http.get(f"{read_base}/metrics") as response:
                exposition = await response.text()
            assert 'csms_http_requests_total{api="read",method="GET",route="/me/sessions",status="200"}' in (
                exposition
            )
    finally:
        stop_fleet.set()
        if fleet_task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(fleet_task, 10)
