"""`csms bench lifecycle`: complete charging sessions per second through the real system, app to price.

N registered one-EVSE chargers (OCPP 1.6J, Basic auth) are connected by the charger-fleet simulator to a
`csms serve --role gateway` process; a `csms serve --role write-api` process serves the app. Both run on a
scratch database and a Redis key prefix of the run's own, and talk to each other the way production does:
the write API routes RemoteStart / RemoteStop through Redis to the gateway that holds the socket. N drivers,
registered and logged in over the API before the clock starts, each loop on their own charger:

    POST /sessions/start {chargerId} → ChargingSession.Started recorded (the charger's StartTransaction)
    → charge for --charge-seconds (MeterValues every --meter-interval) → POST /sessions/stop
    → ChargingSession.Priced recorded (the charger's StopTransaction): the session is complete.

The drivers learn of Started and Priced from one event-store subscription (NOTIFY-driven), not by polling
the API. Sessions per second count the Priced events the drivers saw during the window; afterwards the
Priced events in the scratch database must equal every session the drivers saw priced (warm-up, window and
drain). Beside it, measured in the same run on the same Postgres server, `csms bench append`'s single-row
floor and its 64-concurrent-callers figure for our appender, so the reader can set the events and append
transactions one session costs against what the store takes.

Simulator and drivers each run in a process of their own, so every party's CPU is measured separately (for
the window and per 10 s slice); the machine's cores are shared by all of them and by Postgres and Redis. To
show where the time goes, the window also samples what the scratch database's backends are doing and for
which process (`pg_stat_activity`), times each server's `GET /healthz` (its event loop's lag), splits each
start and stop call at the moment its remote command reached the charger, and after the run times loading a
Charger aggregate as the write API does. `--layout combined` runs both roles in one process instead.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import math
import os
import statistics
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import click
import psutil

from csms.domain import Charger, charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.localstripe import (
    LOCALSTRIPE_SECRET_KEY,
    free_loopback_port,
    running_localstripe,
)
from csms.redis_support import redis_client

# The append benchmark's own rows and timing loop, so that the baselines are its figures, measured here.
from loadtests.bench_append import Bench, Work, _rate
from loadtests.drivers import (
    PRICED,
    DriverFigures,
    Pace,
    SessionWatch,
    Window,
    drain,
    drive_session,
    paced_sessions,
    sign_up_drivers,
    watching_sessions,
)
from loadtests.scratch import (
    HOST,
    Channel,
    CpuMeter,
    client_processes,
    count_events,
    free_port,
    machine_busy_percent,
    named_pids,
    postgres_pids,
    raise_open_files_limit,
    register_fleet,
    scratch_database,
    scratch_redis_prefix,
    serve_argv,
    server_process,
    work_dir,
    write_password_file,
)
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.credentials import load_passwords
from loadtests.simulator.fleet import Fleet

_TARGET_SESSIONS_PER_S = 100.0
_TARGET_START_P99_MS = 250.0
_TIMED_LOADS = 20
_REMOTE_COMMANDS: Final = ("RemoteStartTransaction", "RemoteStopTransaction")
_PHASES: Final = ("until the command reached the charger", "after the charger answered")
# Once the window ends, sessions under way get this long to complete (each then counts in the check).
_DRAIN_SECONDS = 45.0
_SAMPLE_SECONDS = 0.25
# The window's figures are also shown per slice this long, to show whether the pace holds.
_SLICE_SECONDS = 10.0
_READY_WITHIN_SECONDS = 180.0
_BASELINE_SECONDS = 2.0
_BASELINE_ROUNDS = 3
_BASELINE_CALLERS = 64
_LAYOUTS: Final = {
    "separate": "`csms serve --role write-api` and `csms serve --role gateway` (one process each)",
    "combined": "`csms serve --role write-api --role gateway` (one process)",
}
# Settings raised from their defaults for both server processes; everything else is as configured.
_TUNING: Final[Mapping[str, str]] = {
    # 10 connections per process queue 200 concurrent starts (each makes about ten round trips).
    "CSMS_DB_POOL_SIZE": "20",
}


# --------------------------------------------------------------------------- the simulator process


@dataclass(frozen=True, slots=True)
class FleetArgs:
    url: str
    password_file: str
    meter_interval: float
    ramp_up: float
    ready_within: float


async def fleet_process(channel: Channel, args: FleetArgs) -> dict[str, Any]:
    """The simulated chargers: only remote starts (charging share 0), sessions end when the CSMS says so."""
    passwords = load_passwords(Path(args.password_file))
    # When each remote command reached its charger (perf_counter: one clock for every process here),
    # to split the API's answer time into before and after the charger.
    arrivals: dict[str, list[tuple[str, float]]] = {cp: [] for cp in passwords}

    def observe(charger_id: str, event: str, action: str, _payload: Any) -> None:
        if event == "csms_call" and action in _REMOTE_COMMANDS:
            arrivals[charger_id].append((action, time.perf_counter()))

    config = ChargerConfig(
        url=args.url,
        version="1.6",
        connectors=1,
        meter_interval=args.meter_interval,
        session_duration=24 * 3600.0,  # a session ends by RemoteStop only
        observer=observe,
    )
    fleet = Fleet(list(passwords), config, passwords=passwords, charging_share=0.0, ramp_up=args.ramp_up)
    stats = fleet.stats
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    running = loop.create_task(fleet.run(stop=stop))
    began = loop.time()
    # Ready once every charger is accepted and has reported its connector (which the start checks).
    while loop.time() - began < args.ready_within:
        reported = stats.actions["StatusNotification"].results if "StatusNotification" in stats.actions else 0
        if stats.accepted >= len(passwords) and reported >= len(passwords):
            break
        await asyncio.sleep(0.1)
    channel.send("ready", {"pid": os.getpid(), "accepted": stats.accepted, "seconds": loop.time() - began})
    await channel.recv()  # window
    stats.actions = {}  # the gateway's answer times from here on only
    await channel.recv()  # window closed (the drivers' last sessions still need the chargers)
    actions = {
        name: {
            "answered": a.results,
            "p50_ms": a.latency.percentile(0.50) * 1e3,
            "p99_ms": a.latency.percentile(0.99) * 1e3,
        }
        for name, a in sorted(stats.actions.items())
    }
    await channel.recv()  # stop
    dropped = stats.disconnects  # before stop: every disconnect so far is one the server caused
    stop.set()
    await running
    return {
        "accepted": stats.accepted,
        "dropped": dropped,
        "errors": dict(stats.errors),
        "connect_failures": dict(stats.connect_failures),
        "actions": actions,
        "arrivals": arrivals,
    }


# --------------------------------------------------------------------------- the drivers' process


@dataclass(frozen=True, slots=True)
class DriverArgs:
    api: str
    database_url: str
    charger_ids: tuple[str, ...]
    charge_seconds: float
    call_timeout: float
    run_id: str
    stripe_url: str  # localstripe: each driver saves a card once, as the app does before a first charge
    rate: float  # sessions started per second (open loop); 0: each driver starts again once done


async def _drive(
    http: aiohttp.ClientSession,
    args: DriverArgs,
    token: str,
    charger_id: str,
    watch: SessionWatch,
    window: Window,
    figures: DriverFigures,
) -> None:
    """One driver's sessions on its own charger, one after the other, until the window closes."""
    while not window.closing:
        await drive_session(
            http, args.api, token, charger_id, watch, window, figures, charge_seconds=args.charge_seconds
        )


async def driver_process(channel: Channel, args: DriverArgs) -> dict[str, Any]:
    """The app's users: register and log in, then drive sessions from "go" until "stop", then drain. In a
    closed loop each driver starts again as soon as its session is priced; at a rate, sessions start at
    that pace on whichever drivers are free."""
    # One keep-alive connection per driver, as each phone would hold.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=args.call_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        began = time.perf_counter()
        signed_up = await sign_up_drivers(http, args.api, args.stripe_url, len(args.charger_ids), args.run_id)
        login_seconds = time.perf_counter() - began
        async with watching_sessions(args.database_url, f"bench-lifecycle-{args.run_id}") as watch:
            channel.send("ready", {"pid": os.getpid(), "login_seconds": login_seconds})
            await channel.recv()  # go
            window = Window()
            figures = DriverFigures()
            pairs = [(d.token, charger_id) for d, charger_id in zip(signed_up, args.charger_ids, strict=True)]
            if args.rate > 0:

                async def one(pair: tuple[str, str]) -> None:
                    token, charger_id = pair
                    await drive_session(
                        http,
                        args.api,
                        token,
                        charger_id,
                        watch,
                        window,
                        figures,
                        charge_seconds=args.charge_seconds,
                    )

                pace, under_way = await paced_sessions(channel, args.rate, deque(pairs), one, window)
                drivers = list(under_way)
            else:
                drivers = [
                    asyncio.create_task(_drive(http, args, token, charger_id, watch, window, figures))
                    for token, charger_id in pairs
                ]
                await channel.recv()  # window
                window.opened = time.perf_counter()
                await channel.recv()  # stop
                window.closed = time.perf_counter()
                pace = Pace()
            await drain(drivers, _DRAIN_SECONDS, figures)
    return {
        "login_seconds": login_seconds,
        "asked_in_window": pace.asked,
        "skipped_in_window": pace.skipped,
        "window_seconds": window.closed - window.opened,
        **{k: v for k, v in asdict(figures).items() if k != "errors"},
        "errors": dict(figures.errors),
    }


# --------------------------------------------------------------------------- baselines


@dataclass
class Baseline:
    floor: float
    """Single-row INSERTs in autocommit, one caller (events/s): `csms bench append`'s floor."""
    concurrent: float
    """Our group-commit appender, 64 concurrent callers x 1 event (events/s)."""


async def measure_append_baseline(database_url: str) -> Baseline:
    """`csms bench append`'s single-row floor and 64-callers row, in a scratch database of their own."""
    async with scratch_database(database_url) as url:
        pool = await create_pool(url, max_size=_BASELINE_CALLERS + 4, min_size=8)
        store = EventStore(pool, url)
        try:
            for table in ("bench_copy", "bench_floor"):
                await pool.execute(f"CREATE TABLE {table} (LIKE events INCLUDING ALL)")
            bench = Bench(pool, store)

            async def median(concurrency: int, work_of: Callable[[], Work]) -> float:
                figures = []
                for _ in range(_BASELINE_ROUNDS):
                    await bench.reset()
                    figures.append(await _rate(work_of(), _BASELINE_SECONDS, concurrency))
                return statistics.median(figures)

            floor = await median(1, bench.floor)
            concurrent = await median(_BASELINE_CALLERS, lambda: bench.ours(1))
        finally:
            await store.close()
            await pool.close()
    return Baseline(floor, concurrent)


# --------------------------------------------------------------------------- probes during the window


class WaitSampler:
    """What the scratch database's backends are doing, sampled, and for which process: running, waiting
    on what, or idle in a transaction (holding it open, and the events table's lock with it, while the
    client process has not sent its next statement yet)."""

    def __init__(self, admin_url: str, database: str, clients: Mapping[str, Callable[[], list[int]]]) -> None:
        self._admin_url = admin_url
        self._postgres_port = urlsplit(admin_url).port or 5432
        self._database = database
        self._clients = clients
        self._owners: dict[int, str] = {}
        self.samples = 0
        self.states: Counter[tuple[str, str]] = Counter()

    def _owner(self, port: int | None) -> str:
        """The process whose connection to Postgres has local port `port` (only the pair of ports is
        unique: the same local port may serve connections to other servers)."""
        if port is None:
            return "?"
        if port not in self._owners:
            for name, pids in self._clients.items():
                for pid in pids():
                    with contextlib.suppress(psutil.Error):
                        for c in psutil.Process(pid).net_connections(kind="tcp"):
                            if c.laddr and c.raddr and c.raddr.port == self._postgres_port:
                                self._owners[c.laddr.port] = name
        return self._owners.get(port, "other")

    async def run(self) -> None:
        connection = await asyncpg.connect(self._admin_url)
        try:
            while True:
                rows = await connection.fetch(
                    """
                    SELECT state, wait_event_type, wait_event, client_port FROM pg_stat_activity
                    WHERE datname = $1 AND state IS NOT NULL AND state <> 'idle'
                      AND pid <> pg_backend_pid() AND backend_type = 'client backend'
                    """,
                    self._database,
                )
                self.samples += 1
                for row in rows:
                    state = _describe(row["state"], row["wait_event_type"], row["wait_event"])
                    self.states[state, self._owner(row["client_port"])] += 1
                await asyncio.sleep(_SAMPLE_SECONDS)
        finally:
            await connection.close()

    def average(self) -> dict[str, dict[str, float]]:
        """Per state, the backends in it on average (over the samples) by client process; busiest first."""
        n = max(self.samples, 1)
        totals: Counter[str] = Counter()
        for (state, _), count in self.states.items():
            totals[state] += count
        return {
            state: {
                owner: count / n
                for (s, owner), count in sorted(self.states.items(), key=lambda item: -item[1])
                if s == state
            }
            for state, _ in totals.most_common()
        }


class HealthProbe:
    """GET /healthz on a server, one after the other: its answer time is mostly how long the request
    waits for the server's event loop, which every charger message and API call waits on too."""

    def __init__(self, url: str) -> None:
        self._url = url
        self.seconds: list[float] = []

    async def run(self, http: aiohttp.ClientSession) -> None:
        while True:
            began = time.perf_counter()
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(self._url) as response:
                    await response.read()
            self.seconds.append(time.perf_counter() - began)
            await asyncio.sleep(_SAMPLE_SECONDS / 2)


def _describe(state: str, wait_type: str | None, wait: str | None) -> str:
    if state == "active":
        return "active, on CPU" if wait_type is None else f"active, waiting {wait_type}:{wait}"
    if state.startswith("idle in transaction"):
        return f"{state} (client's turn)"
    return state if wait_type is None else f"{state}, {wait_type}:{wait}"


@dataclass(frozen=True, slots=True)
class RoundTrips:
    """Counters of the servers' round trips: Postgres transactions on the scratch database (a statement
    outside a transaction block is one) and commands Redis processed (all its clients: here, the servers)."""

    postgres_transactions: int
    redis_commands: int


async def round_trips(url: str, redis_url: str) -> RoundTrips:
    connection = await asyncpg.connect(url)
    try:
        # Statistics are flushed by each backend at the end of its transactions (at most once a second
        # while busy): over a window of a minute, a second's lag is within the figure's rounding.
        transactions = await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    client = redis_client(redis_url)
    try:
        stats = await client.info("stats")
    finally:
        await client.aclose()
    return RoundTrips(int(transactions), int(stats["total_commands_processed"]))


async def log_head(url: str) -> int:
    """The log's last position now."""
    connection = await asyncpg.connect(url)
    try:
        position = await connection.fetchval("SELECT coalesce(max(position), 0) FROM events")
    finally:
        await connection.close()
    return int(position)


@dataclass
class LogShare:
    """What the events in a slice of the log were, and how many transactions appended them."""

    events: int
    transactions: int
    topics: dict[str, int]


async def log_share(url: str, after: int, upto: int) -> LogShare:
    """The events in (after, upto]: their count by topic, and the distinct transactions (xmin) that
    inserted them: with group commit, several callers' appends share one transaction."""
    connection = await asyncpg.connect(url)
    try:
        transactions = await connection.fetchval(
            "SELECT count(DISTINCT xmin::text) FROM events WHERE position > $1 AND position <= $2",
            after,
            upto,
        )
        rows = await connection.fetch(
            "SELECT topic, count(*) AS n FROM events WHERE position > $1 AND position <= $2"
            " GROUP BY topic ORDER BY n DESC",
            after,
            upto,
        )
    finally:
        await connection.close()
    topics = {row["topic"]: int(row["n"]) for row in rows}
    return LogShare(sum(topics.values()), int(transactions), topics)


@dataclass
class AggregateLoad:
    """Loading a charger's aggregate after the run, as each start and stop does, timed."""

    events: float
    """Events in the stream (mean)."""
    full_ms: float
    """Read the whole stream and rebuild, as a repository without a cache does (the write API's)."""
    read_ms: float
    """Of which reading the rows."""
    tail_ms: float
    """Read only the events after a cached version (none here), as a repository with a cache does."""


async def time_charger_loads(url: str, charge_point_ids: Sequence[str]) -> AggregateLoad:
    pool = await create_pool(url, max_size=1)
    store = EventStore(pool, url)
    repository = Repository(store, EventCodec(EVENT_TYPES))
    events, full, read, tail = [], [], [], []
    try:
        for cp in charge_point_ids:
            charger_id = charger_id_for(cp)
            began = time.perf_counter()
            charger = await repository.get(charger_id, Charger, refresh=True)
            full.append(time.perf_counter() - began)
            began = time.perf_counter()
            events.append(len(await store.read_stream(charger_id)))
            read.append(time.perf_counter() - began)
            began = time.perf_counter()
            await store.read_stream(charger_id, after_version=charger.version)
            tail.append(time.perf_counter() - began)
    finally:
        await store.close()
        await pool.close()
    return AggregateLoad(
        statistics.mean(events),
        1e3 * statistics.median(full),
        1e3 * statistics.median(read),
        1e3 * statistics.median(tail),
    )


async def mean_charger_stream(url: str) -> float:
    connection = await asyncpg.connect(url)
    try:
        mean = await connection.fetchval(
            "SELECT avg(n) FROM (SELECT count(*) AS n FROM events WHERE topic LIKE 'Charger.%'"
            " GROUP BY stream_id) AS streams"
        )
    finally:
        await connection.close()
    return float(mean or 0.0)


def _fixed(pids: list[int]) -> Callable[[], list[int]]:
    return lambda: pids


# --------------------------------------------------------------------------- the run


@dataclass
class Report:
    plan: Plan
    settings: dict[str, str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    baseline: Baseline
    window_seconds: float = 0.0
    sessions_per_s: float = 0.0
    completed_in_window: int = 0
    asked_in_window: int = 0
    """At a rate: the starts due in the window; `skipped_in_window` of them found every charger busy."""
    skipped_in_window: int = 0
    start_p50_ms: float = 0.0
    start_p99_ms: float = 0.0
    stop_p50_ms: float = 0.0
    stop_p99_ms: float = 0.0
    to_started_p50_ms: float = 0.0
    to_started_p99_ms: float = 0.0
    to_priced_p50_ms: float = 0.0
    to_priced_p99_ms: float = 0.0
    session_p50_ms: float = 0.0
    session_p99_ms: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    simulator_errors: dict[str, int] = field(default_factory=dict)
    server_errors: dict[str, int] = field(default_factory=dict)
    gateway_answers: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per action the charger sent in the window: answered, CALL→CALLRESULT p50 / p99 (ms)."""
    started_total: int = 0
    completed_total: int = 0
    priced_in_log: int = 0
    events_in_window: int = 0
    append_transactions_in_window: int = 0
    postgres_transactions_in_window: int = 0
    redis_commands_in_window: int = 0
    topics_in_window: dict[str, int] = field(default_factory=dict)
    sessions_per_s_by_slice: list[float] = field(default_factory=list)
    start_p50_ms_by_slice: list[float] = field(default_factory=list)
    charger_stream_events: float = 0.0
    """Events in a charger's stream at the end, on average: what loading a Charger aggregate reads."""
    charger_load: AggregateLoad | None = None
    cpu_percent: dict[str, float] = field(default_factory=dict)
    cpu_percent_by_slice: dict[str, list[float]] = field(default_factory=dict)
    machine_busy_percent: float = 0.0
    postgres_backends: dict[str, dict[str, float]] = field(default_factory=dict)
    call_phases_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """The start and stop calls split at their remote command's arrival: p50, p99 (ms) and n."""
    healthz_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per server process: /healthz answer time p50 / p99 / max (ms) during the window."""
    login_seconds: float = 0.0
    fleet_ready_seconds: float = 0.0

    @property
    def events_per_session(self) -> float:
        return self.events_in_window / max(self.completed_in_window, 1)

    @property
    def transactions_per_session(self) -> float:
        return self.append_transactions_in_window / max(self.completed_in_window, 1)

    @property
    def checks(self) -> dict[str, bool]:
        if self.plan.rate > 0:
            # At a rate the system can only complete what is asked: the rate must reach the target and be
            # delivered, within 1 % (the sessions that straddle the window's edges).
            carried = (
                self.plan.rate >= _TARGET_SESSIONS_PER_S and self.sessions_per_s >= 0.99 * self.plan.rate
            )
        else:
            carried = self.sessions_per_s >= _TARGET_SESSIONS_PER_S
        checks = {
            "sessions_per_s": carried,
            "start_p99": self.start_p99_ms < _TARGET_START_P99_MS,
            "priced_in_log": self.priced_in_log == self.completed_total,
        }
        if self.plan.rate > 0:
            checks["none_skipped"] = self.skipped_in_window == 0
        return checks


def _ms(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile, in ms (0 without samples)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return 1e3 * ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass(frozen=True, slots=True)
class Plan:
    chargers: int
    seconds: float
    warmup: float
    charge_seconds: float
    meter_interval: float
    layout: str
    """"separate": one process per role; "combined": one process serving both roles."""
    log_dir: Path | None
    rate: float = 0.0
    """Sessions started per second (open loop); 0: a closed loop, each driver starts again when done."""


@dataclass
class Servers:
    pids: dict[str, list[int]]
    health: dict[str, str]
    """Per server process, its /healthz URL."""
    logs: list[Path]


async def _wait_listening(port: int, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listening on {HOST}:{port} after {within:.0f} s") from None
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


@contextlib.asynccontextmanager
async def servers(plan: Plan, env: Mapping[str, str], work: Path) -> AsyncIterator[Servers]:
    """Write API and gateway as `csms serve` processes, in the plan's layout; stopped (SIGTERM) afterwards."""
    api_port, ocpp_port = int(env["CSMS_WRITE_API_PORT"]), int(env["CSMS_OCPP_PORT"])
    async with contextlib.AsyncExitStack() as stack:
        if plan.layout == "combined":
            both = await stack.enter_async_context(
                server_process("write-api+gateway", serve_argv("write-api", "gateway"), api_port, work, env)
            )
            await _wait_listening(ocpp_port, 60.0)
            name = "write-api + gateway"
            yield Servers({name: [both.pid]}, {name: f"http://{HOST}:{api_port}/healthz"}, [both.log_path])
        else:
            gateway = await stack.enter_async_context(
                server_process("gateway", serve_argv("gateway"), ocpp_port, work, env)
            )
            write_api = await stack.enter_async_context(
                server_process("write-api", serve_argv("write-api"), api_port, work, env)
            )
            yield Servers(
                {"write-api": [write_api.pid], "gateway": [gateway.pid]},
                {
                    "write-api": f"http://{HOST}:{api_port}/healthz",
                    "gateway": f"http://{HOST}:{ocpp_port}/healthz",
                },
                [write_api.log_path, gateway.log_path],
            )


def server_errors(logs: Sequence[Path]) -> dict[str, int]:
    """ERROR lines the servers logged, by logger, message and the exception's last line."""
    found: Counter[str] = Counter()
    for path in logs:
        with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if '"ERROR"' not in line and '"CRITICAL"' not in line:
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                exception = str(entry.get("exception", "")).strip().splitlines()
                cause = f": {exception[-1]}" if exception else ""
                found[f"{path.stem} {entry.get('logger')}: {entry.get('message')}{cause}"] += 1
    return dict(found.most_common())


async def run(database_url: str, redis_url: str, plan: Plan) -> Report:
    load_before = os.getloadavg()
    baseline = await measure_append_baseline(database_url)
    raise_open_files_limit(4 * plan.chargers + 1024)
    run_id = uuid.uuid4().hex[:8]
    tuning = dict(_TUNING)
    report = Report(plan, tuning, load_before, load_before, baseline)
    with (
        work_dir(plan.log_dir, "csms-bench-lifecycle-") as work,
        running_localstripe(free_loopback_port()) as stripe_url,
    ):
        async with scratch_database(database_url) as url, scratch_redis_prefix(redis_url) as prefix:
            fleet = await register_fleet(url, plan.chargers)
            password_file = work / "passwords.txt"
            write_password_file(password_file, fleet.passwords)
            env = {
                **os.environ,
                "CSMS_DATABASE_URL": url,
                "CSMS_REDIS_URL": redis_url,
                "CSMS_REDIS_KEY_PREFIX": prefix,
                "CSMS_DATA_DIR": str(work),  # the write API's development signing key goes here
                "CSMS_HOST": HOST,
                "CSMS_OCPP_PORT": str(free_port()),
                "CSMS_WRITE_API_PORT": str(free_port()),
                # Cards are saved through localstripe before the window; nobody is charged during it (no
                # billing role runs: sessions end, as this benchmark counts them, when they are priced).
                "STRIPE_API_KEY": LOCALSTRIPE_SECRET_KEY,
                "CSMS_STRIPE_API_BASE": stripe_url,
                **_TUNING,
            }
            fleet_args = FleetArgs(
                f"ws://{HOST}:{env['CSMS_OCPP_PORT']}/ocpp",
                str(password_file),
                plan.meter_interval,
                plan.chargers / 300.0,
                _READY_WITHIN_SECONDS,
            )
            driver_args = DriverArgs(
                f"http://{HOST}:{env['CSMS_WRITE_API_PORT']}",
                url,
                tuple(fleet.passwords),
                plan.charge_seconds,
                60.0,
                run_id,
                stripe_url,
                plan.rate,
            )
            async with (
                servers(plan, env, work) as system,
                client_processes(fleet_process, [fleet_args]) as simulator,
                client_processes(driver_process, [driver_args]) as drivers,
            ):
                (fleet_ready,) = await simulator.expect_all("ready", within=_READY_WITHIN_SECONDS + 60)
                (drivers_ready,) = await drivers.expect_all("ready", within=_READY_WITHIN_SECONDS + 60)
                report.fleet_ready_seconds = fleet_ready["seconds"]
                report.login_seconds = drivers_ready["login_seconds"]
                if fleet_ready["accepted"] < plan.chargers:
                    raise click.ClickException(
                        f"only {fleet_ready['accepted']} of {plan.chargers} chargers were accepted"
                    )
                drivers.send_all("go")
                await asyncio.sleep(plan.warmup)
                groups: dict[str, Callable[[], Iterable[int]]] = {
                    **{name: _fixed(pids) for name, pids in system.pids.items()},
                    "postgres (all its processes)": postgres_pids,
                    "redis": lambda: named_pids("redis-server"),
                    "simulator": lambda: simulator.pids,
                    "drivers": lambda: drivers.pids,
                }
                meter = CpuMeter(groups)
                sampler = WaitSampler(
                    database_url,
                    urlsplit(url).path.lstrip("/"),
                    {
                        **{name: _fixed(pids) for name, pids in system.pids.items()},
                        "drivers": lambda: drivers.pids,
                    },
                )
                probes = {name: HealthProbe(health) for name, health in system.health.items()}
                http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
                probing = [
                    asyncio.create_task(sampler.run()),
                    *(asyncio.create_task(probe.run(http)) for probe in probes.values()),
                ]
                first = await log_head(url)
                trips_before = await round_trips(url, redis_url)
                machine_before = psutil.cpu_times()
                meter.start()
                slice_meter = CpuMeter(groups)
                slice_meter.start()
                drivers.send_all("window")
                simulator.send_all("window")
                slices = max(1, round(plan.seconds / _SLICE_SECONDS))
                for _ in range(slices):
                    await asyncio.sleep(plan.seconds / slices)
                    for name, pct in slice_meter.lap().items():
                        report.cpu_percent_by_slice.setdefault(name, []).append(pct)
                drivers.send_all("stop")
                simulator.send_all("closed")
                report.cpu_percent = meter.stop()
                report.machine_busy_percent = machine_busy_percent(machine_before, psutil.cpu_times())
                last = await log_head(url)
                trips_after = await round_trips(url, redis_url)
                report.postgres_transactions_in_window = (
                    trips_after.postgres_transactions - trips_before.postgres_transactions
                )
                report.redis_commands_in_window = trips_after.redis_commands - trips_before.redis_commands
                report.load_after = os.getloadavg()
                for task in probing:
                    task.cancel()
                await asyncio.gather(*probing, return_exceptions=True)
                await http.close()
                report.postgres_backends = sampler.average()
                report.healthz_ms = {
                    name: {
                        "p50": _ms(probe.seconds, 0.50),
                        "p99": _ms(probe.seconds, 0.99),
                        "max": _ms(probe.seconds, 1.0),
                    }
                    for name, probe in probes.items()
                }
                (figures,) = await drivers.expect_all("result", within=_DRAIN_SECONDS + 60)
                simulator.send_all("stop")
                (fleet_result,) = await simulator.expect_all("result", within=120)
            # The servers have stopped: everything they were asked to record is committed.
            report.server_errors = server_errors(system.logs)
            report.priced_in_log = await count_events(url, PRICED)
            report.charger_stream_events = await mean_charger_stream(url)
            report.charger_load = await time_charger_loads(url, list(fleet.passwords)[:_TIMED_LOADS])
            share = await log_share(url, first, last)
            report.events_in_window = share.events
            report.append_transactions_in_window = share.transactions
            report.topics_in_window = share.topics
    _fill(report, figures)
    report.call_phases_ms = _call_phases(figures["calls"], fleet_result["arrivals"])
    report.gateway_answers = fleet_result["actions"]
    if fleet_result["dropped"]:
        fleet_result["errors"]["connections dropped by the server"] = fleet_result["dropped"]
    report.simulator_errors = {
        **fleet_result["errors"],
        **{f"connect failure: {k}": v for k, v in fleet_result["connect_failures"].items()},
    }
    return report


def _call_phases(
    calls: Sequence[tuple[str, str, float, float]], arrivals: Mapping[str, Sequence[tuple[str, float]]]
) -> dict[str, dict[str, float]]:
    """Split each start and stop call at the moment its remote command reached the charger: the API's
    work (and the routing) before it, the answer's way back and the API's work after it. p50 / p99 ms."""
    commands = {"start": _REMOTE_COMMANDS[0], "stop": _REMOTE_COMMANDS[1]}
    times = {
        (cp, command): sorted(t for action, t in seen if action == command)
        for cp, seen in arrivals.items()
        for command in _REMOTE_COMMANDS
    }
    phases: dict[str, list[float]] = {f"{kind} {part}": [] for kind in commands for part in _PHASES}
    for cp, kind, sent, answered in calls:
        arrived = times.get((cp, commands[kind]), [])
        index = bisect.bisect_left(arrived, sent)
        if index < len(arrived) and arrived[index] <= answered:
            phases[f"{kind} {_PHASES[0]}"].append(arrived[index] - sent)
            phases[f"{kind} {_PHASES[1]}"].append(answered - arrived[index])
    return {
        name: {"p50": _ms(samples, 0.50), "p99": _ms(samples, 0.99), "n": float(len(samples))}
        for name, samples in phases.items()
    }


def _fill(report: Report, figures: Mapping[str, Any]) -> None:
    report.window_seconds = figures["window_seconds"]
    report.completed_in_window = figures["completed_in_window"]
    report.asked_in_window = figures["asked_in_window"]
    report.skipped_in_window = figures["skipped_in_window"]
    report.sessions_per_s = report.completed_in_window / max(report.window_seconds, 1e-9)
    report.started_total = figures["started_total"]
    report.completed_total = figures["completed_total"]
    report.errors = figures["errors"]
    slices = max(1, round(report.window_seconds / _SLICE_SECONDS))
    width = report.window_seconds / slices
    priced = Counter(min(int(at / width), slices - 1) for at in figures["priced_at"])
    report.sessions_per_s_by_slice = [priced[i] / width for i in range(slices)]
    starts: list[list[float]] = [[] for _ in range(slices)]
    for at, seconds in zip(figures["start_at"], figures["start_s"], strict=True):
        starts[min(int(at / width), slices - 1)].append(seconds)
    report.start_p50_ms_by_slice = [_ms(samples, 0.50) for samples in starts]
    for name, key in (
        ("start", "start_s"),
        ("stop", "stop_s"),
        ("to_started", "to_started_s"),
        ("to_priced", "to_priced_s"),
        ("session", "session_s"),
    ):
        setattr(report, f"{name}_p50_ms", _ms(figures[key], 0.50))
        setattr(report, f"{name}_p99_ms", _ms(figures[key], 0.99))


# --------------------------------------------------------------------------- the table


def _row(label: str, value: str, target: str = "", met: bool | None = None) -> str:
    verdict = "" if met is None else ("yes" if met else "NO")
    return f"| {label} | {value} | {target} | {verdict} |"


def format_report(r: Report) -> str:
    checks = r.checks
    b = r.baseline
    lines = [
        "| figure | value | target | met |",
        "|---|---|---|---|",
        _row(
            "complete sessions per second (Priced seen in the window)",
            f"{r.sessions_per_s:,.1f}",
            f">= {_TARGET_SESSIONS_PER_S:.0f}"
            + (f" (at a rate: the {r.plan.rate:g}/s asked, within 1 %)" if r.plan.rate > 0 else ""),
            checks["sessions_per_s"],
        ),
        _row("sessions completed in the window", f"{r.completed_in_window:,} in {r.window_seconds:.1f} s"),
        *_pace_rows(r),
        _row(
            f"sessions per second, by {r.window_seconds / len(r.sessions_per_s_by_slice):.0f} s slice",
            " / ".join(f"{x:.0f}" for x in r.sessions_per_s_by_slice),
        ),
        _row("POST /sessions/start p50 (ms)", f"{r.start_p50_ms:.0f}"),
        _row(
            "POST /sessions/start p99 (ms)",
            f"{r.start_p99_ms:.0f}",
            f"< {_TARGET_START_P99_MS:.0f} ms",
            checks["start_p99"],
        ),
        _row(
            "POST /sessions/start p50 (ms), by slice",
            " / ".join(f"{x:.0f}" for x in r.start_p50_ms_by_slice),
        ),
        *_phase_rows(r, "start"),
        _row("POST /sessions/stop p50 / p99 (ms)", f"{r.stop_p50_ms:.0f} / {r.stop_p99_ms:.0f}"),
        *_phase_rows(r, "stop"),
        _row(
            "start call sent → Started seen, p50 / p99 (ms)",
            f"{r.to_started_p50_ms:.0f} / {r.to_started_p99_ms:.0f}",
        ),
        _row(
            "stop call sent → Priced seen, p50 / p99 (ms)",
            f"{r.to_priced_p50_ms:.0f} / {r.to_priced_p99_ms:.0f}",
        ),
        _row(
            f"whole session, start call → Priced, incl. {r.plan.charge_seconds:g} s charging, p50 / p99 (ms)",
            f"{r.session_p50_ms:.0f} / {r.session_p99_ms:.0f}",
        ),
        _row("errors, whole run (by status)", _errors(r.errors)),
        _row(
            "check: Priced events in the scratch database = sessions the drivers saw priced",
            f"{r.priced_in_log:,} = {r.completed_total:,} (of {r.started_total:,} started)",
            "equal",
            checks["priced_in_log"],
        ),
        _row("events appended per complete session", f"{r.events_per_session:.1f}"),
        _row("events in a charger's stream at the end (mean)", f"{r.charger_stream_events:.0f}"),
        *_load_rows(r.charger_load),
        _row("append transactions (group commits) per complete session", f"{r.transactions_per_session:.1f}"),
        _row(
            "round trips per complete session: Postgres transactions (every client's, the drivers' "
            "subscription too) / Redis commands",
            f"{r.postgres_transactions_in_window / max(r.completed_in_window, 1):.1f} / "
            f"{r.redis_commands_in_window / max(r.completed_in_window, 1):.1f}",
        ),
        _row(
            "events appended per second (window)",
            f"{r.events_in_window / max(r.window_seconds, 1e-9):,.0f}",
        ),
        _row(
            "append transactions per second (window)",
            f"{r.append_transactions_in_window / max(r.window_seconds, 1e-9):,.0f}",
        ),
        _row("baseline, append floor: single-row autocommit INSERT, 1 caller (events/s)", f"{b.floor:,.0f}"),
        _row(
            f"baseline, append ceiling: our appender, {_BASELINE_CALLERS} callers x 1 event (events/s)",
            f"{b.concurrent:,.0f}",
        ),
        _row(
            "sessions/s the floor / the ceiling would carry at this many events per session",
            f"{b.floor / max(r.events_per_session, 1e-9):,.0f} / "
            f"{b.concurrent / max(r.events_per_session, 1e-9):,.0f}",
        ),
    ]
    lines += [
        _row(
            f"CPU % of one core: {name} (whole window; by slice)",
            f"{pct:.0f}; " + " / ".join(f"{x:.0f}" for x in r.cpu_percent_by_slice.get(name, [])),
        )
        for name, pct in r.cpu_percent.items()
    ]
    # CPU ms per complete session: 1% of a core for a second is 10 ms.
    lines += [
        _row(
            f"CPU ms per complete session: {name}, by slice",
            " / ".join(
                f"{10 * pct / rate:.1f}" if rate else "-"
                for pct, rate in zip(
                    r.cpu_percent_by_slice.get(name, []), r.sessions_per_s_by_slice, strict=False
                )
            ),
        )
        for name in r.cpu_percent
        if not name.startswith(("redis", "simulator", "drivers"))
    ]
    lines.append(_row("machine CPU busy, all processes (% of 2 cores)", f"{r.machine_busy_percent:.0f}"))
    lines += [
        _row(
            f"GET /healthz on {name}, p50 / p99 / max (ms): its event loop's lag",
            f"{h['p50']:.1f} / {h['p99']:.1f} / {h['max']:.1f}",
        )
        for name, h in r.healthz_ms.items()
    ]
    lines += [
        _row(
            f"Postgres backends on the scratch db, mean: {state}",
            f"{sum(owners.values()):.2f} ("
            + ", ".join(f"{owner} {n:.2f}" for owner, n in owners.items())
            + ")",
        )
        for state, owners in list(r.postgres_backends.items())[:8]
    ] or [_row("Postgres backends on the scratch db, mean", "none busy")]
    settings = " ".join(f"{k}={v}" for k, v in r.settings.items())
    lines += [
        "",
        f"{r.plan.chargers:,} chargers (OCPP 1.6J, one EVSE, charging share 0: remote starts only) and "
        f"{r.plan.chargers:,} drivers, one charger each; a driver starts, waits for Started, "
        f"charges {r.plan.charge_seconds:g} s "
        f"(MeterValues every {r.plan.meter_interval:g} s), stops and waits for Priced, then "
        + (
            f"is free again: a session starts every {1 / r.plan.rate * 1e3:.0f} ms on a free driver "
            f"({r.plan.rate:g} sessions/s offered, open loop). "
            if r.plan.rate > 0
            else "starts again (closed loop: the system's capacity, every latency includes the queue). "
        )
        + f"Warm-up {r.plan.warmup:g} s, window {r.plan.seconds:g} s; errors cover warm-up, window and "
        "drain.",
        f"Processes: {_LAYOUTS[r.plan.layout]}, the simulator and the drivers (one process each); Postgres "
        f"and Redis on this machine. Non-default settings of the servers: {settings}; the rest as "
        "configured (access log on, INFO).",
        f"Set-up (not timed): fleet accepted in {r.fleet_ready_seconds:.1f} s, {r.plan.chargers:,} drivers "
        f"registered and logged in over the API in {r.login_seconds:.1f} s.",
        "Load average (1/5/15 min) before the run: "
        + " ".join(f"{x:.2f}" for x in r.load_before)
        + ", at the end of the window: "
        + " ".join(f"{x:.2f}" for x in r.load_after)
        + ".",
    ]
    per_session = ", ".join(
        f"{topic} {n / max(r.completed_in_window, 1):.2f}" for topic, n in r.topics_in_window.items()
    )
    lines.append(f"Events per complete session, by topic (window): {per_session}.")
    answers = ", ".join(
        f"{action} {a['answered']:,.0f} ({a['p50_ms']:.0f} / {a['p99_ms']:.0f})"
        for action, a in r.gateway_answers.items()
    )
    lines.append(
        f"Gateway answers to the chargers in the window, count (CALL→CALLRESULT p50 / p99 ms): {answers}."
    )
    if r.simulator_errors:
        lines.append(f"Simulator errors: {r.simulator_errors}")
    if r.server_errors:
        lines.append("Server errors logged:")
        lines += [f"  {n} x {what}" for what, n in list(r.server_errors.items())[:10]]
    return "\n".join(lines)


def _pace_rows(r: Report) -> list[str]:
    if r.plan.rate <= 0:
        return []
    return [
        _row(
            f"starts asked in the window at {r.plan.rate:g}/s / skipped, every charger busy",
            f"{r.asked_in_window:,} / {r.skipped_in_window:,}",
            "none skipped",
            r.checks["none_skipped"],
        )
    ]


def _phase_rows(r: Report, kind: str) -> list[str]:
    return [
        _row(f"… {name}, p50 / p99 (ms)", f"{p['p50']:.0f} / {p['p99']:.0f}")
        for name, p in r.call_phases_ms.items()
        if name.startswith(kind)
    ]


def _load_rows(load: AggregateLoad | None) -> list[str]:
    if load is None:
        return []
    return [
        _row(
            f"loading a Charger ({load.events:.0f} events) after the run: whole stream (of which reading) "
            "/ cached aggregate + tail read (ms)",
            f"{load.full_ms:.1f} ({load.read_ms:.1f}) / {load.tail_ms:.1f}",
        )
    ]


def _errors(errors: Mapping[str, int]) -> str:
    if not errors:
        return "0"
    return f"{sum(errors.values())}: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items()))


@click.command("lifecycle")
@click.option(
    "--chargers", type=click.IntRange(1, 2_000), default=200, show_default=True, help="Chargers and drivers."
)
@click.option(
    "--seconds", type=click.FloatRange(5, 600), default=60.0, show_default=True, help="Measurement window."
)
@click.option(
    "--warmup", type=click.FloatRange(0, 120), default=5.0, show_default=True, help="Driven but not measured."
)
@click.option(
    "--charge-seconds",
    type=click.FloatRange(0, 60),
    default=1.0,
    show_default=True,
    help="How long a driver charges between Started and the stop call.",
)
@click.option(
    "--meter-interval",
    type=click.FloatRange(0.05, 60),
    default=0.5,
    show_default=True,
    help="Seconds between a charging charger's MeterValues.",
)
@click.option(
    "--layout",
    type=click.Choice(["separate", "combined"]),
    default="separate",
    show_default=True,
    help="separate: `csms serve --role write-api` and `--role gateway` in two processes; "
    "combined: one process with both roles.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the servers' logs here (default: a temporary folder, removed).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0, 1_000),
    default=0.0,
    show_default=True,
    help="Sessions started per second, open loop, on whichever drivers are free (give enough chargers: "
    "each is busy for a whole session); 0: a closed loop, each driver starting again when done.",
)
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def lifecycle(
    ctx: click.Context,
    chargers: int,
    seconds: float,
    warmup: float,
    charge_seconds: float,
    meter_interval: float,
    layout: str,
    log_dir: Path | None,
    rate: float,
    json_file: Path | None,
) -> None:
    """Complete sessions per second (app start → charger → stop → priced) through write API and gateway,
    beside the event store's append floor and ceiling measured in the same run."""
    plan = Plan(chargers, seconds, warmup, charge_seconds, meter_interval, layout, log_dir, rate)
    report = asyncio.run(run(ctx.obj["database_url"], ctx.obj["redis_url"], plan))
    click.echo(format_report(report))
    if json_file is not None:
        figures = {
            **asdict(report),
            "events_per_session": report.events_per_session,
            "transactions_per_session": report.transactions_per_session,
            "checks": report.checks,
        }
        json_file.write_text(json.dumps(figures, indent=2, default=str))
    if not all(report.checks.values()):
        ctx.exit(1)
