"""Misbehaving chargers and bad networks: late, repeated and reordered messages, big frames, floods."""

from __future__ import annotations

import asyncio
import base64
import gc
import logging
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from prometheus_client import REGISTRY

from csms.domain import Charger, ChargingSession, MeterReading, SessionStatus, charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, Repository
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, basic_auth, now
from write_api.charger_reports import ChargerReports
from write_api.ocpp.gateway import Gateway, GatewayConfig, create_gateway_app


def _iso(offset_seconds: float = 0) -> str:
    return (now() + timedelta(seconds=offset_seconds)).isoformat()


async def test_a_stop_for_an_unknown_transaction_is_acknowledged_and_recorded_as_an_anomaly(
    gateway_env: GatewayEnv,
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        await charger.call(call16.StopTransaction(meter_stop=10, timestamp=_iso(), transaction_id=424242))

    events = await gateway_env.store.read_stream(charger_id_for(charge_point_id))
    anomalies = [e.data for e in events if e.topic == "Charger.TransactionAnomalyRecorded"]
    assert [a["transaction_id"] for a in anomalies] == ["424242"]


async def test_a_stop_after_another_process_wrote_to_the_session_still_prices_it_with_everything(
    gateway_env: GatewayEnv,
) -> None:
    """The gateway trusts its cached session when a stop arrives; here another process (a second gateway
    that held the charger for a while) recorded a reading meanwhile: the stop must conflict, catch up and
    price the session with that reading too, never drop it or fail."""
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        start = await charger.call(
            call16.StartTransaction(connector_id=1, id_tag="ANYONE", meter_start=1_000, timestamp=_iso(-600))
        )
        session_id = await gateway_env.transactions.find(
            charger_id_for(charge_point_id), str(start.transaction_id)
        )
        assert session_id is not None
        elsewhere = Repository(gateway_env.store, EventCodec(EVENT_TYPES))  # no cache: another process
        session = await elsewhere.get(session_id, ChargingSession)
        session.record_meter_values((MeterReading(now() - timedelta(seconds=300), energy_wh=4_000),), now())
        await elsewhere.save(session)

        await charger.call(
            call16.StopTransaction(meter_stop=9_000, timestamp=_iso(), transaction_id=start.transaction_id)
        )

    # Ended: the gateway keeps neither the session nor its transaction id in memory any more.
    assert gateway_env.repository.peek(session_id, ChargingSession) is None
    assert (
        gateway_env.transactions._known.get((charger_id_for(charge_point_id), str(start.transaction_id)))
        is None
    )
    assert (
        await gateway_env.transactions.find(charger_id_for(charge_point_id), str(start.transaction_id))
        == session_id
    )
    priced = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)
    assert priced.status is SessionStatus.PRICED
    assert [r.energy_wh for r in priced.readings] == [4_000]
    assert priced.energy_wh == 8_000


async def test_a_second_stop_with_other_figures_is_an_anomaly_but_an_exact_replay_is_not(
    gateway_env: GatewayEnv,
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    started_at, stopped_at = _iso(-600), _iso()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        start = await charger.call(
            call16.StartTransaction(connector_id=1, id_tag="ANYONE", meter_start=0, timestamp=started_at)
        )
        stop = call16.StopTransaction(
            meter_stop=500, timestamp=stopped_at, transaction_id=start.transaction_id
        )
        await charger.call(stop)
        await charger.call(stop)  # a retransmission
        await charger.call(
            call16.StopTransaction(meter_stop=900, timestamp=stopped_at, transaction_id=start.transaction_id)
        )

    topics = await gateway_env.topics(charge_point_id)
    assert topics.count("Charger.TransactionAnomalyRecorded") == 1


async def test_meter_values_that_arrive_before_their_start_are_kept_and_linked(
    gateway_env: GatewayEnv,
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    tx = "EARLY-1"
    begin, middle, end = _iso(-900), _iso(-450), _iso()

    def energy(wh: int, at: str) -> list[dict[str, Any]]:
        return [{"timestamp": at, "sampledValue": [{"value": wh}]}]

    async with connect(gateway_env.url, charge_point_id, password, "ocpp2.0.1") as charger:
        # The offline queue was replayed out of order: the Updated comes first.
        await charger.call(
            call201.TransactionEvent(
                event_type="Updated",
                timestamp=middle,
                trigger_reason="MeterValuePeriodic",
                seq_no=1,
                transaction_info={"transaction_id": tx},
                meter_value=energy(3_000, middle),
            )
        )
        await charger.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=begin,
                trigger_reason="CablePluggedIn",
                seq_no=0,
                transaction_info={"transaction_id": tx},
                meter_value=energy(1_000, begin),
                evse={"id": 2, "connector_id": 1},
            )
        )
        await charger.call(
            call201.TransactionEvent(
                event_type="Ended",
                timestamp=end,
                trigger_reason="EVCommunicationLost",
                seq_no=2,
                transaction_info={"transaction_id": tx, "stopped_reason": "EVDisconnected"},
                meter_value=energy(4_000, end),
            )
        )

    session_id = await gateway_env.transactions.find(charger_id_for(charge_point_id), tx)
    assert session_id is not None
    session = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)
    assert [r.energy_wh for r in session.readings] == [3_000, 4_000]
    assert session.energy_wh == 3_000
    assert session.status is SessionStatus.PRICED


async def test_an_ended_whose_started_never_came_still_records_the_session(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    tx = "ORPHAN-1"
    begin, end = _iso(-900), _iso()
    async with connect(gateway_env.url, charge_point_id, password, "ocpp2.0.1") as charger:
        await charger.call(
            call201.TransactionEvent(
                event_type="Ended",
                timestamp=end,
                trigger_reason="StopAuthorized",
                seq_no=5,
                transaction_info={"transaction_id": tx, "stopped_reason": "Local"},
                meter_value=[
                    {"timestamp": begin, "sampledValue": [{"value": 10_000, "context": "Transaction.Begin"}]},
                    {"timestamp": end, "sampledValue": [{"value": 16_500, "context": "Transaction.End"}]},
                ],
            )
        )
        # The lost Started shows up late: it changes nothing.
        await charger.call(
            call201.TransactionEvent(
                event_type="Started",
                timestamp=begin,
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": tx},
                evse={"id": 1, "connector_id": 1},
            )
        )

    session_id = await gateway_env.transactions.find(charger_id_for(charge_point_id), tx)
    assert session_id is not None
    session = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)
    assert session.status is SessionStatus.PRICED
    assert session.energy_wh == 6_500
    charger_aggregate = await gateway_env.repository.get(
        charger_id_for(charge_point_id), Charger, refresh=True
    )
    assert charger_aggregate.active_session_id(1, 1) is None


@pytest.fixture
async def strict_gateway(gateway_env: GatewayEnv) -> AsyncIterator[str]:
    """A second gateway on the same store with small limits: 4 KiB frames, 5 msg/s (burst 5), 0.5 s pings."""
    gateway = Gateway(
        gateway_env.gateway._reports,  # the same write side, other limits
        GatewayConfig(
            heartbeat_interval_seconds=60,
            ping_interval_seconds=0.5,
            max_frame_bytes=4096,
            rate_limit_per_second=5.0,
            rate_limit_burst=5,
        ),
        now,
    )
    server = TestServer(create_gateway_app(gateway), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"ws://127.0.0.1:{server.port}/ocpp"
    finally:
        await server.close()


async def test_an_oversize_frame_closes_the_connection_with_1009(
    gateway_env: GatewayEnv, strict_gateway: str
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{strict_gateway}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):
        await websocket.send_str(orjson.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 5000}]).decode())
        message = await asyncio.wait_for(websocket.receive(), 5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert websocket.close_code == 1009


async def test_a_flooding_charger_is_slowed_down_and_nothing_is_dropped(
    gateway_env: GatewayEnv, strict_gateway: str
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{strict_gateway}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):
        started = time.monotonic()
        for n in range(15):
            await websocket.send_str(f'[2, "h{n}", "Heartbeat", {{}}]')
        replies = [orjson.loads((await asyncio.wait_for(websocket.receive(), 10)).data) for _ in range(15)]
        elapsed = time.monotonic() - started
    assert [reply[1] for reply in replies] == [f"h{n}" for n in range(15)]
    # 5 go at once (the burst), the other 10 at 5 per second: at least about 2 seconds.
    assert elapsed >= 1.8


async def test_a_dead_connection_is_found_by_ping(gateway_env: GatewayEnv, strict_gateway: str) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with aiohttp.ClientSession() as http:
        # autoping off: this client never answers pings, like a charger whose network died.
        websocket = await http.ws_connect(
            f"{strict_gateway}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
            autoping=False,
        )
        topics = await gateway_env.wait_for(charge_point_id, "Charger.Disconnected")
        await websocket.close()
    assert topics[-2:] == ["Charger.Connected", "Charger.Disconnected"]


class _SlowLookups(ChargerReports):
    """The write side of a busy node: finding a charger takes a while."""

    async def charger(self, charger_id: uuid.UUID) -> Charger | None:
        await asyncio.sleep(0.3)
        return await super().charger(charger_id)


async def test_a_charger_that_hangs_up_during_the_upgrade_is_counted_not_logged_as_an_error(
    gateway_env: GatewayEnv, caplog: pytest.LogCaptureFixture
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    reports = gateway_env.gateway._reports
    slow = _SlowLookups(
        reports._repository, reports._transactions, reports._tokens, reports._early_readings, now
    )
    # Served as `csms serve` does (aiohttp's test server cancels a handler whose client left; production not).
    runner = web.AppRunner(
        create_gateway_app(Gateway(slow, GatewayConfig(heartbeat_interval_seconds=60), now))
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    gone = REGISTRY.get_sample_value("csms_ocpp_connections_refused_total", {"reason": "gone"}) or 0.0
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_upgrade_request(charge_point_id, password))
        await writer.drain()
        writer.close()  # gives up before the gateway has checked it
        await asyncio.sleep(0.6)
    finally:
        await runner.cleanup()

    assert REGISTRY.get_sample_value("csms_ocpp_connections_refused_total", {"reason": "gone"}) == gone + 1
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("drop", ["reset", "hang_up"])
async def test_a_dropped_connection_is_freed_at_once_not_left_to_the_garbage_collector(
    gateway_env: GatewayEnv, drop: str
) -> None:
    """A charger whose network drops must not leave its connection (transport, request, buffers) in a
    reference cycle: the gateway freezes long-lived objects out of the collector's reach
    (`csms.observability.gc_pauses`), so a cycle among them would never be freed, a leak per reconnect."""
    charge_point_id, password = await gateway_env.register_charger()
    gc.disable()  # only reference counting may free it
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(gateway_env.url))
        writer.write(_upgrade_request(charge_point_id, password))
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        await gateway_env.wait_for(charge_point_id, "Charger.Connected")
        connection = weakref.ref(gateway_env.gateway.connections[charge_point_id])
        websocket = weakref.ref(gateway_env.gateway.connections[charge_point_id].websocket)
        if drop == "reset":
            writer.transport.abort()  # the network drops: no close frame
        else:
            writer.close()  # the charger hangs up without a close frame: its socket is gone when told goodbye
        await gateway_env.wait_for(charge_point_id, "Charger.Disconnected")
        for _ in range(50):  # the handler's last steps after the disconnect is recorded
            if connection() is None and websocket() is None:
                break
            await asyncio.sleep(0.02)
        assert connection() is None
        assert websocket() is None
    finally:
        gc.enable()


def _upgrade_request(charge_point_id: str, password: str) -> bytes:
    """A WebSocket upgrade for a 1.6 charger, by hand: the test then does with the socket as it likes."""
    auth = basic_auth(charge_point_id, password)["Authorization"]
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ocpp/{charge_point_id} HTTP/1.1\r\nHost: csms\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: ocpp1.6\r\nAuthorization: {auth}\r\n\r\n"
    ).encode()


def _port(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])
