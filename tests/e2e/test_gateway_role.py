"""`csms serve --role gateway` as real processes: chargers connect and boot, commands cross processes through
Redis, and SIGTERM drains the chargers."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from ocpp.v16 import call
from redis.asyncio import Redis

from csms.domain import charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from tests.e2e.processes import free_port, role_process
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import register_charger
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.outcome import CallOutcome, CallStatus
from write_api.ocpp.presence import Presence


class NoSockets:
    """This test process holds no charger connections: every command must travel to a gateway."""

    async def call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], within: float
    ) -> CallOutcome:
        return CallOutcome.offline()


async def _register(database_url: str, count: int) -> list[tuple[str, str]]:
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    try:
        repository = Repository(store, EventCodec(EVENT_TYPES))
        return [await register_charger(repository) for _ in range(count)]
    finally:
        await store.close()
        await pool.close()


async def test_gateway_role_serves_chargers_and_records_their_disconnect_on_sigterm(
    database_url: str, redis_url: str, redis_key_prefix: str, pool: asyncpg.Pool
) -> None:
    [(charge_point_id, password)] = await _register(database_url, 1)
    port = free_port()
    environment = {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": redis_key_prefix,
        "CSMS_OCPP_PORT": str(port),
    }
    async with (
        role_process("gateway", **environment) as gateway,
        connect(f"ws://127.0.0.1:{port}/ocpp", charge_point_id, password) as charger,
    ):
        boot = await charger.call(
            call.BootNotification(charge_point_model="Demo", charge_point_vendor="Acme")
        )
        assert boot.status == "Accepted"
        code, remaining = await gateway.terminate()
        assert code == 0, remaining

    topics = [
        row["topic"]
        for row in await pool.fetch(
            "SELECT topic FROM events WHERE stream_id = $1 ORDER BY stream_version",
            charger_id_for(charge_point_id),
        )
    ]
    # The drain closed the charger with "going away" and recorded the disconnect before the process ended.
    assert topics[-3:] == ["Charger.Connected", "Charger.BootRecorded", "Charger.Disconnected"]


async def test_commands_reach_chargers_on_either_of_two_gateway_processes(
    database_url: str, redis_url: str, redis_key_prefix: str
) -> None:
    (first_id, first_password), (second_id, second_password) = await _register(database_url, 2)
    ports = free_port(), free_port()
    common = {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": redis_key_prefix,
    }
    redis = Redis.from_url(redis_url)
    router = CommandRouter(redis, redis_key_prefix, "e2e-test", NoSockets())
    await router.start()
    try:
        async with (
            role_process("gateway", CSMS_OCPP_PORT=str(ports[0]), **common),
            role_process("gateway", CSMS_OCPP_PORT=str(ports[1]), **common),
            connect(f"ws://127.0.0.1:{ports[0]}/ocpp", first_id, first_password) as first,
            connect(f"ws://127.0.0.1:{ports[1]}/ocpp", second_id, second_password) as second,
        ):
            for charger in (first, second):
                await charger.call(
                    call.BootNotification(charge_point_model="Demo", charge_point_vendor="Acme")
                )
            results = await asyncio.gather(
                router.send(first_id, "Reset", {"type": "Soft"}, 10),
                router.send(second_id, "Reset", {"type": "Hard"}, 10),
                router.send("NOT-CONNECTED", "Reset", {"type": "Hard"}, 10),
            )
            presence = Presence(redis, redis_key_prefix, "e2e-test")
            owners = [(await presence.get(cp)) for cp in (first_id, second_id)]
    finally:
        await router.close()
        await redis.aclose()

    assert [r.status for r in results] == [CallStatus.RESULT, CallStatus.RESULT, CallStatus.OFFLINE]
    assert results[0].payload == {"status": "Accepted"}
    assert (first.resets, second.resets) == (["Soft"], ["Hard"])
    assert owners[0] is not None
    assert owners[1] is not None
    assert owners[0].instance_id != owners[1].instance_id  # two processes, one charger each
