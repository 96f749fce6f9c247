"""The gateway's log lines: about a charger they carry its `charger_id`, while one of its messages is handled
(or one of ours is sent) that message's id as `correlation_id`, about a session its `session_id`; its
password and Basic credentials never appear."""

from __future__ import annotations

import asyncio
import base64
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import pytest

from csms.domain import charger_id_for
from tests.integration.gateway.conftest import GatewayEnv, basic_auth, now
from tests.json_logs import json_logs
from write_api.ocpp.outcome import CallStatus


async def _exchange(websocket: aiohttp.ClientWebSocketResponse, frame: list[Any]) -> list[Any]:
    await websocket.send_str(orjson.dumps(frame).decode())
    reply: list[Any] = orjson.loads((await asyncio.wait_for(websocket.receive(), 10)).data)
    assert reply[:2] == [3, frame[1]], reply
    return reply


async def test_lines_about_a_charger_carry_its_id_its_message_and_its_session(
    gateway_env: GatewayEnv,
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    url = f"{gateway_env.url}/{charge_point_id}"
    started = now() - timedelta(hours=1)
    with json_logs() as log:
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(
                    url, protocols=("ocpp1.6",), headers=basic_auth(charge_point_id, password + "x")
                )
            assert refused.value.status == 401
            async with http.ws_connect(
                url, protocols=("ocpp1.6",), headers=basic_auth(charge_point_id, password)
            ) as websocket:
                await _exchange(
                    websocket,
                    [
                        2,
                        "m-boot",
                        "BootNotification",
                        {"chargePointVendor": "Acme", "chargePointModel": "M1"},
                    ],
                )
                start = await _exchange(
                    websocket,
                    [
                        2,
                        "m-start",
                        "StartTransaction",
                        {
                            "connectorId": 1,
                            "idTag": "CARD-9",
                            "meterStart": 0,
                            "timestamp": started.isoformat(),
                        },
                    ],
                )
                transaction_id = start[2]["transactionId"]
                for message_id, meter_stop in (("m-stop-1", 2000), ("m-stop-2", 3000)):
                    # The second Stop, with other figures, is acknowledged and logged as an anomaly.
                    stop = {
                        "transactionId": transaction_id,
                        "meterStop": meter_stop,
                        "timestamp": now().isoformat(),
                    }
                    await _exchange(websocket, [2, message_id, "StopTransaction", stop])
                await websocket.send_str('[3, "nobody-asked", {}]')
                await _exchange(websocket, [2, "m-beat", "Heartbeat", {}])

                # A call of ours from another task (as an API command's), refused by the charger.
                reset = asyncio.create_task(
                    gateway_env.gateway.call(charge_point_id, "Reset", {"type": "Soft"}, 5)
                )
                ours = orjson.loads((await asyncio.wait_for(websocket.receive(), 10)).data)
                assert ours[:3] == [2, ours[1], "Reset"]
                await websocket.send_str(orjson.dumps([4, ours[1], "NotSupported", "not here", {}]).decode())
                assert (await reset).status is CallStatus.CALL_ERROR
        # Recorded after the disconnect was logged.
        await gateway_env.wait_for(charge_point_id, "Charger.Disconnected")

    session_id = await gateway_env.transactions.find(charger_id_for(charge_point_id), str(transaction_id))
    assert session_id is not None
    [connected] = log.about(message="charger connected")
    assert connected["charger_id"] == charge_point_id
    [anomaly] = [line for line in log.lines() if line["message"].startswith("transaction anomaly")]
    assert anomaly["level"] == "WARNING"
    assert (anomaly["charger_id"], anomaly["session_id"], anomaly["correlation_id"]) == (
        charge_point_id,
        str(session_id),
        "m-stop-2",
    )
    [ignored] = log.about(message="reply to no pending call ignored")
    assert (ignored["charger_id"], ignored["correlation_id"]) == (charge_point_id, "nobody-asked")
    [failed] = log.about(message="call to charger failed")
    assert (failed["charger_id"], failed["correlation_id"], failed["action"]) == (
        charge_point_id,
        ours[1],
        "Reset",
    )
    # What a message's handling bound ends with it: the lines after the Stop name no session, nor its id.
    assert "session_id" not in ignored
    [disconnected] = log.about(message="charger disconnected")
    assert disconnected["charger_id"] == charge_point_id
    assert "correlation_id" not in disconnected
    assert "session_id" not in disconnected
    # Neither the password nor the Basic credentials it travelled in, right or wrong, are ever written.
    for secret in (password, password + "x"):
        assert secret not in log.text
        assert base64.b64encode(f"{charge_point_id}:{secret}".encode()).decode() not in log.text
