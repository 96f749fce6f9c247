"""Property: whatever a charger sends, it gets a well-formed answer (none for replies) and stays connected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.gateway.conftest import GatewayEnv, basic_auth

_ACTIONS_16 = ["BootNotification", "Heartbeat", "StatusNotification", "Authorize", "StartTransaction",
               "MeterValues", "StopTransaction", "DataTransfer", "Teleport", ""]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
message_ids = st.text(max_size=40) | int64 | st.none()
payloads = st.dictionaries(
    st.sampled_from(["connectorId", "errorCode", "status", "idTag", "meterStart", "timestamp", "x",
                     "transactionId", "meterValue", "chargePointVendor", "chargePointModel", "vendorId"]),
    json_values,
    max_size=6,
)  # fmt: skip
frames = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        ['[2, "big", "Heartbeat", {"n": 123456789012345678901234567890}]', "[2, 1e999]"],
    ),
    json_values.map(lambda v: orjson.dumps(v).decode()),
    st.tuples(st.sampled_from([2, 3, 4, 5, "2"]), message_ids, st.sampled_from(_ACTIONS_16), payloads).map(
        lambda t: orjson.dumps(list(t)).decode()
    ),
    st.tuples(st.just(2), message_ids, st.sampled_from(_ACTIONS_16)).map(
        lambda t: orjson.dumps(list(t)).decode()
    ),
)


@pytest.fixture
async def socket(gateway_env: GatewayEnv) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    charge_point_id, password = await gateway_env.register_charger()
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{gateway_env.url}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):
        yield websocket


_sentinels = iter(range(10**9))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=frames)
async def test_any_frame_gets_a_well_formed_answer_and_the_connection_stays_open(
    socket: aiohttp.ClientWebSocketResponse, frame: str
) -> None:
    sentinel = f"sentinel-{next(_sentinels)}"
    await socket.send_str(frame)
    await socket.send_str(orjson.dumps([2, sentinel, "Heartbeat", {}]).decode())
    replies: list[Any] = []
    async with asyncio.timeout(10):
        while True:
            message = await socket.receive()
            assert message.type is aiohttp.WSMsgType.TEXT, f"connection closed after {frame!r}"
            reply = orjson.loads(message.data)
            if reply[1] == sentinel:
                assert reply[0] == 3
                break
            replies.append(reply)
    # At most one answer to the fuzzed frame, and it is a well-formed CALLRESULT or CALLERROR.
    assert len(replies) <= 1, replies
    for reply in replies:
        assert isinstance(reply, list)
        assert reply[0] in (3, 4)
        assert isinstance(reply[1], str)
        assert len(reply[1]) <= 36
        if reply[0] == 4:
            assert len(reply) == 5
            assert isinstance(reply[2], str)
            assert isinstance(reply[3], str)
            assert isinstance(reply[4], dict)
        else:
            assert isinstance(reply[2], dict)
