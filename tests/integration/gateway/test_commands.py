"""Every CSMS-initiated command, in both protocol versions, against simulated chargers."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from csms.domain import (
    Charger,
    ChargingSession,
    IdToken,
    IdTokenType,
    SessionStatus,
    StopReason,
    charger_id_for,
)
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet
from tests.integration.gateway.conftest import GatewayEnv
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.commands import ChargerCommands, CommandStatus, protocol_from_repository


@dataclass
class Commanded:
    commands: ChargerCommands
    charge_point_id: str
    version: str
    fleet: Fleet


@pytest.fixture(params=["1.6", "2.0.1"])
async def commanded(
    request: pytest.FixtureRequest, gateway_env: GatewayEnv, redis_url: str, redis_key_prefix: str
) -> AsyncIterator[Commanded]:
    version: str = request.param
    charge_point_id, password = await gateway_env.register_charger(evses=2)
    config = ChargerConfig(url=gateway_env.url, version=version, connectors=2, heartbeat=30)  # type: ignore[arg-type]
    fleet = Fleet([charge_point_id], config, passwords={charge_point_id: password}, charging_share=0.0)
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop=stop))
    redis = Redis.from_url(redis_url)
    router = CommandRouter(redis, redis_key_prefix, "commands-test", gateway_env.gateway)
    await router.start()
    gateway_env.gateway.router = router
    try:
        await gateway_env.wait_for(charge_point_id, "Charger.BootRecorded")
        await router.claim(charge_point_id)
        commands = ChargerCommands(
            router, protocol_from_repository(gateway_env.repository), timeout_seconds=5
        )
        yield Commanded(commands, charge_point_id, version, fleet)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
        gateway_env.gateway.router = None
        await router.close()
        await redis.aclose()


async def test_configuration_commands(commanded: Commanded) -> None:
    commands, cp = commanded.commands, commanded.charge_point_id
    key = "HeartbeatInterval" if commanded.version == "1.6" else "OCPPCommCtrlr.HeartbeatInterval"

    read = await commands.get_configuration(cp, [key])
    changed = await commands.set_configuration(cp, key, "45")
    again = await commands.get_configuration(cp, [key])
    cleared = await commands.clear_cache(cp)

    assert read.status is CommandStatus.ACCEPTED
    assert changed.status is CommandStatus.ACCEPTED
    assert "45" in str(again.payload)
    if commanded.version == "1.6":
        assert cleared.status is CommandStatus.ACCEPTED
    else:  # the simulated 2.0.1 charger implements no ClearCache: its CALLERROR comes back as such
        assert cleared.status is CommandStatus.NOT_SUPPORTED
        assert cleared.detail is not None
        assert cleared.detail.startswith("NotSupported")


async def test_operational_commands(commanded: Commanded) -> None:
    commands, cp = commanded.commands, commanded.charge_point_id

    trigger = await commands.trigger_message(cp, "Heartbeat")
    unlock = await commands.unlock_connector(cp, evse_id=1)
    unavailable = await commands.change_availability(cp, operative=False, evse_id=2)
    available = await commands.change_availability(cp, operative=True, evse_id=2)
    unknown_offline = await commands.reset("NOT-A-CHARGER", hard=True)

    assert trigger.status is CommandStatus.ACCEPTED
    assert unlock.accepted
    assert unlock.charger_status in ("Unlocked", "UnlockFailed")
    assert unavailable.accepted
    assert available.accepted
    assert unknown_offline.status is CommandStatus.OFFLINE


async def test_remote_start_and_stop(commanded: Commanded, gateway_env: GatewayEnv) -> None:
    commands, cp = commanded.commands, commanded.charge_point_id
    token = IdToken(f"REMOTE-{uuid.uuid4().hex[:8]}", IdTokenType.CENTRAL)
    driver_id = await gateway_env.register_driver(token.value)

    started = await commands.remote_start(cp, evse_id=1, id_token=token, remote_start_id=7)
    await gateway_env.wait_for(cp, "Charger.SessionAssigned")
    charger = await gateway_env.repository.get(charger_id_for(cp), Charger, refresh=True)
    session_id = charger.active_session_id(1, 1)
    assert session_id is not None
    session = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)
    assert session.transaction_id is not None
    stopped = await commands.remote_stop(cp, session.transaction_id)
    await gateway_env.wait_for(cp, "Charger.SessionReleased")
    session = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)

    assert started.status is CommandStatus.ACCEPTED
    assert stopped.status is CommandStatus.ACCEPTED
    assert session.driver_id == driver_id
    assert session.status is SessionStatus.PRICED
    assert session.stop_reason is StopReason.REMOTE


async def test_reset_reboots_the_charger(commanded: Commanded, gateway_env: GatewayEnv) -> None:
    reset = await commanded.commands.reset(commanded.charge_point_id, hard=False)
    assert reset.status is CommandStatus.ACCEPTED
    # The simulated charger reboots: it reconnects and boots again.
    # The simulator reconnects after a randomised back-off: allow for a busy machine.
    await gateway_env.wait_for(commanded.charge_point_id, "Charger.Connected", count=2, within=45)
