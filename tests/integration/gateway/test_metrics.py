"""The gateway's Prometheus metrics move with real traffic: connections, messages by result, commands."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
import websockets
from ocpp.v16 import call
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, basic_auth
from tests.integration.gateway_infra import eventually
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.commands import ChargerCommands, protocol_from_repository


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
