"""Presence: who holds each charger's socket and when it was last heard from, batched into Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from tests.integration.gateway_infra import eventually
from write_api.ocpp.presence import Presence, PresenceInfo

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class CountingConnection(Connection):
    """A real connection that counts what it writes to the socket: one write per command or pipeline."""

    writes = 0

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)


def charger() -> str:
    return f"CP-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def counting_redis(redis_url: str, redis: Redis) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, connection_class=CountingConnection)
    yield client
    await client.aclose()


async def test_a_connected_charger_is_present_until_it_disconnects(
    redis: Redis, redis_key_prefix: str
) -> None:
    presence = Presence(redis, redis_key_prefix, "gw-a")
    cp = charger()

    await presence.connected(cp, "ocpp2.0.1", "conn-1", T0)

    assert await presence.get(cp) == PresenceInfo(cp, "gw-a", "ocpp2.0.1", "conn-1", T0, T0)
    assert 0 < await redis.pttl(f"{redis_key_prefix}presence:{cp}") <= 90_000
    assert await presence.count_connected() == 1
    assert await presence.get(charger()) is None

    assert await presence.disconnected(cp, "conn-1", T0 + timedelta(minutes=5)) is True

    assert await presence.get(cp) is None
    assert await presence.count_connected() == 0
    presence.seen(cp, T0 + timedelta(minutes=6))  # a frame racing the close: ignored
    await presence.flush()
    assert await presence.get(cp) is None


async def test_seen_writes_nothing_until_one_flush_writes_every_charger_in_one_round_trip(
    counting_redis: Redis, redis_key_prefix: str
) -> None:
    presence = Presence(counting_redis, redis_key_prefix, "gw-a", refresh_interval=3600)
    chargers = [charger() for _ in range(200)]
    for cp in chargers:
        await presence.connected(cp, "ocpp1.6", f"conn-{cp}", T0)
    await presence.flush()  # the first flush also refreshes every TTL (and loads the Lua script)
    later = T0 + timedelta(seconds=30)
    CountingConnection.writes = 0

    for cp in chargers:
        presence.seen(cp, later - timedelta(seconds=1))
        presence.seen(cp, later)
    assert CountingConnection.writes == 0
    assert await counting_redis.hget(f"{redis_key_prefix}presence:{chargers[0]}", "last_seen") == (
        T0.isoformat().encode()
    )
    CountingConnection.writes = 0

    await presence.flush()

    assert CountingConnection.writes == 1
    infos = [await presence.get(cp) for cp in chargers]
    assert all(info is not None and info.last_seen == later for info in infos)


async def test_a_live_instance_refreshes_the_ttl_of_its_chargers(redis: Redis, redis_key_prefix: str) -> None:
    presence = Presence(redis, redis_key_prefix, "gw-a", ttl_seconds=60, refresh_interval=0)
    cp = charger()
    await presence.connected(cp, "ocpp1.6", "conn-1", T0)
    key = f"{redis_key_prefix}presence:{cp}"
    await redis.pexpire(key, 1000)  # as if most of the TTL had passed

    await presence.flush()

    assert await redis.pttl(key) > 50_000


async def test_a_crashed_instances_chargers_expire(redis: Redis, redis_key_prefix: str) -> None:
    presence = Presence(redis, redis_key_prefix, "gw-dead", ttl_seconds=0.2)
    cp = charger()
    await presence.connected(cp, "ocpp1.6", "conn-1", T0)
    # The instance "crashes": nothing flushes any more.

    async def expired() -> bool:
        return await presence.get(cp) is None

    await eventually(expired)
    assert await presence.count_connected() == 0


async def test_a_replaced_connections_late_updates_leave_the_new_one_alone(
    redis: Redis, redis_key_prefix: str
) -> None:
    old = Presence(redis, redis_key_prefix, "gw-a")
    new = Presence(redis, redis_key_prefix, "gw-b")
    cp = charger()
    await old.connected(cp, "ocpp1.6", "conn-1", T0)
    await new.connected(cp, "ocpp2.0.1", "conn-2", T0 + timedelta(seconds=10))

    old.seen(cp, T0 + timedelta(seconds=20))  # a last frame on the old socket
    await old.flush()
    assert await old.disconnected(cp, "conn-1", T0 + timedelta(seconds=30)) is False

    t1 = T0 + timedelta(seconds=10)
    assert await new.get(cp) == PresenceInfo(cp, "gw-b", "ocpp2.0.1", "conn-2", t1, t1)


async def test_a_replaced_connection_on_the_same_instance_keeps_the_new_one(
    redis: Redis, redis_key_prefix: str
) -> None:
    presence = Presence(redis, redis_key_prefix, "gw-a")
    cp = charger()
    await presence.connected(cp, "ocpp1.6", "conn-1", T0)
    await presence.connected(cp, "ocpp1.6", "conn-2", T0 + timedelta(seconds=1))

    assert await presence.disconnected(cp, "conn-1", T0 + timedelta(seconds=2)) is False
    presence.seen(cp, T0 + timedelta(seconds=3))
    await presence.flush()

    info = await presence.get(cp)
    assert info is not None
    assert (info.connection_id, info.last_seen) == ("conn-2", T0 + timedelta(seconds=3))


async def test_a_flush_already_under_way_cannot_resurrect_a_disconnected_charger(
    redis: Redis, redis_key_prefix: str
) -> None:
    # Two views of the same connection: `racing` stands for a flush that was built before the disconnect and
    # reaches Redis after it.
    presence = Presence(redis, redis_key_prefix, "gw-a")
    racing = Presence(redis, redis_key_prefix, "gw-a")
    cp = charger()
    await racing.connected(cp, "ocpp1.6", "conn-1", T0)
    await presence.connected(cp, "ocpp1.6", "conn-1", T0)
    racing.seen(cp, T0 + timedelta(seconds=1))

    assert await presence.disconnected(cp, "conn-1", T0 + timedelta(seconds=2)) is True
    await racing.flush()

    assert await presence.get(cp) is None


async def test_the_flusher_runs_in_the_background_and_close_flushes(
    redis: Redis, redis_key_prefix: str
) -> None:
    presence = Presence(redis, redis_key_prefix, "gw-a", flush_interval=0.02)
    cp = charger()
    await presence.connected(cp, "ocpp1.6", "conn-1", T0)
    await presence.start()
    try:
        presence.seen(cp, T0 + timedelta(seconds=1))

        async def flushed() -> bool:
            info = await presence.get(cp)
            return info is not None and info.last_seen == T0 + timedelta(seconds=1)

        await eventually(flushed)
    finally:
        presence.seen(cp, T0 + timedelta(seconds=2))
        await presence.close()

    info = await presence.get(cp)
    assert info is not None
    assert info.last_seen == T0 + timedelta(seconds=2)
