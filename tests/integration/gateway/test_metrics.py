"""The gateway's Prometheus metrics move with real traffic: connections, messages by result, commands, and
the gateway's defences (boots answered Pending, throttled messages, oversize frames)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import orjson
import pytest
import websockets
from aiohttp.test_utils import TestServer
from ocpp.v16 import call
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, basic_auth, now
from tests.integration.gateway_infra import eventually
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.commands import ChargerCommands, protocol_from_repository
from write_api.ocpp.gateway import Gateway, GatewayConfig, create_gateway_app


def until(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_connections_messages_and_errors_are_counted(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    boots = sample(
        "csms_ocpp_messages_total",
        protocol="ocpp1.6", action="BootNotification", direction="received", result="result",
    )  # fmt: skip
    boot_latencies = sample(
        "csms_ocpp_call_duration_seconds_count",
        protocol="ocpp1.6", action="BootNotification", direction="received",
    )  # fmt: skip
    malformed = sample(
        "csms_ocpp_messages_total",
        protocol="ocpp1.6", action="malformed", direction="received", result="error",
    )  # fmt: skip
    unknown = sample(
        "csms_ocpp_messages_total",
        protocol="ocpp1.6", action="unknown", direction="received", result="error",
    )  # fmt: skip
    connected = sample("csms_ocpp_connected_chargers", protocol="ocpp1.6")
    accepted = sample("csms_ocpp_connections_total", protocol="ocpp1.6")
    closed_by_charger = sample("csms_ocpp_disconnections_total", protocol="ocpp1.6", cause="charger")
    refused = sample("csms_ocpp_connections_refused_total", reason="unauthenticated")

    async with connect(gateway_env.url, charge_point_id, password) as charger:
        assert sample("csms_ocpp_connected_chargers", protocol="ocpp1.6") == connected + 1
        await charger.call(call.BootNotification(charge_point_model="M1", charge_point_vendor="Acme"))
        await charger._connection.send("[2, oops")  # unreadable: CALLERROR with message id "-1"
        await charger._connection.send('[2, "u1", "NoSuchAction", {}]')
        await charger.call(call.Heartbeat())  # answered after both errors: they have been counted
    await eventually(until(lambda: sample("csms_ocpp_connected_chargers", protocol="ocpp1.6") == connected))

    with pytest.raises(websockets.InvalidStatus, match="401"):
        await websockets.connect(
            f"{gateway_env.url}/{charge_point_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=basic_auth(charge_point_id, "wrong password"),
        )

    assert sample(
        "csms_ocpp_messages_total",
        protocol="ocpp1.6", action="BootNotification", direction="received", result="result",
    ) == boots + 1  # fmt: skip
    assert sample(
        "csms_ocpp_call_duration_seconds_count",
        protocol="ocpp1.6", action="BootNotification", direction="received",
    ) == boot_latencies + 1  # fmt: skip
    assert sample(
        "csms_ocpp_messages_total",
        protocol="ocpp1.6", action="malformed", direction="received", result="error",
    ) == malformed + 1  # fmt: skip
    assert sample(
        "csms_ocpp_messages_total",
        protocol="ocpp1.6", action="unknown", direction="received", result="error",
    ) == unknown + 1  # fmt: skip
    assert sample("csms_ocpp_connections_total", protocol="ocpp1.6") == accepted + 1
    assert (
        sample("csms_ocpp_disconnections_total", protocol="ocpp1.6", cause="charger") == closed_by_charger + 1
    )
    assert sample("csms_ocpp_connections_refused_total", reason="unauthenticated") == refused + 1


async def test_commands_are_counted_by_action_and_outcome_on_both_sides(
    gateway_env: GatewayEnv, redis_url: str, redis_key_prefix: str
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    redis = Redis.from_url(redis_url)
    router = CommandRouter(redis, redis_key_prefix, "metrics-test", gateway_env.gateway)
    await router.start()
    gateway_env.gateway.router = router
    commands = ChargerCommands(router, protocol_from_repository(gateway_env.repository), timeout_seconds=5)
    accepted = sample("csms_ocpp_commands_total", action="Reset", outcome="accepted")
    answered = sample(
        "csms_ocpp_messages_total", protocol="ocpp1.6", action="Reset", direction="sent", result="result"
    )
    latencies = sample("csms_ocpp_command_duration_seconds_count", action="Reset")
    try:
        async with connect(gateway_env.url, charge_point_id, password) as charger:
            await charger.call(call.BootNotification(charge_point_model="M1", charge_point_vendor="Acme"))
            await router.claim(charge_point_id)
            outcome = await commands.reset(charge_point_id, hard=False)
        assert outcome.accepted
        offline = sample("csms_ocpp_commands_total", action="Reset", outcome="offline")
        await eventually(until(lambda: charge_point_id not in gateway_env.gateway.connections))
        assert not (await commands.reset(charge_point_id, hard=False)).accepted
    finally:
        await router.close()
        await redis.aclose()

    assert sample("csms_ocpp_commands_total", action="Reset", outcome="accepted") == accepted + 1
    assert sample("csms_ocpp_commands_total", action="Reset", outcome="offline") == offline + 1
    assert sample("csms_ocpp_command_duration_seconds_count", action="Reset") == latencies + 2
    assert (
        sample(
            "csms_ocpp_messages_total", protocol="ocpp1.6", action="Reset", direction="sent", result="result"
        )
        == answered + 1
    )


@pytest.fixture
async def guarded_url(gateway_env: GatewayEnv) -> AsyncIterator[str]:
    """A second gateway on the same store with tight defences: one boot, then about one per 17 minutes;
    2 messages at once, then 2 per second; frames up to 4 KiB."""
    gateway = Gateway(
        gateway_env.gateway._reports,
        GatewayConfig(
            heartbeat_interval_seconds=60,
            max_frame_bytes=4096,
            rate_limit_per_second=2.0,
            rate_limit_burst=2,
            boots_per_second=0.001,
            boot_burst=1,
        ),
        now,
    )
    server = TestServer(create_gateway_app(gateway), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"ws://127.0.0.1:{server.port}/ocpp"
    finally:
        await server.close()


async def test_boots_answered_pending_are_counted(gateway_env: GatewayEnv, guarded_url: str) -> None:
    chargers = [await gateway_env.register_charger() for _ in range(3)]
    pending = sample("csms_ocpp_boots_pending_total")

    async with contextlib.AsyncExitStack() as stack:
        connected = [await stack.enter_async_context(connect(guarded_url, cp, pw)) for cp, pw in chargers]
        boots = [
            await c.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            for c in connected
        ]

    assert [b.status for b in boots] == ["Accepted", "Pending", "Pending"]
    assert sample("csms_ocpp_boots_pending_total") == pending + 2


async def test_messages_held_back_by_the_rate_limiter_are_counted(
    gateway_env: GatewayEnv, guarded_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    calm_id, calm_password = await gateway_env.register_charger()
    flooding_id, flooding_password = await gateway_env.register_charger()
    throttled = sample("csms_ocpp_throttled_messages_total", protocol="ocpp1.6")

    async with connect(guarded_url, calm_id, calm_password) as calm:
        for _ in range(2):  # within the burst
            await calm.call(call.Heartbeat())
    assert sample("csms_ocpp_throttled_messages_total", protocol="ocpp1.6") == throttled

    caplog.set_level(logging.WARNING, logger="write_api.ocpp.connection")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{guarded_url}/{flooding_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(flooding_id, flooding_password),
        ) as websocket,
    ):
        for n in range(5):
            await websocket.send_str(f'[2, "h{n}", "Heartbeat", {{}}]')
        replies = [orjson.loads((await asyncio.wait_for(websocket.receive(), 10)).data) for _ in range(5)]

    assert [reply[1] for reply in replies] == [f"h{n}" for n in range(5)]
    # Two go at once (the burst); each of the other three waits for the token it takes (half a second at 2
    # per second), so none finds one left over unless handling a Heartbeat took half a second.
    assert sample("csms_ocpp_throttled_messages_total", protocol="ocpp1.6") == throttled + 3
    warnings = [r for r in caplog.records if r.getMessage().startswith("charger throttled")]
    assert len(warnings) == 1  # once per connection, not once per message


async def test_a_connection_closed_for_an_oversize_frame_is_counted_as_too_large(
    gateway_env: GatewayEnv, guarded_url: str
) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    too_large = sample("csms_ocpp_disconnections_total", protocol="ocpp1.6", cause="too_large")
    errors = sample("csms_ocpp_disconnections_total", protocol="ocpp1.6", cause="error")

    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{guarded_url}/{charge_point_id}",
            protocols=("ocpp1.6",),
            headers=basic_auth(charge_point_id, password),
        ) as websocket,
    ):
        await websocket.send_str(orjson.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 5000}]).decode())
        message = await asyncio.wait_for(websocket.receive(), 5)
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert websocket.close_code == 1009
    # The disconnect is counted before it is recorded in the store.
    await gateway_env.wait_for(charge_point_id, "Charger.Disconnected")

    assert sample("csms_ocpp_disconnections_total", protocol="ocpp1.6", cause="too_large") == too_large + 1
    assert sample("csms_ocpp_disconnections_total", protocol="ocpp1.6", cause="error") == errors
