"""SIGTERM drains a real `csms serve --role gateway` process without losing anything it acknowledged.

The order under test: the listener closes first (a new charger is refused), idle chargers are closed at once
with 1001 "going away" (so they reconnect to another node), a charger whose CALL is being handled gets its
CALLRESULT first and the close right after, and the process exits 0 once the disconnects are recorded.

To have a CALL provably in flight when the signal arrives, the test holds the event store's ordering lock
(the advisory lock every append takes, `recorder.APPEND_LOCK`): the gateway's commit waits on it until the
test lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import asyncpg
import orjson
import pytest

from csms.domain import charger_id_for
from csms.eventstore.recorder import APPEND_LOCK, APPEND_LOCK_ROWS
from tests.e2e.processes import free_port, role_process
from tests.e2e.test_gateway_role import _register
from tests.integration.gateway.conftest import basic_auth

# How long `Gateway.close_all` waits for answers in flight and disconnects to be recorded.
_DRAIN_SECONDS = 10.0
# Process teardown beyond the drain: closing pools, Redis, the event loop.
_EXIT_SLACK_SECONDS = 10.0
_GOING_AWAY = 1001


@contextlib.asynccontextmanager
async def _charger(
    http: aiohttp.ClientSession, port: int, charge_point_id: str, password: str
) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A raw OCPP 1.6 socket, booted: the test reads and writes its frames itself."""
    async with http.ws_connect(
        f"ws://127.0.0.1:{port}/ocpp/{charge_point_id}",
        protocols=("ocpp1.6",),
        headers=basic_auth(charge_point_id, password),
    ) as websocket:
        await websocket.send_bytes(
            orjson.dumps(
                [2, "boot", "BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "Drain"}]
            )
        )
        reply = await asyncio.wait_for(websocket.receive(), 10)
        assert reply.type is aiohttp.WSMsgType.TEXT, reply
        assert orjson.loads(reply.data)[2]["status"] == "Accepted"
        yield websocket


async def _until_an_append_waits(pool: asyncpg.Pool) -> None:
    """Until some other session waits for the lock on the events table: the gateway's commit."""
    # Postgres tells no one when a lock starts being waited for: poll its lock table.
    query = f"SELECT count(*) FROM pg_locks WHERE NOT granted AND {APPEND_LOCK_ROWS}"
    async with asyncio.timeout(10):
        while True:
            if await pool.fetchval(query):
                return
            await asyncio.sleep(0.02)


async def _topics(pool: asyncpg.Pool, charge_point_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT topic FROM events WHERE stream_id = $1 ORDER BY stream_version",
        charger_id_for(charge_point_id),
    )
    return [row["topic"] for row in rows]


async def test_sigterm_refuses_new_chargers_answers_the_call_in_flight_then_goes_away(
    database_url: str, redis_url: str, redis_key_prefix: str, pool: asyncpg.Pool
) -> None:
    (busy_id, busy_password), (idle_id, idle_password), (late_id, late_password) = await _register(
        database_url, 3
    )
    port = free_port()
    environment = {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": redis_key_prefix,
        "CSMS_OCPP_PORT": str(port),
    }
    loop = asyncio.get_running_loop()
    status = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Preparing",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    async with (
        role_process("gateway", **environment) as gateway,
        aiohttp.ClientSession() as http,
        _charger(http, port, busy_id, busy_password) as busy,
        _charger(http, port, idle_id, idle_password) as idle,
    ):
        process = gateway.process
        assert process.stderr is not None
        async with pool.acquire() as blocker:
            transaction = blocker.transaction()
            await transaction.start()
            try:
                await blocker.execute(f"SELECT pg_advisory_xact_lock({APPEND_LOCK})")
                await busy.send_bytes(orjson.dumps([2, "in-flight", "StatusNotification", status]))
                await _until_an_append_waits(pool)

                process.send_signal(signal.SIGTERM)
                signalled_at = loop.time()
                # The idle charger is told at once to go elsewhere...
                closing = await asyncio.wait_for(idle.receive(), 10)
                assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, _GOING_AWAY), closing
                # ...by a process that still runs (the commit in flight holds it) but takes no one new.
                assert process.returncode is None
                with pytest.raises(aiohttp.ClientConnectorError):
                    await http.ws_connect(
                        f"ws://127.0.0.1:{port}/ocpp/{late_id}",
                        protocols=("ocpp1.6",),
                        headers=basic_auth(late_id, late_password),
                    )
                # The busy charger is not closed while its CALL is being handled: the close would overtake
                # the CALLRESULT, and the charger would send again what the store may already hold.
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(busy.receive(), 0.5)
            finally:
                await transaction.rollback()

        answer = await asyncio.wait_for(busy.receive(), _DRAIN_SECONDS)
        assert answer.type is aiohttp.WSMsgType.TEXT, answer
        assert orjson.loads(answer.data) == [3, "in-flight", {}]
        closing = await asyncio.wait_for(busy.receive(), _DRAIN_SECONDS)
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, _GOING_AWAY), closing

        # One signal only: the second would find the default action (terminate) restored mid-drain.
        remaining = await asyncio.wait_for(process.stderr.read(), _DRAIN_SECONDS + _EXIT_SLACK_SECONDS)
        code = await process.wait()
        took = loop.time() - signalled_at
    assert code == 0, remaining.decode()
    assert took < _DRAIN_SECONDS + _EXIT_SLACK_SECONDS

    # What was acknowledged is stored, and both disconnects were recorded before the process ended.
    busy_topics = await _topics(pool, busy_id)
    assert busy_topics[-2:] == ["Charger.ConnectorStatusChanged", "Charger.Disconnected"], busy_topics
    idle_topics = await _topics(pool, idle_id)
    assert idle_topics[-1] == "Charger.Disconnected", idle_topics
    assert "Charger.Connected" not in await _topics(pool, late_id)
