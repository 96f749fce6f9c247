"""OCPP 1.6J end to end over real WebSockets, with the `ocpp` library's charge point as the charger."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import aiohttp
import orjson
from ocpp.v16 import call

from csms.domain import ChargingSession, SessionStatus, charger_id_for
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, basic_auth, now
from write_api.ocpp.outcome import CallStatus


def _iso(offset_seconds: float = 0) -> str:
    return (now() + timedelta(seconds=offset_seconds)).isoformat()


async def test_boot_heartbeat_and_status_become_events(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        boot = await charger.call(call.BootNotification(charge_point_model="M1", charge_point_vendor="Acme"))
        beat = await charger.call(call.Heartbeat())
        await charger.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
        await charger.call(
            call.StatusNotification(
                connector_id=0, error_code="NoError", status="Available", timestamp=_iso()
            )
        )

    assert boot.status == "Accepted"
    assert boot.interval == 60
    assert beat.current_time.endswith("Z")
    topics = await gateway_env.topics(charge_point_id)
    assert topics[:5] == [
        "Charger.Registered",
        "Charger.Connected",
        "Charger.BootRecorded",
        "Charger.ConnectorStatusChanged",
        "Charger.ConnectorStatusChanged",
    ]
    # Heartbeats are presence, not domain events.
    assert "Heartbeat" not in " ".join(topics)


async def test_authorize_checks_tokens_against_the_domain(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    await gateway_env.register_driver("GOODCARD01")
    await gateway_env.register_driver("LOSTCARD01", blocked=True)
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        good = await charger.call(call.Authorize(id_tag="goodcard01"))  # 1.6 idTag is case-insensitive
        lost = await charger.call(call.Authorize(id_tag="LOSTCARD01"))
        unknown = await charger.call(call.Authorize(id_tag="NOBODY"))
    assert (good.id_tag_info["status"], lost.id_tag_info["status"], unknown.id_tag_info["status"]) == (
        "Accepted",
        "Blocked",
        "Invalid",
    )


async def test_local_start_meter_values_and_stop_make_a_priced_session(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    driver_id = await gateway_env.register_driver("CARD-1234")
    started_at = _iso(-3600)
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        await charger.call(call.BootNotification(charge_point_model="M1", charge_point_vendor="Acme"))
        start = await charger.call(
            call.StartTransaction(connector_id=2, id_tag="CARD-1234", meter_start=1_000, timestamp=started_at)
        )
        replayed = await charger.call(
            call.StartTransaction(connector_id=2, id_tag="CARD-1234", meter_start=1_000, timestamp=started_at)
        )
        meter = {
            "timestamp": _iso(-1800),
            "sampledValue": [
                {"value": "6.0", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "3700", "measurand": "Power.Active.Import", "unit": "W", "phase": "L1"},
            ],
        }
        await charger.call(
            call.MeterValues(connector_id=2, transaction_id=start.transaction_id, meter_value=[meter])
        )
        await charger.call(
            call.MeterValues(connector_id=2, transaction_id=start.transaction_id, meter_value=[meter])
        )
        stop = await charger.call(
            call.StopTransaction(
                meter_stop=11_000,
                timestamp=_iso(),
                transaction_id=start.transaction_id,
                reason="EVDisconnected",
            )
        )
        again = await charger.call(
            call.StopTransaction(meter_stop=11_000, timestamp=_iso(), transaction_id=start.transaction_id)
        )

    assert start.id_tag_info["status"] == "Accepted"
    assert replayed.transaction_id == start.transaction_id  # a replayed Start has no second effect
    assert stop == again
    session_id = await gateway_env.gateway._reports._transactions.find(
        charger_id_for(charge_point_id), str(start.transaction_id)
    )
    assert session_id is not None
    session = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)
    assert session.status is SessionStatus.PRICED
    assert session.driver_id == driver_id
    assert (session.evse_id, session.connector_id) == (2, 1)
    assert session.energy_wh == 10_000
    assert [r.energy_wh for r in session.readings] == [6_000]
    assert session.readings[0].power_w == 11_000
    assert session.breakdown is not None
    assert session.breakdown.total_incl_vat == Decimal("3.63")  # 10 kWh x 0.30 + 21 % VAT
    topics = [e.topic for e in await gateway_env.store.read_stream(session_id)]
    assert topics == [
        "ChargingSession.StartedAtCharger",
        "ChargingSession.MeterValuesRecorded",
        "ChargingSession.Stopped",
        "ChargingSession.Priced",
    ]
    charger_topics = await gateway_env.topics(charge_point_id)
    assert charger_topics.count("Charger.SessionAssigned") == 1
    assert charger_topics.count("Charger.SessionReleased") == 1


async def test_a_stop_for_an_unknown_transaction_is_acknowledged(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        stop = await charger.call(
            call.StopTransaction(meter_stop=5, timestamp=_iso(), transaction_id=987654321)
        )
    assert stop.id_tag_info is None


async def test_malformed_frames_get_callerrors_and_the_connection_stays_open(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{gateway_env.url}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):

        async def exchange(raw: str) -> list[object]:
            await websocket.send_str(raw)
            reply: list[object] = orjson.loads((await asyncio.wait_for(websocket.receive(), 5)).data)
            return reply

        invalid = await exchange("{not json")
        unknown = await exchange('[2, "m1", "Teleport", {}]')
        missing = await exchange('[2, "m2", "StatusNotification", {"connectorId": 1}]')
        wrong_type = await exchange(
            '[2, "m3", "StartTransaction", {"connectorId": "one", "idTag": "A",'
            ' "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"}]'
        )
        ok = await exchange('[2, "m4", "Heartbeat", {}]')
        # A CALLRESULT nobody asked for is never answered; the next CALL still is.
        await websocket.send_str('[3, "nobody-asked", {}]')
        after = await exchange('[2, "m5", "Heartbeat", {}]')

    assert invalid[:3] == [4, "-1", "FormationViolation"]  # the id is unreadable: "-1"
    assert len(invalid) == 5
    assert unknown[:3] == [4, "m1", "NotImplemented"]
    assert missing[:3] == [4, "m2", "OccurenceConstraintViolation"]
    assert wrong_type[:3] == [4, "m3", "TypeConstraintViolation"]
    assert ok[:2] == [3, "m4"]
    assert after[:2] == [3, "m5"]


async def test_csms_calls_reach_the_charger_after_boot(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        before_boot = await gateway_env.gateway.call(charge_point_id, "Reset", {"type": "Soft"}, 5)
        await charger.call(call.BootNotification(charge_point_model="M1", charge_point_vendor="Acme"))
        reset = await gateway_env.gateway.call(charge_point_id, "Reset", {"type": "Hard"}, 5)
    offline = await gateway_env.gateway.call(charge_point_id, "Reset", {"type": "Hard"}, 5)

    assert before_boot.status is CallStatus.NOT_BOOTED
    assert reset.status is CallStatus.RESULT
    assert reset.payload == {"status": "Accepted"}
    assert charger.resets == ["Hard"]
    assert offline.status is CallStatus.OFFLINE


async def test_every_frame_is_logged_in_both_directions(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password) as charger:
        await charger.call(call.Heartbeat())
    logged = [
        (direction, orjson.loads(raw)[0])
        for cp, direction, raw in gateway_env.frames
        if cp == charge_point_id
    ]
    assert logged == [("in", 2), ("out", 3)]
