"""App-started sessions end to end at the service level: request, remote start, charger start, remote stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from csms.domain import ChargingSession, ConnectorUnavailable, SessionConflict, SessionStatus, StopReason
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet
from tests.integration.gateway.conftest import GatewayEnv, now
from tests.json_logs import json_logs
from write_api.access import Actor, NotFound
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.commands import ChargerCommands, protocol_from_repository
from write_api.ocpp.outcome import CallOutcome
from write_api.sessions import ChargerOffline, SessionAnswer, SessionService


class NoSockets:
    async def call(
        self, charge_point_id: str, action: str, payload: dict[str, object], within: float
    ) -> CallOutcome:
        return CallOutcome.offline()


@dataclass
class Sessions:
    service: SessionService
    charge_point_id: str
    version: str


@pytest.fixture(params=["1.6", "2.0.1"])
async def sessions(
    request: pytest.FixtureRequest, gateway_env: GatewayEnv, redis_url: str, redis_key_prefix: str
) -> AsyncIterator[Sessions]:
    """A simulated charger with two EVSEs on the gateway; the service talks to it through Redis, as the
    write API (another process, holding no sockets) does."""
    version: str = request.param
    charge_point_id, password = await gateway_env.register_charger(evses=2)
    config = ChargerConfig(url=gateway_env.url, version=version, connectors=2, meter_interval=0.3)  # type: ignore[arg-type]
    fleet = Fleet([charge_point_id], config, passwords={charge_point_id: password}, charging_share=0.0)
    stop = asyncio.Event()
    running = asyncio.create_task(fleet.run(stop=stop))
    redis = Redis.from_url(redis_url)
    gateway_router = CommandRouter(redis, redis_key_prefix, "gateway", gateway_env.gateway)
    api_router = CommandRouter(redis, redis_key_prefix, "write-api", NoSockets())
    await gateway_router.start()
    await api_router.start()
    gateway_env.gateway.router = gateway_router
    try:
        topics = await gateway_env.wait_for(charge_point_id, "Charger.ConnectorStatusChanged", count=2)
        assert "Charger.BootRecorded" in topics
        await gateway_router.claim(charge_point_id)
        commands = ChargerCommands(
            api_router, protocol_from_repository(gateway_env.repository), timeout_seconds=5
        )
        service = SessionService(gateway_env.repository, commands, gateway_env.tokens, now)
        yield Sessions(service, charge_point_id, version)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
        gateway_env.gateway.router = None
        await api_router.close()
        await gateway_router.close()
        await redis.aclose()


async def _driver(env: GatewayEnv) -> uuid.UUID:
    return await env.register_driver(f"CARD-{uuid.uuid4().hex[:8]}")


async def _wait_status(env: GatewayEnv, session_id: uuid.UUID, status: SessionStatus) -> ChargingSession:
    async with asyncio.timeout(15):
        async with await env.store.subscribe(f"test-{uuid.uuid4()}", start_after=0) as events:
            while (
                session := await env.repository.get(session_id, ChargingSession, refresh=True)
            ).status != status:
                await events.next_batch()
    return session


async def test_start_and_stop_through_the_charger(sessions: Sessions, gateway_env: GatewayEnv) -> None:
    driver_id = await _driver(gateway_env)

    started = await sessions.service.start(driver_id, sessions.charge_point_id, evse_id=2)
    # The charger starts as soon as it accepted: its StartTransaction may be recorded before the API records
    # the acceptance, and then the answer already says STARTED.
    assert started.status in (SessionStatus.ACCEPTED, SessionStatus.STARTED)
    assert started.position is not None
    running = await _wait_status(gateway_env, started.session_id, SessionStatus.STARTED)
    assert (running.driver_id, running.evse_id) == (driver_id, 2)

    stopped = await sessions.service.stop(started.session_id, Actor("driver", driver_id=driver_id))
    assert stopped.charger_status == "Accepted"
    priced = await _wait_status(gateway_env, started.session_id, SessionStatus.PRICED)
    again = await sessions.service.stop(started.session_id, Actor("driver", driver_id=driver_id))

    assert priced.stop_reason is StopReason.REMOTE
    assert priced.breakdown is not None
    assert again.status is SessionStatus.PRICED  # idempotent


async def test_lines_after_a_start_or_stop_name_the_session_and_charger(
    sessions: Sessions, gateway_env: GatewayEnv
) -> None:
    driver_id = await _driver(gateway_env)
    answered = logging.getLogger("tests.sessions")

    async def request(action: Callable[[], Awaitable[SessionAnswer]]) -> SessionAnswer:
        # An API request's own task, as aiohttp gives each: its access log line comes after the service.
        answer = await action()
        answered.info("answered")
        return answer

    with json_logs() as log:
        started = await asyncio.create_task(
            request(lambda: sessions.service.start(driver_id, sessions.charge_point_id, evse_id=1))
        )
        await _wait_status(gateway_env, started.session_id, SessionStatus.STARTED)
        await asyncio.create_task(
            request(lambda: sessions.service.stop(started.session_id, Actor("driver", driver_id=driver_id)))
        )

    lines = log.about(message="answered")
    assert [(line["session_id"], line["charger_id"]) for line in lines] == [
        (str(started.session_id), sessions.charge_point_id)
    ] * 2


async def test_two_phones_on_one_connector_get_one_session(
    sessions: Sessions, gateway_env: GatewayEnv
) -> None:
    first, second = await _driver(gateway_env), await _driver(gateway_env)

    results = await asyncio.gather(
        sessions.service.start(first, sessions.charge_point_id, evse_id=1),
        sessions.service.start(second, sessions.charge_point_id, evse_id=1),
        return_exceptions=True,
    )

    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(accepted) == 1
    assert len(refused) == 1
    assert isinstance(refused[0], SessionConflict | ConnectorUnavailable)


async def test_another_driver_cannot_stop_or_see_a_session(
    sessions: Sessions, gateway_env: GatewayEnv
) -> None:
    owner, stranger = await _driver(gateway_env), await _driver(gateway_env)
    started = await sessions.service.start(owner, sessions.charge_point_id)

    with pytest.raises(NotFound):
        await sessions.service.stop(started.session_id, Actor("driver", driver_id=stranger))
    cancelled = await sessions.service.stop(started.session_id, Actor("admin"))
    assert cancelled.status in (SessionStatus.EXPIRED, SessionStatus.STARTED)


async def test_unknown_and_offline_chargers(sessions: Sessions, gateway_env: GatewayEnv) -> None:
    driver_id = await _driver(gateway_env)
    offline_id, _ = await gateway_env.register_charger()

    with pytest.raises(NotFound):
        await sessions.service.start(driver_id, "NO-SUCH-CHARGER")
    with pytest.raises(ChargerOffline):
        await sessions.service.start(driver_id, offline_id)
