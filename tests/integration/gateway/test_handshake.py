"""Before the upgrade: unknown ids get 404, bad credentials 401; subprotocols are negotiated; replacement."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from csms.domain import charger_id_for
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, basic_auth


async def _status(
    env: GatewayEnv, charge_point_id: str, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(
                f"{env.url}/{charge_point_id}", protocols=("ocpp1.6",), headers=headers
            ):
                return 101, {}
        except aiohttp.WSServerHandshakeError as error:
            return error.status, {}


async def test_unknown_charge_point_gets_404_before_the_upgrade(gateway_env: GatewayEnv) -> None:
    status, _ = await _status(gateway_env, "NO-SUCH-CP", basic_auth("NO-SUCH-CP", "x" * 40))
    assert status == 404


@pytest.mark.parametrize("case", ["none", "wrong password", "wrong user", "not basic", "garbage"])
async def test_bad_credentials_get_401_before_the_upgrade(gateway_env: GatewayEnv, case: str) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    headers = {
        "none": {},
        "wrong password": basic_auth(
            charge_point_id, password[:-1] + ("1" if password.endswith("0") else "0")
        ),
        "wrong user": basic_auth("OTHER", password),
        "not basic": {"Authorization": f"Bearer {password}"},
        "garbage": {"Authorization": "Basic !!!"},
    }[case]

    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
            await http.ws_connect(
                f"{gateway_env.url}/{charge_point_id}", protocols=("ocpp1.6",), headers=headers
            )
    assert raised.value.status == 401
    assert raised.value.headers is not None
    assert raised.value.headers["WWW-Authenticate"].startswith("Basic")
    assert await gateway_env.topics(charge_point_id) == ["Charger.Registered"]


async def test_subprotocol_is_negotiated_by_our_preference(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{gateway_env.url}/{charge_point_id}",
            protocols=("ocpp1.6", "ocpp2.0.1"),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):
        assert websocket.protocol == "ocpp2.0.1"


async def test_a_charger_offering_no_supported_subprotocol_is_closed(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{gateway_env.url}/{charge_point_id}",
            protocols=("ocpp1.5",),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):
        assert websocket.protocol is None
        message = await asyncio.wait_for(websocket.receive(), 5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert await gateway_env.topics(charge_point_id) == ["Charger.Registered"]


async def test_a_second_connection_replaces_the_first_once_authenticated(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with aiohttp.ClientSession() as http:
        first = await http.ws_connect(
            f"{gateway_env.url}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
        )
        # An impostor without the password does not disturb the connected charger.
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(f"{gateway_env.url}/{charge_point_id}", protocols=("ocpp1.6",))
        assert not first.closed

        async with connect(gateway_env.url, charge_point_id, password):
            message = await asyncio.wait_for(first.receive(), 5)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert first.close_code == 4000
            assert gateway_env.gateway.connections[charge_point_id].websocket is not None
        await first.close()
    # Connected twice. The replaced connection's disconnect is recorded only if it came before the new
    # connection was (then it was true); once the new one is recorded, a late one is ignored, and the only
    # disconnect after it is the new connection's own.
    await gateway_env.wait_for(charge_point_id, "Charger.Connected", count=2)
    stream = charger_id_for(charge_point_id)
    events = await gateway_env.store.read_stream(stream)
    second = [i for i, e in enumerate(events) if e.topic == "Charger.Connected"][1]
    earlier = [e.topic for e in events[:second]].count("Charger.Disconnected")
    await gateway_env.wait_for(charge_point_id, "Charger.Disconnected", count=earlier + 1)
    events = await gateway_env.store.read_stream(stream)
    after = events[second + 1 :]
    assert [e.topic for e in after] == ["Charger.Disconnected"]
    assert after[0].data["connection_id"] == events[second].data["connection_id"]
