"""Reconnect storms: beyond the boot pace, chargers hear Pending and when their turn is; nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from ocpp.v16 import call

from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, now
from write_api.ocpp.gateway import Gateway, GatewayConfig, create_gateway_app


@pytest.fixture
async def slow_booting_gateway(gateway_env: GatewayEnv) -> AsyncIterator[tuple[str, Gateway]]:
    """A gateway on the same store that accepts 2 boots at once, then 1 per second."""
    gateway = Gateway(
        gateway_env.gateway._reports,  # the same write side, a tight boot pace
        GatewayConfig(heartbeat_interval_seconds=60, boots_per_second=1.0, boot_burst=2),
        now,
    )
    server = TestServer(create_gateway_app(gateway), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"ws://127.0.0.1:{server.port}/ocpp", gateway
    finally:
        await server.close()


async def test_boots_beyond_the_pace_are_pending_and_write_nothing(
    gateway_env: GatewayEnv, slow_booting_gateway: tuple[str, Gateway]
) -> None:
    url, gateway = slow_booting_gateway
    chargers = [await gateway_env.register_charger() for _ in range(5)]
    async with contextlib.AsyncExitStack() as stack:
        connected = [await stack.enter_async_context(connect(url, cp, password)) for cp, password in chargers]
        boots = await asyncio.gather(
            *(
                c.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
                for c in connected
            )
        )
        accepted = [c for c, boot in zip(connected, boots, strict=True) if boot.status == "Accepted"]
        pending = [boot for boot in boots if boot.status == "Pending"]
        # The chargers already in keep being served while the others wait.
        beats = await asyncio.gather(*(c.call(call.Heartbeat()) for c in accepted))

    assert len(accepted) == 2
    assert len(pending) == 3
    # At 1 boot per second the three queued chargers are told 1, 2 and 3 s: their turns, in order.
    assert sorted(boot.interval for boot in pending) == [1, 2, 3]
    assert all(beat.current_time for beat in beats)
    assert gateway.admission.pending_answers == 3
    recorded = [(await gateway_env.topics(cp)).count("Charger.BootRecorded") for cp, _ in chargers]
    assert sorted(recorded) == [0, 0, 0, 1, 1]


async def test_a_pending_charger_is_accepted_when_it_retries_later(
    gateway_env: GatewayEnv, slow_booting_gateway: tuple[str, Gateway]
) -> None:
    url, gateway = slow_booting_gateway
    chargers = [await gateway_env.register_charger() for _ in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        connected = [await stack.enter_async_context(connect(url, cp, password)) for cp, password in chargers]
        boots = [
            await c.call(call.BootNotification(charge_point_model="M", charge_point_vendor="V"))
            for c in connected
        ]
        assert [b.status for b in boots] == ["Accepted", "Accepted", "Pending"]
        # CSMS-initiated calls wait for the boot to be accepted.
        before = await gateway.call(chargers[2][0], "Reset", {"type": "Soft"}, 2)
        await asyncio.sleep(1.1)  # the pace refills one boot per second; a real charger waits `interval`
        retry = await connected[2].call(
            call.BootNotification(charge_point_model="M", charge_point_vendor="V")
        )

    assert before.status.value == "not_booted"
    assert retry.status == "Accepted"
