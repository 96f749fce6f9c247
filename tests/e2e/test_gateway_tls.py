"""Security profile 2: with CSMS_OCPP_TLS_CERT and _KEY the gateway serves wss:// (Basic auth too)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp

from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from tests.e2e.processes import free_port, role_process
from tests.integration.gateway.conftest import basic_auth, register_charger


async def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    process = await asyncio.create_subprocess_exec(
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-keyout", str(key), "-out", str(cert),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert await process.wait() == 0
    return cert, key


async def test_tls_gateway_accepts_authenticated_chargers_only(
    database_url: str, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    cert, key = await _certificate(tmp_path)
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    charge_point_id, password = await register_charger(Repository(store, EventCodec(EVENT_TYPES)))
    await store.close()
    await pool.close()
    port = free_port()
    trust = ssl.create_default_context(cafile=str(cert))
    async with role_process(
        "gateway",
        CSMS_DATABASE_URL=database_url,
        CSMS_REDIS_URL=redis_url,
        CSMS_REDIS_KEY_PREFIX=redis_key_prefix,
        CSMS_OCPP_PORT=str(port),
        CSMS_OCPP_TLS_CERT=str(cert),
        CSMS_OCPP_TLS_KEY=str(key),
    ) as gateway:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(
                f"wss://127.0.0.1:{port}/ocpp/{charge_point_id}",
                protocols=("ocpp1.6",),
                headers=basic_auth(charge_point_id, password),
                ssl=trust,
            ) as websocket:
                await websocket.send_str('[2, "1", "Heartbeat", {}]')
                reply = await asyncio.wait_for(websocket.receive_json(), 10)
            try:
                await http.ws_connect(
                    f"wss://127.0.0.1:{port}/ocpp/{charge_point_id}", protocols=("ocpp1.6",), ssl=trust
                )
                unauthenticated = 101
            except aiohttp.WSServerHandshakeError as error:
                unauthenticated = error.status
            # Plain ws:// on the TLS port does not get through.
            plain_refused = False
            try:
                await http.ws_connect(
                    f"ws://127.0.0.1:{port}/ocpp/{charge_point_id}",
                    headers=basic_auth(charge_point_id, password),
                )
            except (aiohttp.ClientError, ConnectionError):
                plain_refused = True
        code, remaining = await gateway.terminate()

    assert code == 0, remaining
    assert reply[:2] == [3, "1"]
    assert unauthenticated == 401
    assert plain_refused
    assert any(str(entry.get("url", "")).startswith("https://") for entry in gateway.log)
