"""A benchmark's throw-away surroundings, all removed when it ends: scratch database, Redis key prefix,
registered chargers, server processes and client processes, and the probes that watch them (RSS, CPU).

Benchmarks share these so that each measures the same way: servers and load generators run in processes of
their own (so neither's CPU counts against the other) and listen or connect only on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import resource
import signal
import socket
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psutil
from redis.asyncio import Redis

from csms.credentials import hash_charger_password, new_charger_password
from csms.directories import IdTokenDirectory
from csms.domain import (
    Address,
    Charger,
    Company,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    Coordinates,
    Currency,
    Driver,
    Evse,
    IdToken,
    IdTokenType,
    PowerType,
    PriceComponent,
    Station,
    Tariff,
    TariffDimension,
    TariffElement,
    charger_id_for,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.migrations import migrate
from loadtests.simulator.cli import run_event_loop
from loadtests.simulator.fleet import charger_ids
from loadtests.simulator.stats import LatencyHistogram

HOST: Final = "127.0.0.1"
"""Every server listens here and every client connects here: benchmarks send nothing off the machine."""

POSTGRES_NOTE: Final = (
    " Postgres CPU: the backends of the run's scratch database plus the server's shared helper processes."
)
"""How the tables' Postgres CPU is counted (see `postgres_pids`)."""

_START_TIMEOUT_SECONDS = 60.0
# The gateway records every charger's disconnect on SIGTERM (10 s drain, then the appends): give it time.
_STOP_TIMEOUT_SECONDS = 60.0

# --------------------------------------------------------------------------- database and Redis


@contextlib.asynccontextmanager
async def scratch_database(database_url: str) -> AsyncIterator[str]:
    """A throw-away database next to the configured one, so benchmarks never touch real data."""
    name = f"csms_bench_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(urlsplit(database_url)._replace(path="/postgres"))
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(database_url)._replace(path="/" + name))
    try:
        await migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def scratch_redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this run's own; every key under it is deleted afterwards (nothing else is touched)."""
    prefix = f"csms-bench-{uuid.uuid4().hex[:8]}:"
    try:
        yield prefix
    finally:
        redis = Redis.from_url(redis_url)
        try:
            batch: list[bytes] = []
            async for key in redis.scan_iter(match=prefix + "*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    await redis.delete(*batch)
                    batch.clear()
            if batch:
                await redis.delete(*batch)
        finally:
            await redis.aclose()


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/")


async def count_events(database_url: str, topic: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count = await connection.fetchval("SELECT count(*) FROM events WHERE topic = $1", topic)
    finally:
        await connection.close()
    return int(count)


# --------------------------------------------------------------------------- registered chargers


@dataclass(frozen=True, slots=True)
class StationPoint:
    """A registered station and where it stands: what "stations near me" queries are aimed at."""

    station_id: str
    latitude: float
    longitude: float
    published: bool


@dataclass(frozen=True, slots=True)
class RegisteredFleet:
    """Chargers registered in a scratch database, and an RFID token the gateway accepts for all of them."""

    passwords: dict[str, str]
    """Charge point id -> password, in id order."""
    id_token: str
    seconds: float
    """How long registering took."""
    stations: tuple[StationPoint, ...] = ()
    """The chargers' stations, in the order the chargers fill them."""


async def register_fleet(
    database_url: str,
    count: int,
    *,
    id_prefix: str = "BENCH-",
    batch_size: int = 500,
    concurrency: int = 8,
    per_station: int | None = None,
) -> RegisteredFleet:
    """`count` one-connector chargers of one company (with a tariff), and a driver's RFID token.

    With `per_station`, the chargers stand `per_station` to a published station, the stations spread over a
    city as a real network's are (what the read models see); without it, all of them at one unpublished
    station (all the gateway benchmarks need). Built as aggregates and saved `batch_size` per
    `Repository.save` call, `concurrency` calls at a time: 10,000 chargers take seconds. Passwords are
    hashed as the gateway checks them.
    """
    began = time.perf_counter()
    at = datetime.now(UTC)
    pool = await create_pool(database_url, max_size=concurrency + 2)
    store = EventStore(pool, database_url)
    try:
        repository = Repository(store, EventCodec(EVENT_TYPES))
        company = Company.create(uuid.uuid4(), "Benchmark Charging", at)
        stations = [
            Station.create(
                uuid.uuid4(),
                company.id,
                f"Benchmark station {n}",
                Address(f"Main street {n + 1}", "Utrecht", "3511 AA", "NLD"),
                # A grid of about 1 km cells around the centre of Utrecht.
                Coordinates(
                    Decimal("52.09") + Decimal(n // 40) / 100, Decimal("5.12") + Decimal(n % 40) / 100
                ),
                "Europe/Amsterdam",
                at,
            )
            for n in range(1 if per_station is None else -(-count // per_station))
        ]
        tariff = Tariff.create(
            uuid.uuid4(),
            company.id,
            "Energy",
            Currency.EUR,
            Decimal("21"),
            (TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal("0.30")),)),),
            at,
        )
        for station in stations:
            station.assign_tariff(tariff.id, at)
            if per_station is not None:
                station.publish(at)
        token = f"BENCH{uuid.uuid4().hex[:10].upper()}"
        driver = Driver.register(uuid.uuid4(), f"{token.lower()}@example.com", "Benchmark Driver", at)
        driver.add_id_token(IdToken(token, IdTokenType.RFID), at)
        await repository.save(company, *stations, tariff, driver)
        if not await IdTokenDirectory(pool).claim(token, driver.id):
            raise RuntimeError(f"token {token} is held by another driver")

        connector = Connector(
            1, ConnectorStandard.IEC_62196_T2, ConnectorFormat.SOCKET, PowerType.AC_3_PHASE, 22_000
        )
        evses = (Evse(1, (connector,)),)
        passwords = {cp: new_charger_password() for cp in charger_ids(id_prefix, count)}
        share = count if per_station is None else per_station
        chargers = [
            Charger.register(
                charger_id_for(cp),
                company.id,
                stations[n // share].id,
                cp,
                hash_charger_password(pw),
                evses,
                at,
            )
            for n, (cp, pw) in enumerate(passwords.items())
        ]
        limit = asyncio.Semaphore(concurrency)

        async def save(batch: Sequence[Charger]) -> None:
            async with limit:
                await repository.save(*batch)

        await asyncio.gather(
            *(save(chargers[i : i + batch_size]) for i in range(0, len(chargers), batch_size))
        )
    finally:
        await store.close()
        await pool.close()
    points = tuple(
        StationPoint(
            str(station.id),
            float(station.coordinates.latitude),
            float(station.coordinates.longitude),
            per_station is not None,
        )
        for station in stations
    )
    return RegisteredFleet(passwords, token, time.perf_counter() - began, points)


def write_password_file(path: Path, passwords: Mapping[str, str]) -> None:
    """`chargerId password` lines, readable by this user only: what the simulator's --password-file reads."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.writelines(f"{cp} {pw}\n" for cp, pw in passwords.items())


# --------------------------------------------------------------------------- server processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def raise_open_files_limit(wanted: int) -> int:
    """Lift this process's soft open-files limit towards `wanted` (capped by the hard limit); processes
    started afterwards inherit it. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def serve_argv(*roles: str) -> list[str]:
    """`csms serve` running `roles` in one process, as production starts a role."""
    return [sys.executable, "-m", "csms.cli", "serve", *(arg for role in roles for arg in ("--role", role))]


def gateway_argv() -> list[str]:
    return serve_argv("gateway")


@contextlib.contextmanager
def work_dir(log_dir: Path | None, prefix: str) -> Iterator[Path]:
    """The run's folder for logs and files: `log_dir` (kept), or a temporary one removed afterwards."""
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        yield log_dir
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def gateway_environment(
    database_url: str, redis_url: str, key_prefix: str, port: int, **overrides: str
) -> dict[str, str]:
    """The gateway's settings for a benchmark: the caller's environment, pointed at the scratch database,
    the scratch key prefix and a free loopback port."""
    return {
        **os.environ,
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": key_prefix,
        "CSMS_HOST": HOST,
        "CSMS_OCPP_PORT": str(port),
        **overrides,
    }


def library_server_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "loadtests.baselines.ocpp_library_server",
        "--host",
        HOST,
        "--port",
        str(port),
    ]


def bare_responder_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "loadtests.baselines.bare_responder", "--host", HOST, "--port", str(port)]


@dataclass(slots=True)
class ServerProcess:
    """A server started for a benchmark, with its output in a log file."""

    name: str
    process: asyncio.subprocess.Process
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_bytes(self) -> int:
        """Resident memory now (VmRSS)."""
        return int(psutil.Process(self.pid).memory_info().rss)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@contextlib.asynccontextmanager
async def server_process(
    name: str, argv: Sequence[str], port: int, log_dir: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[ServerProcess]:
    """Start `argv` (a server that will listen on HOST:`port`), yield once the port accepts connections,
    and stop it with SIGTERM (SIGKILL if it lingers) afterwards. Its output goes to `log_dir/name.log`:
    a pipe nobody reads would fill and stall it."""
    log_path = log_dir / f"{name.replace(' ', '-')}.log"
    log: IO[bytes] = log_path.open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    finally:
        log.close()
    server = ServerProcess(name, process, port, log_path)
    try:
        await _wait_listening(server)
        yield server
    finally:
        await _stop(process)


async def _wait_listening(server: ServerProcess) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while True:
        if server.process.returncode is not None:
            raise RuntimeError(
                f"{server.name} exited early ({server.process.returncode}):\n{server.log_tail()}"
            )
        try:
            _, writer = await asyncio.open_connection(HOST, server.port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{server.name} not listening after {_START_TIMEOUT_SECONDS:.0f} s"
                ) from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_SECONDS)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()


# --------------------------------------------------------------------------- CPU probes


def postgres_pids(postmaster: int | None = None, database: str | None = None) -> list[int]:
    """The Postgres server's processes, to charge their CPU to the store.

    With `postmaster` (see `postmaster_pid`): that server's processes only, and with `database` too, only
    the backends serving that database plus the server's shared helpers (WAL writer, checkpointer, ...), so
    that other work on a shared server is left out. Without: every process named postgres on the machine.
    """
    if postmaster is None:
        return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster")]
    try:
        server = psutil.Process(postmaster)
        children = server.children(recursive=True)
    except psutil.Error:
        return []
    pids = [server.pid]
    for child in children:
        with contextlib.suppress(psutil.Error):
            # A backend's title is "postgres: CLUSTER: USER DATABASE CLIENT STATE"; helpers have no client.
            title = " ".join(child.cmdline())
            if database is None or f" {database} " in title or "(" not in title:
                pids.append(child.pid)
    return pids


async def postmaster_pid(database_url: str) -> int | None:
    """The pid of the Postgres server behind `database_url` when it runs on this machine (its data
    directory's postmaster.pid), so that only its CPU is counted; None when it cannot be told."""
    connection = await asyncpg.connect(database_url)
    try:
        data_directory = await connection.fetchval("SHOW data_directory")
    except asyncpg.PostgresError:  # not a superuser
        return None
    finally:
        await connection.close()
    try:
        first_line = (Path(data_directory) / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (OSError, ValueError):
        return None
    return pid if psutil.pid_exists(pid) else None


def cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    """User + system CPU seconds so far of each process still alive."""
    seconds: dict[int, float] = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = times.user + times.system
    return seconds


class CpuMeter:
    """CPU used by named groups of processes between `start()` and `stop()`, as % of one core."""

    def __init__(self, groups: Mapping[str, Callable[[], Iterable[int]]]) -> None:
        self._groups = groups
        self._before: dict[str, dict[int, float]] = {}
        self._started = 0.0

    def start(self) -> None:
        self._started = time.monotonic()
        self._before = {name: cpu_seconds(pids()) for name, pids in self._groups.items()}

    def stop(self) -> dict[str, float]:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        usage: dict[str, float] = {}
        for name, pids in self._groups.items():
            before = self._before.get(name, {})
            now = cpu_seconds(pids())
            # A process that started meanwhile counts from zero; one that ended is left out.
            used = sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())
            usage[name] = 100.0 * used / elapsed
        return usage

    def lap(self) -> dict[str, float]:
        """`stop()`, then `start()` again: the usage since the last lap."""
        usage = self.stop()
        self.start()
        return usage


def named_pids(name: str) -> list[int]:
    """The processes called `name` (redis-server, ...) on this machine."""
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == name]


def pids_running(*arguments: str) -> list[int]:
    """The processes whose command line holds `arguments` in a row (a module and its port, say)."""
    wanted, found = list(arguments), []
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if any(line[i : i + len(wanted)] == wanted for i in range(len(line) - len(wanted) + 1)):
            found.append(process.pid)
    return found


def machine_busy_percent(before: Any, after: Any) -> float:
    """Share of all cores' time not idle between two `psutil.cpu_times()` (everyone's load, ours or not)."""
    total = sum(after) - sum(before)
    idle = (after.idle + after.iowait) - (before.idle + before.iowait)
    return 100.0 * (1.0 - idle / total) if total > 0 else 0.0


def listen_queue_counters() -> dict[str, int]:
    """The kernel's TcpExt counters of connections a listening socket could not take (this network
    namespace, all sockets): a full accept queue drops the client's SYN, which it resends 1, 3, 7, 15, 31 s
    later, so a server that accepts too slowly shows up as these and as stragglers."""
    try:
        lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines()]
    except OSError:
        return {}
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names and names[0] == "TcpExt:":
            counters = dict(zip(names[1:], (int(v) for v in values[1:]), strict=False))
            return {k: counters.get(k, 0) for k in ("ListenOverflows", "ListenDrops", "SyncookiesSent")}
    return {}


# --------------------------------------------------------------------------- latency across processes


def histogram_state(histogram: LatencyHistogram) -> dict[str, Any]:
    """A simulator histogram as plain data, to send from a client process to the benchmark."""
    return {
        "counts": histogram.counts,
        "count": histogram.count,
        "total": histogram.total,
        "min": histogram.min if histogram.count else 0.0,
        "max": histogram.max,
    }


def merged_histogram(states: Iterable[Mapping[str, Any]]) -> LatencyHistogram:
    """One histogram of the samples of several (from `histogram_state`)."""
    merged = LatencyHistogram()
    for state in states:
        if not state["count"]:
            continue
        merged.counts = [a + b for a, b in zip(merged.counts, state["counts"], strict=True)]
        merged.count += state["count"]
        merged.total += state["total"]
        merged.min = min(merged.min, state["min"])
        merged.max = max(merged.max, state["max"])
    return merged


# --------------------------------------------------------------------------- client processes

Message = tuple[str, Any]
"""What client and benchmark exchange: (kind, payload), e.g. ("ready", pid) or ("result", {...})."""


class Channel:
    """A client process's end of the pipe to the benchmark; `recv` does not block the event loop."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def send(self, kind: str, payload: Any = None) -> None:
        self._connection.send((kind, payload))

    async def recv(self) -> Message:
        message: Message = await asyncio.to_thread(self._connection.recv)
        return message


ClientMain = Callable[[Channel, Any], Coroutine[Any, Any, Any]]
"""A client process's body: given its channel and arguments, returns its (picklable) result."""


def _client_process(connection: Connection, main: ClientMain, args: Any) -> None:
    """Runs in the spawned process: the client on uvloop, then its result (or its traceback) to the pipe."""
    channel = Channel(connection)
    try:
        result = run_event_loop(main(channel, args))
    except BaseException:
        channel.send("failed", traceback.format_exc())
    else:
        channel.send("result", result)
    finally:
        connection.close()


class ClientFailed(RuntimeError):
    """A client process raised, or went away without a result."""


class ClientProcesses:
    """Load generators, each in a process of its own, driven step by step by the benchmark."""

    def __init__(self, processes: list[multiprocessing.process.BaseProcess], pipes: list[Connection]) -> None:
        self._processes = processes
        self._pipes = pipes

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.pid is not None]

    def send_all(self, kind: str, payload: Any = None) -> None:
        for pipe in self._pipes:
            pipe.send((kind, payload))

    async def expect_all(self, kind: str, within: float) -> list[Any]:
        """The payload of the next message of each client, which must be of `kind` and come `within` s."""
        messages = await asyncio.gather(*(self._recv(pipe, within) for pipe in self._pipes))
        return [self._check(message, kind) for message in messages]

    async def next_message(self, index: int, within: float) -> Message:
        """The next message of client `index`, whatever its kind (a failure raises)."""
        message = await self._recv(self._pipes[index], within)
        if message[0] == "failed":
            raise ClientFailed(f"a client process failed:\n{message[1]}")
        return message

    def __len__(self) -> int:
        return len(self._pipes)

    @staticmethod
    def _check(message: Message, kind: str) -> Any:
        got, payload = message
        if got == "failed":
            raise ClientFailed(f"a client process failed:\n{payload}")
        if got != kind:
            raise ClientFailed(f"a client process sent {got!r} where {kind!r} was expected")
        return payload

    @staticmethod
    async def _recv(pipe: Connection, within: float) -> Message:
        def receive() -> Message:
            # poll, not a bare recv: a thread blocked in recv could never be abandoned.
            if not pipe.poll(within):
                raise ClientFailed(f"no word from a client process in {within:.0f} s")
            try:
                message: Message = pipe.recv()
            except EOFError:
                raise ClientFailed("a client process went away") from None
            return message

        return await asyncio.to_thread(receive)


@contextlib.asynccontextmanager
async def client_processes(main: ClientMain, args: Sequence[Any]) -> AsyncIterator[ClientProcesses]:
    """One spawned process per item of `args`, each running `main(channel, item)` (a module-level async
    function, so that the child can import it); they are stopped, if still running, on the way out."""
    context = multiprocessing.get_context("spawn")  # never fork a process that holds an event loop
    processes: list[multiprocessing.process.BaseProcess] = []
    pipes: list[Connection] = []
    try:
        for item in args:
            ours, theirs = context.Pipe()
            process: multiprocessing.process.BaseProcess = context.Process(
                target=_client_process, args=(theirs, main, item), daemon=True
            )
            process.start()
            theirs.close()
            processes.append(process)
            pipes.append(ours)
        yield ClientProcesses(processes, pipes)
    finally:
        for pipe in pipes:
            pipe.close()
        for process in processes:
            await asyncio.to_thread(process.join, 10.0)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5.0)
