"""A simulated fleet (both protocol versions) against a real gateway process: every session is priced."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from csms.directories import IdTokenDirectory
from csms.domain import Driver, IdToken, IdTokenType, charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet
from tests.e2e.processes import free_port, role_process
from tests.integration.gateway.conftest import now, register_charger

_CHARGERS = 6


async def _setup(database_url: str, token: str) -> dict[str, str]:
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    try:
        repository = Repository(store, EventCodec(EVENT_TYPES))
        driver = Driver.register(uuid.uuid4(), f"{token.lower()}@example.com", "Fleet Driver", now())
        driver.add_id_token(IdToken(token, IdTokenType.RFID), now())
        await repository.save(driver)
        assert await IdTokenDirectory(pool).claim(token, driver.id)
        return dict([await register_charger(repository, evses=1) for _ in range(_CHARGERS)])
    finally:
        await store.close()
        await pool.close()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_simulated_fleet_charges_and_every_session_is_priced(
    database_url: str, redis_url: str, redis_key_prefix: str, pool: asyncpg.Pool, version: str
) -> None:
    token = f"FLEET-{version.replace('.', '')}"
    passwords = await _setup(database_url, token)
    port = free_port()
    config = ChargerConfig(
        url=f"ws://127.0.0.1:{port}/ocpp",
        version=version,  # type: ignore[arg-type]
        connectors=1,
        meter_interval=0.5,
        session_duration=2.0,
        idle_duration=0.5,
        id_tag=token,
    )
    fleet = Fleet(list(passwords), config, passwords=passwords, charging_share=1.0, seed=7)
    async with role_process(
        "gateway",
        CSMS_DATABASE_URL=database_url,
        CSMS_REDIS_URL=redis_url,
        CSMS_REDIS_KEY_PREFIX=redis_key_prefix,
        CSMS_OCPP_PORT=str(port),
    ) as gateway:
        stats = await fleet.run(duration=6.0)
        code, remaining = await gateway.terminate()
    assert code == 0, remaining

    assert stats.boots == {"Accepted": _CHARGERS}
    assert not stats.errors
    assert not stats.connect_failures
    assert all(action.errors == 0 and action.timeouts == 0 for action in stats.actions.values())
    assert stats.sessions_ended >= _CHARGERS
    charger_ids = [charger_id_for(cp) for cp in passwords]
    rows = await pool.fetch(
        """
        SELECT e.stream_id, array_agg(e.topic ORDER BY e.stream_version) AS topics
        FROM events e
        WHERE e.stream_id IN (
            SELECT stream_id FROM events
            WHERE topic = 'ChargingSession.StartedAtCharger' AND (data ->> 'charger_id')::uuid = ANY($1)
        )
        GROUP BY e.stream_id
        """,
        charger_ids,
    )
    ended = [r for r in rows if "ChargingSession.Stopped" in r["topics"]]
    assert len(ended) == stats.sessions_ended
    assert all("ChargingSession.Priced" in r["topics"] for r in ended)
    assert all("ChargingSession.MeterValuesRecorded" in r["topics"] for r in ended)
