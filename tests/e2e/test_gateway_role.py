"""`csms serve --role gateway` as a real process: a charger connects and boots; SIGTERM drains it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys

import asyncpg
from ocpp.v16 import call

from csms.domain import charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import register_charger

_TIMEOUT_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_gateway_role_serves_chargers_and_records_their_disconnect_on_sigterm(
    database_url: str, redis_url: str, pool: asyncpg.Pool
) -> None:
    store_pool = await create_pool(database_url, max_size=2)
    store = EventStore(store_pool, database_url)
    charge_point_id, password = await register_charger(Repository(store, EventCodec(EVENT_TYPES)))
    await store.close()
    await store_pool.close()
    port = _free_port()
    environment = {
        **os.environ,
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_OCPP_PORT": str(port),
        "CSMS_LOG_LEVEL": "INFO",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms.cli", "serve", "--role", "gateway",
        env=environment, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    log: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(_TIMEOUT_SECONDS):
            while not any(entry.get("message") == "listening" for entry in log):
                line = await process.stderr.readline()
                assert line, f"csms serve exited early: {log}"
                log.append(json.loads(line))
            async with connect(f"ws://127.0.0.1:{port}/ocpp", charge_point_id, password) as charger:
                boot = await charger.call(
                    call.BootNotification(charge_point_model="Demo", charge_point_vendor="Acme")
                )
                assert boot.status == "Accepted"
                process.send_signal(signal.SIGTERM)
                remaining = await process.stderr.read()
                assert await process.wait() == 0, remaining.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    topics = [
        row["topic"]
        for row in await pool.fetch(
            "SELECT topic FROM events WHERE stream_id = $1 ORDER BY stream_version",
            charger_id_for(charge_point_id),
        )
    ]
    # The drain closed the charger with "going away" and recorded the disconnect before the process ended.
    assert topics[-3:] == ["Charger.Connected", "Charger.BootRecorded", "Charger.Disconnected"]
