"""`csms serve --workers N`: several processes per role share one port, `/metrics` speaks for all of them,
a worker that dies is replaced, and SIGTERM drains every worker before the supervisor exits."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import psutil
import websockets
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from tests.e2e.processes import free_port, serve_process
from tests.integration.gateway.conftest import basic_auth, register_charger
from tests.integration.gateway_infra import eventually

_CHARGERS = 16  # spread by the kernel over two workers: all on one has a chance of 2 in 65,536
_BOOT = {"chargePointModel": "M", "chargePointVendor": "V"}


def _workers(supervisor_pid: int, role: str) -> list[psutil.Process]:
    """The supervisor's live worker processes serving `role` (not one killed and not yet reaped)."""
    workers = []
    for child in psutil.Process(supervisor_pid).children():
        with contextlib.suppress(psutil.Error):  # gone, or a zombie: it serves nothing
            if ["--role", role] == child.cmdline()[-3:-1]:
                workers.append(child)
    return workers


def _established(worker: psutil.Process, port: int) -> int:
    return sum(
        1
        for connection in worker.net_connections(kind="tcp")
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_ESTABLISHED
    )


async def _samples(http: aiohttp.ClientSession, url: str, name: str) -> list[Sample]:
    async with http.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return [
        sample
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def _metric(http: aiohttp.ClientSession, url: str, name: str, **labels: str) -> float:
    samples = await _samples(http, url, name)
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


async def _per_pid(http: aiohttp.ClientSession, url: str, name: str) -> dict[int, float]:
    """A per-process series by the `pid` of the worker it describes."""
    return {int(sample.labels["pid"]): sample.value for sample in await _samples(http, url, name)}


async def _process_series_of_each_worker(
    http: aiohttp.ClientSession, url: str, workers: list[psutil.Process]
) -> None:
    """Whichever worker answers, the scrape has every worker's start time and descriptors, by `pid`: what
    the restart and file descriptor alerts read, where prometheus-client's process_* are not exported."""
    started = await _per_pid(http, url, "csms_process_start_time_seconds")
    assert started == {worker.pid: worker.create_time() for worker in workers}
    limits = await _per_pid(http, url, "csms_process_max_fds")
    assert limits == {worker.pid: worker.rlimit(psutil.RLIMIT_NOFILE)[0] for worker in workers}
    open_fds = await _per_pid(http, url, "csms_process_open_fds")
    assert set(open_fds) == set(limits)
    assert all(0 < count < limits[pid] for pid, count in open_fds.items()), open_fds
    # The role's CPU time, all workers together: what the dashboard's CPU panel reads.
    assert await _metric(http, url, "csms_process_cpu_seconds_total") > 0


@contextlib.asynccontextmanager
async def _booted_chargers(url: str, credentials: list[tuple[str, str]]) -> AsyncIterator[None]:
    """The chargers connected and booted (OCPP 1.6, a CALL and its answer each), then closed all at once."""

    async def booted(charge_point_id: str, password: str) -> websockets.ClientConnection:
        socket = await websockets.connect(
            f"{url}/{charge_point_id}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=basic_auth(charge_point_id, password),
            open_timeout=20,
            close_timeout=2,
        )
        await socket.send(orjson.dumps([2, "boot", "BootNotification", _BOOT]).decode())
        answer = orjson.loads(await asyncio.wait_for(socket.recv(), 20))
        assert answer[:2] == [3, "boot"], answer
        return socket

    sockets = await asyncio.gather(*(booted(cp, password) for cp, password in credentials))
    try:
        yield
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)


async def test_workers_share_ports_report_as_one_and_drain_on_sigterm(
    database_url: str, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    try:
        repository = Repository(store, EventCodec(EVENT_TYPES))
        credentials = [await register_charger(repository) for _ in range(_CHARGERS)]
    finally:
        await store.close()
        await pool.close()
    ocpp_port, write_port = free_port(), free_port()
    environment = {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": redis_key_prefix,
        "CSMS_DATA_DIR": str(tmp_path),
        "CSMS_OCPP_PORT": str(ocpp_port),
        "CSMS_WRITE_API_PORT": str(write_port),
    }
    metrics = f"http://127.0.0.1:{ocpp_port}/metrics"
    ocpp = f"ws://127.0.0.1:{ocpp_port}/ocpp"
    async with (
        serve_process(("gateway", "write-api"), environment, args=("--workers", "2"), listeners=4) as node,
        # A new connection per request (so the kernel picks a worker each time), never waiting long for one.
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True), timeout=aiohttp.ClientTimeout(total=10)
        ) as http,
    ):
        node.follow_log()  # four workers log every connection: keep their pipe drained
        supervisor = node.process.pid
        gateways, write_apis = _workers(supervisor, "gateway"), _workers(supervisor, "write-api")
        assert (len(gateways), len(write_apis)) == (2, 2)
        async with http.get(f"http://127.0.0.1:{write_port}/healthz") as health:
            assert health.status == 200
        for _ in range(2):  # a new connection each time: likely answered by each worker once
            await _process_series_of_each_worker(http, metrics, gateways)
            await _process_series_of_each_worker(http, f"http://127.0.0.1:{write_port}/metrics", write_apis)

        async with _booted_chargers(ocpp, credentials):
            spread = [_established(worker, ocpp_port) for worker in gateways]
            assert sum(spread) == _CHARGERS, spread
            assert min(spread) > 0, spread
            # Whichever worker answers the scrape, it counts every worker's chargers and messages.
            for _ in range(4):
                assert (
                    await _metric(http, metrics, "csms_ocpp_connected_chargers", protocol="ocpp1.6")
                    == _CHARGERS
                )
                assert (
                    await _metric(
                        http, metrics, "csms_ocpp_messages_total", action="BootNotification", result="result"
                    )
                    == _CHARGERS
                )

            # A worker killed outright is replaced; its chargers no longer count as connected.
            victim = max(gateways, key=lambda worker: _established(worker, ocpp_port))
            lost = _established(victim, ocpp_port)
            victim.send_signal(signal.SIGKILL)

            async def replaced_worker_listening() -> bool:
                pids = {worker.pid for worker in _workers(supervisor, "gateway")}
                return len(pids) == 2 and victim.pid not in pids

            async def victims_chargers_gone() -> bool:
                connected = await _metric(http, metrics, "csms_ocpp_connected_chargers", protocol="ocpp1.6")
                return connected == _CHARGERS - lost

            # The replacement is a new `pid` series and the victim's is gone: a restart, to the restart alert.
            async def replacement_reported() -> bool:
                started = await _per_pid(http, metrics, "csms_process_start_time_seconds")
                return set(started) == {worker.pid for worker in _workers(supervisor, "gateway")}

            await eventually(replaced_worker_listening, within=30)
            await eventually(victims_chargers_gone, within=30)
            await eventually(replacement_reported, within=30)
            replaced = _workers(supervisor, "gateway")

        code, _log = await node.terminate()
        assert code == 0, _log[-3000:]
        assert not any(worker.is_running() for worker in _workers_gone(replaced + write_apis))


def _workers_gone(workers: list[psutil.Process]) -> list[psutil.Process]:
    """The given workers that still exist as live (not zombie) processes."""
    alive = []
    for worker in workers:
        with contextlib.suppress(psutil.NoSuchProcess):
            if worker.status() != psutil.STATUS_ZOMBIE:
                alive.append(worker)
    return alive
