"""Commands reach whichever instance holds the charger's socket, or come back OFFLINE / TIMED_OUT in time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest
from redis.asyncio import BlockingConnectionPool, Redis

from tests.integration.gateway_infra import eventually
from write_api.ocpp.command_router import CommandRouter, LocalCalls
from write_api.ocpp.outcome import CallOutcome, CallStatus

SLACK = 0.5
"""How late a TIMED_OUT may come (a busy event loop)."""


class Gateway:
    """The test's gateway: a real `LocalCalls` over a set of "connected" chargers, answering every call."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected: set[str] = set()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        within: float,
    ) -> CallOutcome:
        if charge_point_id not in self.connected:
            return CallOutcome.offline()
        self.calls.append((charge_point_id, action, payload))
        return CallOutcome.result({"status": "Accepted", "instance": self.name})


class MakeRouter(Protocol):
    def __call__(
        self, name: str, *, start: bool = True, local: LocalCalls | None = None, **options: Any
    ) -> Awaitable[tuple[CommandRouter, Gateway]]: ...


@pytest.fixture
async def make_router(redis_url: str, redis_key_prefix: str, redis: Redis) -> AsyncIterator[MakeRouter]:
    """Gateway instances, each with its own Redis client, closed after the test."""
    made: list[tuple[CommandRouter, Redis]] = []

    async def make(
        name: str, *, start: bool = True, local: LocalCalls | None = None, **options: Any
    ) -> tuple[CommandRouter, Gateway]:
        client = Redis.from_url(redis_url)
        gateway = Gateway(name)
        router = CommandRouter(
            client, redis_key_prefix, f"{name}:{uuid.uuid4().hex[:8]}", local or gateway, **options
        )
        made.append((router, client))
        if start:
            await router.start()
        return router, gateway

    yield make
    for router, client in made:
        await router.close()
        await client.aclose()


def charger() -> str:
    return f"CP-{uuid.uuid4().hex[:8]}"


async def connect(router: CommandRouter, gateway: Gateway, charge_point_id: str) -> None:
    gateway.connected.add(charge_point_id)
    await router.claim(charge_point_id)


async def timed(call: Callable[[], Awaitable[CallOutcome]]) -> tuple[CallOutcome, float]:
    started = time.monotonic()
    result = await call()
    return result, time.monotonic() - started


async def test_a_command_reaches_the_instance_holding_the_socket(make_router: MakeRouter) -> None:
    a, gateway_a = await make_router("a")
    b, gateway_b = await make_router("b")
    cp = charger()
    await connect(b, gateway_b, cp)

    result = await a.send(cp, "Reset", {"type": "Soft"}, timeout=2)

    assert result == CallOutcome.result({"status": "Accepted", "instance": "b"})
    assert gateway_b.calls == [(cp, "Reset", {"type": "Soft"})]
    assert gateway_a.calls == []


async def test_a_charger_held_here_is_called_directly(
    make_router: MakeRouter, redis: Redis, redis_key_prefix: str
) -> None:
    a, gateway_a = await make_router("a")
    cp = charger()
    await connect(a, gateway_a, cp)

    result = await a.send(cp, "UnlockConnector", {"connectorId": 1}, timeout=2)

    assert result.status is CallStatus.RESULT
    assert gateway_a.calls == [(cp, "UnlockConnector", {"connectorId": 1})]
    assert await redis.exists(f"{redis_key_prefix}commands:{a.instance_id}") == 0


async def test_an_unknown_charger_is_offline(make_router: MakeRouter) -> None:
    a, _ = await make_router("a")

    result, elapsed = await timed(lambda: a.send(charger(), "Reset", {"type": "Soft"}, timeout=2))

    assert result == CallOutcome.offline()
    assert elapsed < 1


async def test_an_owner_that_stopped_consuming_times_out_in_time(make_router: MakeRouter) -> None:
    a, _ = await make_router("a")
    b, gateway_b = await make_router("b", start=False)  # its claim stands, nothing reads its stream: a crash
    cp = charger()
    await connect(b, gateway_b, cp)

    result, elapsed = await timed(lambda: a.send(cp, "Reset", {"type": "Soft"}, timeout=0.3))

    assert result == CallOutcome.timed_out()
    assert 0.25 <= elapsed <= 0.3 + SLACK


async def test_a_closed_owners_chargers_are_offline(make_router: MakeRouter) -> None:
    a, _ = await make_router("a")
    b, gateway_b = await make_router("b")
    cp = charger()
    await connect(b, gateway_b, cp)

    await b.close()

    assert await a.send(cp, "Reset", {"type": "Soft"}, timeout=2) == CallOutcome.offline()
    assert gateway_b.calls == []


async def test_a_request_past_its_deadline_when_picked_up_is_not_sent(make_router: MakeRouter) -> None:
    a, _ = await make_router("a")
    b, gateway_b = await make_router("b", start=False)
    cp = charger()
    await connect(b, gateway_b, cp)
    late = await a.send(cp, "RemoteStartTransaction", {"idTag": "late"}, timeout=0.1)
    assert late == CallOutcome.timed_out()

    await b.start()  # picks up the stale request first, then this one
    result = await a.send(cp, "RemoteStartTransaction", {"idTag": "fresh"}, timeout=2)

    assert result.status is CallStatus.RESULT
    assert gateway_b.calls == [(cp, "RemoteStartTransaction", {"idTag": "fresh"})]


async def test_the_newest_connection_wins_and_a_late_release_keeps_it(make_router: MakeRouter) -> None:
    a, gateway_a = await make_router("a")
    b, gateway_b = await make_router("b")
    sender, _ = await make_router("api")
    cp = charger()
    await connect(b, gateway_b, cp)

    # The charger reconnects to A; B's old socket is gone but B has not noticed yet.
    gateway_b.connected.discard(cp)
    await connect(a, gateway_a, cp)
    assert (await sender.send(cp, "Reset", {}, timeout=2)).payload == {"status": "Accepted", "instance": "a"}

    await b.refresh()  # B learns it no longer holds the charger, and stops calling its stale socket
    assert (await b.send(cp, "Reset", {}, timeout=2)).payload == {"status": "Accepted", "instance": "a"}

    assert await b.release(cp) is False  # B's socket finally closes
    assert await sender.owner(cp) == a.instance_id
    assert (await sender.send(cp, "Reset", {}, timeout=2)).payload == {"status": "Accepted", "instance": "a"}
    assert gateway_b.calls == []
    assert len(gateway_a.calls) == 3

    assert await a.release(cp) is True
    assert await sender.send(cp, "Reset", {}, timeout=2) == CallOutcome.offline()


async def test_a_dead_instances_chargers_go_offline_when_the_registry_expires(
    make_router: MakeRouter,
) -> None:
    a, _ = await make_router("a")
    b, gateway_b = await make_router("b", start=False, registry_ttl=0.2)  # never refreshes: dead
    cp = charger()
    await connect(b, gateway_b, cp)
    assert await a.owner(cp) == b.instance_id

    async def expired() -> bool:
        return await a.owner(cp) is None

    await eventually(expired)

    assert await a.send(cp, "Reset", {"type": "Soft"}, timeout=2) == CallOutcome.offline()


async def test_refresh_extends_the_claims_held_here_and_restores_lost_ones(
    make_router: MakeRouter, redis: Redis, redis_key_prefix: str
) -> None:
    b, gateway_b = await make_router("b", start=False, registry_ttl=60)
    kept, lost = charger(), charger()
    await connect(b, gateway_b, kept)
    await connect(b, gateway_b, lost)
    await redis.pexpire(f"{redis_key_prefix}charger-instance:{kept}", 500)
    await redis.delete(f"{redis_key_prefix}charger-instance:{lost}")  # e.g. Redis restarted empty

    await b.refresh()

    assert await redis.pttl(f"{redis_key_prefix}charger-instance:{kept}") > 50_000
    assert await b.owner(lost) == b.instance_id


class GatedGateway:
    """Holds every call until released, recording how many were in flight at once."""

    def __init__(self) -> None:
        self.active = 0
        self.most_active = 0
        self.two_active = asyncio.Event()
        self.release = asyncio.Event()

    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        within: float,
    ) -> CallOutcome:
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        if self.active == 2:
            self.two_active.set()
        try:
            await self.release.wait()
        finally:
            self.active -= 1
        return CallOutcome.result({"status": "Accepted"})


async def test_the_owner_serves_a_bounded_number_of_calls_at_once(
    make_router: MakeRouter, redis: Redis, redis_key_prefix: str
) -> None:
    a, _ = await make_router("a")
    gated = GatedGateway()
    b, _ = await make_router("b", local=gated, max_concurrency=2)
    chargers = [charger() for _ in range(5)]
    for cp in chargers:
        await b.claim(cp)

    sends = [asyncio.create_task(a.send(cp, "Reset", {}, timeout=3)) for cp in chargers]

    async def all_queued() -> bool:
        return await redis.xlen(f"{redis_key_prefix}commands:{b.instance_id}") == 5

    async with asyncio.timeout(2):
        await gated.two_active.wait()
    await eventually(all_queued)
    await asyncio.sleep(0.1)  # a third call would have started by now: nothing else to wait for
    assert gated.active == 2
    gated.release.set()

    results = await asyncio.gather(*sends)
    assert [r.status for r in results] == [CallStatus.RESULT] * 5
    assert gated.most_active == 2


class FailingGateway:
    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        within: float,
    ) -> CallOutcome:
        raise RuntimeError("socket state corrupted")


async def test_a_gateway_failure_is_answered_as_an_internal_error(make_router: MakeRouter) -> None:
    a, _ = await make_router("a")
    b, _ = await make_router("b", local=FailingGateway())
    cp = charger()
    await b.claim(cp)

    result = await a.send(cp, "Reset", {}, timeout=2)

    assert (result.status, result.error_code) == (CallStatus.CALL_ERROR, "InternalError")


@pytest.mark.parametrize(
    "result",
    [
        CallOutcome.result({"status": "Rejected", "nested": {"a": [1, 2]}}),
        CallOutcome.call_error("NotSupported", "no such connector"),
        CallOutcome.not_booted(),
        CallOutcome.offline(),
        CallOutcome.timed_out(),
    ],
)
def test_a_result_survives_its_trip_through_redis(result: CallOutcome) -> None:
    assert CallOutcome.from_json(result.to_json()) == result


class SlowGateway(Gateway):
    """Answers after `delay` seconds, as a charger on a slow link does."""

    def __init__(self, name: str, delay: float) -> None:
        super().__init__(name)
        self.delay = delay

    async def call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], within: float
    ) -> CallOutcome:
        await asyncio.sleep(self.delay)
        return await super().call(charge_point_id, action, payload, within)


async def test_an_answer_slower_than_the_senders_socket_timeout_still_arrives(
    make_router: MakeRouter, redis_url: str, redis_key_prefix: str
) -> None:
    slow = SlowGateway("slow", delay=1.0)
    owner, _ = await make_router("owner", local=slow)
    cp = charger()
    slow.connected.add(cp)
    await owner.claim(cp)
    # The sender's client gives up on any single read after 0.3 s (redis-py's default is 5 s).
    impatient = Redis.from_url(redis_url, socket_timeout=0.3)
    sender = CommandRouter(impatient, redis_key_prefix, f"sender:{uuid.uuid4().hex[:8]}", Gateway("sender"))
    await sender.start()
    try:
        result = await sender.send(cp, "Reset", {"type": "Soft"}, timeout=5)
    finally:
        await sender.close()
        await impatient.aclose()

    assert result == CallOutcome.result({"status": "Accepted", "instance": "slow"})


class EchoGateway(Gateway):
    """Answers each call with the charger and payload it was for."""

    async def call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], within: float
    ) -> CallOutcome:
        await asyncio.sleep(0.1)  # a charger on a slow link
        return CallOutcome.result({"charger": charge_point_id, "payload": payload})


async def test_many_calls_in_flight_each_get_their_own_answer(
    make_router: MakeRouter, redis_url: str, redis_key_prefix: str
) -> None:
    echo = EchoGateway("echo")
    owner, _ = await make_router("owner", local=echo)
    chargers = [charger() for _ in range(200)]
    for cp in chargers:
        echo.connected.add(cp)
        await owner.claim(cp)
    # 200 calls in flight on four connections: every answer finds the call it belongs to.
    small = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=4, timeout=5))
    sender = CommandRouter(small, redis_key_prefix, f"sender:{uuid.uuid4().hex[:8]}", Gateway("sender"))
    await sender.start()
    try:
        results = await asyncio.gather(
            *(sender.send(cp, "GetConfiguration", {"key": [cp[-4:]]}, timeout=5) for cp in chargers)
        )
    finally:
        await sender.close()
        await small.aclose()

    assert results == [CallOutcome.result({"charger": cp, "payload": {"key": [cp[-4:]]}}) for cp in chargers]
