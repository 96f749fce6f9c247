"""`csms bench mixed`: every load at once against every role in a process of its own, every objective at once.

The roles run as production runs them, one `csms serve --role ROLE` process each (gateway, projector,
billing, write API, read API), on a scratch database, a Redis key prefix of the run's own and a localstripe.
Three load generators, each in a process of its own, go only to 127.0.0.1:

- **fleet**: `csms bench fleet`'s simulator (N chargers, OCPP 1.6J, Basic auth, heartbeat every 60 s, 30 %
  charging with MeterValues every 10 s), ten chargers to a published station;
- **nearby**: "stations near me" queries around those stations at a set rate (raw HTTP/1.1 keep-alive
  connections, paced), 5 km, a mix of filters;
- **sessions**: drivers (registered over the API, a test card saved at localstripe) start sessions at a
  set rate on the chargers that are not charging: start, Started, charge a few seconds polling the live
  session on the read API every second, stop, Priced (`loadtests.drivers`); billing charges each one.

Phases, once the fleet is accepted and charging: a **baseline** with the fleet alone and a light probe of
nearby queries (the same measurements, so each objective has a figure from the same run to set the mixed
one against), then every load at full rate: a **warm-up** (not measured) and the **window**. Objectives: OCPP
CALL→CALLRESULT p99, read API p99 (nearby and live session), projection lag p99 (`loadtests.projection_lag`:
each projection's age of its oldest unapplied event, sampled every 100 ms, beside the NOTIFY floor), each
role's resident memory at the end of the window against the end of the warm-up, and errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode

import aiohttp
import asyncpg
import click
import psutil

from csms.localstripe import LOCALSTRIPE_SECRET_KEY, free_loopback_port, running_localstripe
from csms.redis_support import redis_client
from loadtests.bench_fleet import CHARGING_SHARE, HEARTBEAT_SECONDS, SimulatorArgs, fleet_simulator
from loadtests.bench_lifecycle import server_errors
from loadtests.drivers import (
    DriverFigures,
    Window,
    drain,
    drive_session,
    paced_sessions,
    sign_up_drivers,
    watching_sessions,
)
from loadtests.http_load import NO_ANSWER, Answers, request_loop
from loadtests.projection_lag import CHARGERS_PER_STATION, LagFigures, LagSampler, sample_lag
from loadtests.scratch import (
    HOST,
    Channel,
    ClientProcesses,
    CpuMeter,
    ServerProcess,
    StationPoint,
    client_processes,
    database_name,
    free_port,
    histogram_state,
    machine_busy_percent,
    merged_histogram,
    named_pids,
    pids_running,
    postgres_pids,
    postmaster_pid,
    raise_open_files_limit,
    register_fleet,
    scratch_database,
    scratch_redis_prefix,
    serve_argv,
    server_process,
    work_dir,
    write_password_file,
)
from loadtests.simulator.fleet import charges
from loadtests.simulator.stats import LatencyHistogram

_TARGET_OCPP_P99_MS: Final = 100.0
_TARGET_READ_P99_MS: Final = 50.0
_TARGET_LAG_P99_MS: Final = 1000.0
_TARGET_DRIFT: Final = 0.05
_DELIVERED_SHARE: Final = 0.95
"""A load counts as delivered when at least this share of what was asked was answered."""
_ROLES: Final = ("gateway", "projector", "billing", "write-api", "read-api")
_PORTS: Final = {
    "gateway": "CSMS_OCPP_PORT",
    "projector": "CSMS_PROJECTOR_PORT",
    "billing": "CSMS_BILLING_PORT",
    "write-api": "CSMS_WRITE_API_PORT",
    "read-api": "CSMS_READ_API_PORT",
}
# Settings raised from their defaults for every role; everything else is as configured.
_TUNING: Final[Mapping[str, str]] = {
    # Every nearby query comes from 127.0.0.1: the per-address limiter runs, and never refuses.
    "CSMS_READ_API_RATE_LIMIT": "1000000000",
    "CSMS_READ_API_RATE_BURST": "1000000000",
    "CSMS_OCPP_HEARTBEAT_INTERVAL_SECONDS": str(int(HEARTBEAT_SECONDS)),
    # The drivers sign up before the fleet's baseline; their tokens must outlast a 10-minute window.
    "CSMS_AUTH_ACCESS_TOKEN_TTL_SECONDS": "7200",
}
# Postgres connections per role: more for the two that append under load (10 queue the concurrent starts,
# as `csms bench lifecycle` found), fewer for the others, so that the five stay well inside a default
# server's max_connections of 100, which the machine's other users share.
_POOL_SIZES: Final[Mapping[str, int]] = {
    "gateway": 16,
    "write-api": 16,
    "projector": 8,
    "billing": 8,
    "read-api": 8,
}
# Chargers connecting per second: about what one gateway process took in during `csms bench fleet`'s ramp
# on this machine, so that the ramp does not turn into a storm of timeouts and reconnections. The baseline
# starts once every charger is accepted and charging, or after the ramp and this grace at the latest.
_RAMP_RATE = 100.0
_SETTLE_GRACE_SECONDS = 600.0
# A fleet simulator answers a lap within milliseconds when well; one with thousands of chargers still
# connecting on a saturated machine once did not answer within a minute.
_LAP_WITHIN_SECONDS = 300.0
_READY_WITHIN_SECONDS = 900.0  # signing up hundreds of drivers costs two argon2 hashes each
_DRAIN_SECONDS = 45.0
_RSS_SAMPLE_SECONDS = 5.0
_NEARBY_RADIUS_KM: Final = 5.0
_NEARBY_PATHS: Final = 4096
# The query mix: (share, extra query parameters); the fleet's chargers are 22 kW type 2 sockets.
_NEARBY_MIX: Final[tuple[tuple[float, dict[str, str]], ...]] = (
    (0.40, {}),
    (0.25, {"available": "true"}),
    (0.20, {"connector": "IEC_62196_T2", "minPowerKw": "11"}),
    (0.15, {"connector": "IEC_62196_T2_COMBO"}),
)
# The nearby load opens a connection for every this many requests/s (at most _MAX_CONNECTIONS): each sends
# its next request when due, or as soon as its last answer is in, so enough of them must be open for the
# asked rate to go on while answers are slow, as many phones' requests would.
_REQUESTS_PER_CONNECTION = 10.0
_MAX_CONNECTIONS = 256
_PROBE_SHARE = 0.05  # the baseline's nearby probe: this share of the asked rate (at least 10/s)
_SESSION_POLL_SECONDS = 1.0
# Each driver has a charger of its own; a session takes about charge_seconds plus this.
_SESSION_OVERHEAD_SECONDS = 10.0


# --------------------------------------------------------------------------- the nearby load


@dataclass(frozen=True, slots=True)
class NearbyArgs:
    port: int
    paths: list[bytes]


def nearby_paths(stations: Sequence[StationPoint], count: int, seed: int) -> list[bytes]:
    """`count` nearby queries, each a little way from a published station, with the mix's filters."""
    rng = random.Random(seed)
    published = [s for s in stations if s.published] or list(stations)
    shares = [share for share, _ in _NEARBY_MIX]
    paths = []
    for _ in range(count):
        station = rng.choice(published)
        (extra,) = rng.choices([params for _, params in _NEARBY_MIX], weights=shares)
        query = {
            "lat": f"{station.latitude + rng.uniform(-0.02, 0.02):.5f}",
            "lon": f"{station.longitude + rng.uniform(-0.03, 0.03):.5f}",
            "radiusKm": f"{_NEARBY_RADIUS_KM:g}",
            **extra,
        }
        paths.append(("/stations/nearby?" + urlencode(query)).encode())
    return paths


async def nearby_load(channel: Channel, args: NearbyArgs) -> dict[str, Any]:
    """Answers each ("run", {rate, warmup, seconds}) with ("measured", figures); ends on ("stop", None)."""
    channel.send("ready", os.getpid())
    while True:
        kind, order = await channel.recv()
        if kind == "stop":
            return {}
        rate, seconds = float(order["rate"]), float(order["seconds"])
        answers, connections = await _paced(args, rate, float(order["warmup"]), seconds)
        channel.send(
            "measured",
            {
                "latency": histogram_state(answers.latency),
                "behind": histogram_state(answers.behind),
                "statuses": dict(answers.statuses),
                "seconds": seconds,
                "connections": connections,
            },
        )


async def _paced(args: NearbyArgs, rate: float, warmup: float, seconds: float) -> tuple[Answers, int]:
    """`rate` requests a second, spread evenly over one connection per `_REQUESTS_PER_CONNECTION`."""
    connections = max(1, min(_MAX_CONNECTIONS, math.ceil(rate / _REQUESTS_PER_CONNECTION)))
    interval = connections / rate
    answers = Answers()
    now = time.perf_counter()
    window = (now + warmup, now + warmup + seconds)

    async def connection(n: int) -> None:
        await asyncio.sleep(n * interval / connections)
        await request_loop(args.port, args.paths, n, connections, window, answers, interval=interval)

    await asyncio.gather(*(connection(n) for n in range(connections)))
    return answers, connections


# --------------------------------------------------------------------------- the sessions load


@dataclass(frozen=True, slots=True)
class SessionArgs:
    api: str
    read_api: str
    database_url: str
    stripe_url: str
    charger_ids: tuple[str, ...]
    rate: float
    charge_seconds: float
    run_id: str


@dataclass
class _Reads:
    """The drivers' GET /sessions/{id} calls made in the window."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    statuses: Counter[str] = field(default_factory=Counter)


async def session_load(channel: Channel, args: SessionArgs) -> dict[str, Any]:
    """Drivers, one charger each: sign up, then from "go" start a session every 1/rate s on a driver
    whose charger is free, until "stop"; then the sessions under way finish (drain)."""
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        began = time.perf_counter()
        signed_up = await sign_up_drivers(http, args.api, args.stripe_url, len(args.charger_ids), args.run_id)
        sign_up_seconds = time.perf_counter() - began
        async with watching_sessions(args.database_url, f"bench-mixed-{args.run_id}") as watch:
            channel.send("ready", {"pid": os.getpid(), "sign_up_seconds": sign_up_seconds})
            window, figures, reads = Window(), DriverFigures(), _Reads()
            free = deque(zip((d.token for d in signed_up), args.charger_ids, strict=True))

            async def charging(token: str, session_id: uuid.UUID, position: int) -> None:
                """The app shows the live session: one GET a second while the car charges."""
                url = f"{args.read_api}/sessions/{session_id}?minPosition={position}"
                ends = time.perf_counter() + args.charge_seconds
                while True:
                    sent = time.perf_counter()
                    try:
                        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as answer:
                            await answer.read()
                            status = str(answer.status)
                    except (aiohttp.ClientError, TimeoutError) as error:
                        status = type(error).__name__
                    answered = time.perf_counter()
                    if window.holds(sent):
                        reads.latency.record(answered - sent)
                        reads.statuses[status] += 1
                    if status != "200":
                        figures.errors[f"GET /sessions/{{id}} {status}"] += 1
                    if answered >= ends:
                        return
                    await asyncio.sleep(min(_SESSION_POLL_SECONDS, ends - answered))

            async def one(driver: tuple[str, str]) -> None:
                token, charger_id = driver
                await drive_session(
                    http,
                    args.api,
                    token,
                    charger_id,
                    watch,
                    window,
                    figures,
                    charge_seconds=args.charge_seconds,
                    charging=lambda session_id, position: charging(token, session_id, position),
                )

            await channel.recv()  # go
            pace, sessions = await paced_sessions(channel, args.rate, free, one, window)
            await drain(list(sessions), _DRAIN_SECONDS, figures)
    return {
        "sign_up_seconds": sign_up_seconds,
        "window_seconds": window.closed - window.opened,
        "asked_in_window": pace.asked,
        "skipped_in_window": pace.skipped,
        "completed_in_window": figures.completed_in_window,
        "started_total": figures.started_total,
        "completed_total": figures.completed_total,
        "start_ms": _percentiles(figures.start_s),
        "stop_ms": _percentiles(figures.stop_s),
        "reads": histogram_state(reads.latency),
        "read_statuses": dict(reads.statuses),
        "errors": dict(figures.errors),
    }


def _percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 and p99 in ms (nearest rank; 0 without samples)."""
    ordered = sorted(samples)

    def rank(share: float) -> float:
        if not ordered:
            return 0.0
        return 1e3 * ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]

    return {"p50": rank(0.50), "p99": rank(0.99)}


# --------------------------------------------------------------------------- the figures


@dataclass
class Phase:
    """What one phase measured: the fleet's calls, the read API, projection lag."""

    seconds: float = 0.0
    ocpp_p50_ms: float = 0.0
    ocpp_p99_ms: float = 0.0
    ocpp_calls_per_s: float = 0.0
    ocpp_action_p99_ms: dict[str, float] = field(default_factory=dict)
    nearby_rate_asked: float = 0.0
    nearby_per_s: float = 0.0
    nearby_p50_ms: float = 0.0
    nearby_p99_ms: float = 0.0
    nearby_behind_p99_ms: float = 0.0
    nearby_statuses: dict[str, int] = field(default_factory=dict)
    session_read_p50_ms: float = 0.0
    session_read_p99_ms: float = 0.0
    session_reads: int = 0
    read_p99_ms: float = 0.0
    lag_p99_ms: dict[str, float] = field(default_factory=dict)
    lag_samples: int = 0
    notify_floor_p99_ms: float = 0.0
    cpu_percent: dict[str, float] = field(default_factory=dict)
    """Each process group's CPU in the phase, % of one core."""
    machine_busy_percent: float = 0.0

    @property
    def worst_lag_p99_ms(self) -> float:
        return max(self.lag_p99_ms.values(), default=math.nan)


@dataclass
class Memory:
    after_warmup_mib: float
    end_mib: float
    peak_mib: float

    @property
    def drift(self) -> float:
        return (self.end_mib - self.after_warmup_mib) / self.after_warmup_mib


@dataclass
class Report:
    chargers: int
    nearby_rate: float
    session_rate: float
    seconds: float
    warmup: float
    baseline_seconds: float
    charge_seconds: float
    drivers: int
    settings: dict[str, str]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)
    settle_seconds: float = 0.0
    sign_up_seconds: float = 0.0
    connected: int = 0
    accepted: int = 0
    baseline: Phase = field(default_factory=Phase)
    mixed: Phase = field(default_factory=Phase)
    memory: dict[str, Memory] = field(default_factory=dict)
    sessions_per_s: float = 0.0
    sessions_asked_in_window: int = 0
    sessions_skipped_in_window: int = 0
    sessions_completed_total: int = 0
    start_ms: dict[str, float] = field(default_factory=dict)
    stop_ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    """Everything the load generators saw go wrong from the start of the baseline to the end of the drain."""
    ramp_errors: dict[str, int] = field(default_factory=dict)
    """The fleet's errors before it settled (its ramp-up): not part of the objective."""
    server_errors: dict[str, int] = field(default_factory=dict)

    @property
    def delivered(self) -> dict[str, bool]:
        """Whether each load was delivered as asked (else the objectives were met under less load)."""
        return {
            "chargers": self.accepted >= self.chargers,
            "nearby": self.mixed.nearby_per_s >= _DELIVERED_SHARE * self.nearby_rate,
            "sessions": self.sessions_per_s >= _DELIVERED_SHARE * self.session_rate,
        }

    @property
    def checks(self) -> dict[str, bool]:
        mixed = self.mixed
        return {
            "ocpp_p99": mixed.ocpp_p99_ms < _TARGET_OCPP_P99_MS,
            "read_p99": mixed.read_p99_ms < _TARGET_READ_P99_MS,
            "projection_lag_p99": mixed.worst_lag_p99_ms < _TARGET_LAG_P99_MS,
            "memory_drift": all(m.drift < _TARGET_DRIFT for m in self.memory.values()),
            "errors": not self.errors and not self.server_errors,
            "load_delivered": all(self.delivered.values()),
        }


def _fleet_figures(phase: Phase, summary: Mapping[str, Any]) -> None:
    actions: dict[str, Any] = summary["actions"]
    overall = merged_histogram(a["latency"] for a in actions.values())
    phase.ocpp_p50_ms = overall.percentile(0.50) * 1e3
    phase.ocpp_p99_ms = overall.percentile(0.99) * 1e3
    phase.ocpp_calls_per_s = sum(a["results"] for a in actions.values()) / max(
        summary["window_seconds"], 1e-9
    )
    phase.ocpp_action_p99_ms = {
        name: merged_histogram([a["latency"]]).percentile(0.99) * 1e3 for name, a in sorted(actions.items())
    }


def _fleet_errors(summary: Mapping[str, Any]) -> Counter[str]:
    return Counter({f"fleet: {kind}": n for kind, n in summary["errors_in_window"].items()})


def _nearby_figures(phase: Phase, measured: Mapping[str, Any], rate: float) -> Counter[str]:
    latency = merged_histogram([measured["latency"]])
    statuses = {int(k): v for k, v in measured["statuses"].items()}
    phase.nearby_rate_asked = rate
    phase.nearby_per_s = statuses.get(200, 0) / measured["seconds"]
    phase.nearby_p50_ms = latency.percentile(0.50) * 1e3
    phase.nearby_p99_ms = latency.percentile(0.99) * 1e3
    phase.nearby_behind_p99_ms = merged_histogram([measured["behind"]]).percentile(0.99) * 1e3
    phase.nearby_statuses = {("no answer" if k == NO_ANSWER else str(k)): v for k, v in statuses.items()}
    return Counter(
        {f"nearby: {'no answer' if k == NO_ANSWER else k}": v for k, v in statuses.items() if k != 200}
    )


def _lag_figures(phase: Phase, sampler: LagSampler) -> None:
    figures: list[LagFigures] = list(sampler.figures.values())
    phase.lag_p99_ms = {f.name: f.percentile(0.99) * 1e3 for f in figures}
    phase.lag_samples = min((len(f.samples) for f in figures), default=0)
    phase.notify_floor_p99_ms = sampler.notify.percentile(0.99) * 1e3


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True)
class Plan:
    chargers: int
    nearby_rate: float
    session_rate: float
    seconds: float
    warmup: float
    baseline_seconds: float
    charge_seconds: float
    log_dir: Path | None


def _idle_chargers(ids: Sequence[str]) -> list[str]:
    """The chargers the fleet does not charge on by itself: the drivers' (the simulator accepts remote
    starts on them)."""
    return [cp for index, cp in enumerate(ids) if not charges(index, CHARGING_SHARE)]


def _pid_of(server: ServerProcess) -> Callable[[], list[int]]:
    return lambda: [server.pid]


async def _sample_rss(servers: Mapping[str, ServerProcess], peaks: dict[str, int], seconds: float) -> None:
    ends = time.monotonic() + seconds
    while (left := ends - time.monotonic()) > 0:
        await asyncio.sleep(min(_RSS_SAMPLE_SECONDS, left))
        for name, server in servers.items():
            with contextlib.suppress(psutil.Error):
                peaks[name] = max(peaks.get(name, 0), server.rss_bytes())


async def run(database_url: str, redis_url: str, plan: Plan) -> Report:
    run_id = uuid.uuid4().hex[:8]
    idle = sum(not charges(index, CHARGING_SHARE) for index in range(plan.chargers))
    wanted = math.ceil(plan.session_rate * (plan.charge_seconds + _SESSION_OVERHEAD_SECONDS))
    drivers = max(1, min(idle, wanted))
    report = Report(
        plan.chargers,
        plan.nearby_rate,
        plan.session_rate,
        plan.seconds,
        plan.warmup,
        plan.baseline_seconds,
        plan.charge_seconds,
        drivers,
        dict(_TUNING),
        os.getloadavg(),
    )
    raise_open_files_limit(plan.chargers + 4 * drivers + 2048)
    postmaster = await postmaster_pid(database_url)
    with (
        work_dir(plan.log_dir, "csms-bench-mixed-") as work,
        running_localstripe(free_loopback_port()) as stripe_url,
    ):
        async with scratch_database(database_url) as url, scratch_redis_prefix(redis_url) as prefix:
            fleet = await register_fleet(url, plan.chargers, per_station=CHARGERS_PER_STATION)
            password_file = work / "passwords.txt"
            write_password_file(password_file, fleet.passwords)
            ports = {role: free_port() for role in _ROLES}
            env = {
                **os.environ,
                "CSMS_DATABASE_URL": url,
                "CSMS_REDIS_URL": redis_url,
                "CSMS_REDIS_KEY_PREFIX": prefix,
                "CSMS_DATA_DIR": str(work),  # the development signing key every role verifies tokens with
                "CSMS_HOST": HOST,
                **{_PORTS[role]: str(port) for role, port in ports.items()},
                "STRIPE_API_KEY": LOCALSTRIPE_SECRET_KEY,
                "CSMS_STRIPE_API_BASE": stripe_url,
                **_TUNING,
            }
            ramp_up = plan.chargers / _RAMP_RATE
            simulator = SimulatorArgs(
                url=f"ws://{HOST}:{ports['gateway']}/ocpp",
                password_file=str(password_file),
                first=0,
                count=plan.chargers,
                id_tag=fleet.id_token,
                ramp_up=ramp_up,
                settle_within=ramp_up + _SETTLE_GRACE_SECONDS,
                seed=0,
            )
            sessions = SessionArgs(
                api=f"http://{HOST}:{ports['write-api']}",
                read_api=f"http://{HOST}:{ports['read-api']}",
                database_url=url,
                stripe_url=stripe_url,
                charger_ids=tuple(_idle_chargers(list(fleet.passwords))[:drivers]),
                rate=plan.session_rate,
                charge_seconds=plan.charge_seconds,
                run_id=run_id,
            )
            nearby = NearbyArgs(ports["read-api"], nearby_paths(fleet.stations, _NEARBY_PATHS, seed=7))
            async with contextlib.AsyncExitStack() as stack:
                servers: dict[str, ServerProcess] = {}
                for role in _ROLES:
                    servers[role] = await stack.enter_async_context(
                        server_process(
                            role,
                            serve_argv(role),
                            ports[role],
                            work,
                            {**env, "CSMS_DB_POOL_SIZE": str(_POOL_SIZES[role])},
                        )
                    )
                fleet_process = await stack.enter_async_context(
                    client_processes(fleet_simulator, [simulator])
                )
                nearby_process = await stack.enter_async_context(client_processes(nearby_load, [nearby]))
                drivers_process = await stack.enter_async_context(client_processes(session_load, [sessions]))
                await _phases(
                    plan,
                    report,
                    url,
                    prefix,
                    redis_url,
                    postmaster,
                    servers,
                    fleet_process,
                    nearby_process,
                    drivers_process,
                    stripe_port=stripe_url.rsplit(":", 1)[1],
                )
            report.server_errors = server_errors([s.log_path for s in servers.values()])
    return report


async def _phases(
    plan: Plan,
    report: Report,
    url: str,
    prefix: str,
    redis_url: str,
    postmaster: int | None,
    servers: Mapping[str, ServerProcess],
    fleet: ClientProcesses,
    nearby: ClientProcesses,
    drivers: ClientProcesses,
    *,
    stripe_port: str,
) -> None:
    await fleet.expect_all("ready", within=120)
    await nearby.expect_all("ready", within=120)
    fleet.send_all("go")
    (settled,) = await fleet.expect_all(
        "settled", within=report.chargers / _RAMP_RATE + _SETTLE_GRACE_SECONDS + 60
    )
    (signed_up,) = await drivers.expect_all("ready", within=_READY_WITHIN_SECONDS)
    report.settle_seconds = settled["seconds"]
    report.sign_up_seconds = signed_up["sign_up_seconds"]
    errors: Counter[str] = Counter()
    meter = CpuMeter(
        {
            **{role: _pid_of(server) for role, server in servers.items()},
            "postgres": lambda: postgres_pids(postmaster, database_name(url)),
            "redis": lambda: named_pids("redis-server"),
            "fleet simulator": lambda: fleet.pids,
            "nearby load": lambda: nearby.pids,
            "drivers": lambda: drivers.pids,
            # Stripe's stand-in, which production does not run, and the bench's own sampling.
            "localstripe": lambda: pids_running("csms.localstripe", "--port", stripe_port),
            "bench (lag and memory sampling)": lambda: [os.getpid()],
        }
    )
    pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
    redis = redis_client(redis_url, max_connections=8)
    try:
        # Baseline: the fleet alone, and a light probe of nearby queries.
        probe = max(10.0, _PROBE_SHARE * plan.nearby_rate)
        sampler = LagSampler(pool, redis, prefix, url)
        fleet.send_all("window")
        nearby.send_all("run", {"rate": probe, "warmup": 0.0, "seconds": plan.baseline_seconds})
        meter.start()
        machine_before = psutil.cpu_times()
        await sample_lag(sampler, plan.baseline_seconds)
        report.baseline.cpu_percent = meter.stop()
        report.baseline.machine_busy_percent = machine_busy_percent(machine_before, psutil.cpu_times())
        fleet.send_all("lap")
        (lap,) = await fleet.expect_all("lap", within=_LAP_WITHIN_SECONDS)
        (measured,) = await nearby.expect_all("measured", within=120)
        report.baseline.seconds = plan.baseline_seconds
        _fleet_figures(report.baseline, lap)
        errors += _fleet_errors(lap)
        errors += _nearby_figures(report.baseline, measured, probe)
        report.baseline.read_p99_ms = report.baseline.nearby_p99_ms
        _lag_figures(report.baseline, sampler)

        # Every load at full rate: warm-up, then the window.
        drivers.send_all("go")
        nearby.send_all("run", {"rate": plan.nearby_rate, "warmup": plan.warmup, "seconds": plan.seconds})
        await asyncio.sleep(plan.warmup)
        fleet.send_all("lap")
        drivers.send_all("window")
        meter.start()
        machine_before = psutil.cpu_times()
        rss_after_warmup = {role: s.rss_bytes() for role, s in servers.items()}
        peaks = dict(rss_after_warmup)
        (warmup_lap,) = await fleet.expect_all("lap", within=_LAP_WITHIN_SECONDS)
        errors += _fleet_errors(warmup_lap)
        sampler = LagSampler(pool, redis, prefix, url)
        await asyncio.gather(sample_lag(sampler, plan.seconds), _sample_rss(servers, peaks, plan.seconds))
        rss_end = {role: s.rss_bytes() for role, s in servers.items()}
        report.mixed.cpu_percent = meter.stop()
        report.mixed.machine_busy_percent = machine_busy_percent(machine_before, psutil.cpu_times())
        report.load_after = os.getloadavg()
        fleet.send_all("lap")
        drivers.send_all("stop")
        (lap,) = await fleet.expect_all("lap", within=_LAP_WITHIN_SECONDS)
        (measured,) = await nearby.expect_all("measured", within=120)
        (figures,) = await drivers.expect_all("result", within=_DRAIN_SECONDS + 120)
        fleet.send_all("stop")
        (final,) = await fleet.expect_all("result", within=300)
        nearby.send_all("stop")
        await nearby.expect_all("result", within=60)
    finally:
        await redis.aclose()
        await pool.close()
    mixed = report.mixed
    mixed.seconds = plan.seconds
    _fleet_figures(mixed, lap)
    errors += _fleet_errors(lap)
    errors += _fleet_errors(final)  # the drain
    errors += _nearby_figures(mixed, measured, plan.nearby_rate)
    reads = merged_histogram([figures["reads"]])
    mixed.session_reads = reads.count
    mixed.session_read_p50_ms = reads.percentile(0.50) * 1e3
    mixed.session_read_p99_ms = reads.percentile(0.99) * 1e3
    nearby_latency = merged_histogram([measured["latency"]])
    mixed.read_p99_ms = merged_histogram([measured["latency"], figures["reads"]]).percentile(0.99) * 1e3
    if nearby_latency.count == 0 and reads.count == 0:
        mixed.read_p99_ms = math.nan
    _lag_figures(mixed, sampler)
    errors.update({f"sessions: {kind}": n for kind, n in figures["errors"].items()})
    dropped = final["dropped"] - settled["dropped"]
    if dropped:
        errors["fleet: connections dropped by the server"] += dropped
    report.errors = dict(errors)
    ramp = Counter(final["errors"])
    ramp.subtract(
        Counter({k.removeprefix("fleet: "): n for k, n in errors.items() if k.startswith("fleet: ")})
    )
    report.ramp_errors = {k: n for k, n in ramp.items() if n > 0}
    report.connected, report.accepted = lap["connected"], lap["accepted"]
    report.memory = {
        role: Memory(
            rss_after_warmup[role] / 2**20, rss_end[role] / 2**20, max(peaks[role], rss_end[role]) / 2**20
        )
        for role in servers
    }
    report.sessions_per_s = figures["completed_in_window"] / max(figures["window_seconds"], 1e-9)
    report.sessions_asked_in_window = figures["asked_in_window"]
    report.sessions_skipped_in_window = figures["skipped_in_window"]
    report.sessions_completed_total = figures["completed_total"]
    report.start_ms, report.stop_ms = figures["start_ms"], figures["stop_ms"]


# --------------------------------------------------------------------------- the table


def _verdict(met: bool) -> str:
    return "yes" if met else "NO"


def _ratio(ours: float, baseline: float) -> str:
    if not baseline or math.isnan(baseline) or math.isnan(ours):
        return ""
    return f"{ours / baseline:.2f}x"


def _row(label: str, mixed: str, baseline: str = "", ratio: str = "", target: str = "", met: str = "") -> str:
    return f"| {label} | {mixed} | {baseline} | {ratio} | {target} | {met} |"


def _errors_text(errors: Mapping[str, int]) -> str:
    if not errors:
        return "0"
    return f"{sum(errors.values()):,}: " + ", ".join(f"{k} x{v}" for k, v in sorted(errors.items()))


def format_report(r: Report) -> str:
    checks = r.checks
    m, b = r.mixed, r.baseline
    probe = b.nearby_rate_asked
    lines = [
        f"| objective | mixed load | baseline: fleet alone + {probe:,.0f} nearby/s | mixed / baseline "
        "| target | met |",
        "|---|---|---|---|---|---|",
        _row(
            "OCPP CALL→CALLRESULT p99 (ms)",
            f"{m.ocpp_p99_ms:.1f}",
            f"{b.ocpp_p99_ms:.1f}",
            _ratio(m.ocpp_p99_ms, b.ocpp_p99_ms),
            f"< {_TARGET_OCPP_P99_MS:.0f} ms",
            _verdict(checks["ocpp_p99"]),
        ),
        _row(
            "  OCPP p50 (ms)",
            f"{m.ocpp_p50_ms:.1f}",
            f"{b.ocpp_p50_ms:.1f}",
            _ratio(m.ocpp_p50_ms, b.ocpp_p50_ms),
        ),
    ]
    lines += [
        _row(
            f"  {action} p99 (ms)",
            f"{m.ocpp_action_p99_ms.get(action, 0.0):.1f}",
            f"{b.ocpp_action_p99_ms[action]:.1f}" if action in b.ocpp_action_p99_ms else "",
        )
        for action in sorted({*m.ocpp_action_p99_ms, *b.ocpp_action_p99_ms})
    ]
    lines += [
        _row("  OCPP calls answered per second", f"{m.ocpp_calls_per_s:,.0f}", f"{b.ocpp_calls_per_s:,.0f}"),
        _row(
            "read API p99 (ms): nearby and live session",
            f"{m.read_p99_ms:.1f}",
            f"{b.read_p99_ms:.1f}",
            _ratio(m.read_p99_ms, b.read_p99_ms),
            f"< {_TARGET_READ_P99_MS:.0f} ms",
            _verdict(checks["read_p99"]),
        ),
        _row(
            "  GET /stations/nearby p50 / p99 (ms)",
            f"{m.nearby_p50_ms:.1f} / {m.nearby_p99_ms:.1f}",
            f"{b.nearby_p50_ms:.1f} / {b.nearby_p99_ms:.1f}",
            _ratio(m.nearby_p99_ms, b.nearby_p99_ms),
        ),
        _row(
            "  GET /stations/nearby p99 from when it was due (ms)",
            f"{m.nearby_behind_p99_ms:.1f}",
            f"{b.nearby_behind_p99_ms:.1f}",
        ),
        _row(
            "  GET /sessions/{id} p50 / p99 (ms)",
            f"{m.session_read_p50_ms:.1f} / {m.session_read_p99_ms:.1f} ({m.session_reads:,} calls)",
        ),
        _row(
            "projection lag p99, worst projection (ms)",
            f"{m.worst_lag_p99_ms:.1f}",
            f"{b.worst_lag_p99_ms:.1f}",
            _ratio(m.worst_lag_p99_ms, b.worst_lag_p99_ms),
            f"< {_TARGET_LAG_P99_MS:.0f} ms",
            _verdict(checks["projection_lag_p99"]),
        ),
    ]
    lines += [
        _row(f"  {name} lag p99 (ms)", f"{m.lag_p99_ms[name]:.1f}", f"{b.lag_p99_ms.get(name, math.nan):.1f}")
        for name in m.lag_p99_ms
    ]
    lines.append(
        _row(
            "  floor: NOTIFY to an idle listener, age since recorded p99 (ms)",
            f"{m.notify_floor_p99_ms:.1f}",
            f"{b.notify_floor_p99_ms:.1f}",
        )
    )
    lines += [
        _row(
            f"memory drift, {role}: RSS after warm-up → end (peak), MiB",
            f"{mem.drift:+.1%} ({mem.after_warmup_mib:.1f} → {mem.end_mib:.1f}, peak {mem.peak_mib:.1f})",
            target=f"< {_TARGET_DRIFT:.0%}",
            met=_verdict(mem.drift < _TARGET_DRIFT),
        )
        for role, mem in r.memory.items()
    ]
    lines += [
        _row(
            "errors seen by the loads (baseline, warm-up, window, drain)",
            _errors_text(r.errors),
            target="0",
            met=_verdict(not r.errors),
        ),
        _row(
            "ERROR lines logged by the roles (whole run)",
            _errors_text(r.server_errors),
            target="0",
            met=_verdict(not r.server_errors),
        ),
        _row(
            "load: chargers connected / accepted at the end",
            f"{r.connected:,} / {r.accepted:,}",
            target=f"{r.chargers:,}",
            met=_verdict(r.delivered["chargers"]),
        ),
        _row(
            "load: nearby requests/s answered 200 (asked)",
            f"{m.nearby_per_s:,.0f} ({r.nearby_rate:,.0f})",
            f"{b.nearby_per_s:,.0f} ({probe:,.0f})",
            target=f">= {_DELIVERED_SHARE:.0%} of asked",
            met=_verdict(r.delivered["nearby"]),
        ),
        _row(
            "load: sessions completed per second (asked)",
            f"{r.sessions_per_s:,.1f} ({r.session_rate:g})",
            target=f">= {_DELIVERED_SHARE:.0%} of asked",
            met=_verdict(r.delivered["sessions"]),
        ),
        _row(
            "  session starts skipped, every driver's charger busy (of asked)",
            f"{r.sessions_skipped_in_window:,} ({r.sessions_asked_in_window:,})",
        ),
        _row(
            "  POST /sessions/start p50 / p99 (ms)",
            f"{r.start_ms.get('p50', 0):.0f} / {r.start_ms.get('p99', 0):.0f}",
        ),
        _row(
            "  POST /sessions/stop p50 / p99 (ms)",
            f"{r.stop_ms.get('p50', 0):.0f} / {r.stop_ms.get('p99', 0):.0f}",
        ),
    ]
    lines += [
        _row(f"CPU % of one core: {name}", f"{pct:.0f}", f"{r.baseline.cpu_percent.get(name, 0.0):.0f}")
        for name, pct in r.mixed.cpu_percent.items()
    ]
    lines.append(
        _row(
            f"machine CPU busy, all processes (% of {psutil.cpu_count()} cores)",
            f"{r.mixed.machine_busy_percent:.0f}",
            f"{r.baseline.machine_busy_percent:.0f}",
        )
    )
    settings = (
        " ".join(f"{k}={v}" for k, v in r.settings.items())
        + ", CSMS_DB_POOL_SIZE "
        + ", ".join(f"{role} {size}" for role, size in _POOL_SIZES.items())
    )
    lines += [
        "",
        f"{r.chargers:,} chargers (OCPP 1.6J, {CHARGERS_PER_STATION} to a published station, heartbeat "
        f"{HEARTBEAT_SECONDS:.0f} s, {CHARGING_SHARE:.0%} charging with MeterValues every 10 s), "
        f"{r.nearby_rate:,.0f} nearby queries/s, {r.session_rate:g} sessions/s ({r.drivers:,} drivers, "
        f"one idle charger each, charging {r.charge_seconds:g} s and polling the live session every "
        f"{_SESSION_POLL_SECONDS:g} s). Baseline {r.baseline_seconds:g} s, warm-up {r.warmup:g} s, window "
        f"{r.seconds:g} s; latency figures are of the window (mixed) and of the baseline.",
        f"Processes: `csms serve --role ROLE` for each of {', '.join(_ROLES)}; fleet simulator, nearby "
        "load and drivers one process each; Postgres, Redis and localstripe on this machine. Non-default "
        f"settings of the roles: {settings}.",
        f"Set-up (not measured): fleet accepted and charging after {r.settle_seconds:.1f} s; drivers signed "
        f"up in {r.sign_up_seconds:.1f} s. Fleet errors during its ramp-up (not in the objective): "
        f"{_errors_text(r.ramp_errors)}.",
        "Load average (1/5/15 min) before the run: "
        + " ".join(f"{x:.2f}" for x in r.load_before)
        + ", at the end of the window: "
        + " ".join(f"{x:.2f}" for x in r.load_after)
        + ".",
    ]
    return "\n".join(lines)


@click.command("mixed")
@click.option("--chargers", type=click.IntRange(1, 15_000), default=10_000, show_default=True)
@click.option(
    "--nearby-rate",
    type=click.FloatRange(1, 10_000),
    default=2_000.0,
    show_default=True,
    help="Nearby queries per second during warm-up and window.",
)
@click.option(
    "--session-rate",
    type=click.FloatRange(0.1, 500),
    default=50.0,
    show_default=True,
    help="Sessions started per second during warm-up and window.",
)
@click.option(
    "--seconds",
    type=click.FloatRange(5, 3600),
    default=600.0,
    show_default=True,
    help="Measurement window with every load.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(0, 600),
    default=60.0,
    show_default=True,
    help="Every load, not measured, before the window.",
)
@click.option(
    "--baseline-seconds",
    type=click.FloatRange(2, 600),
    default=60.0,
    show_default=True,
    help="The fleet alone with a light nearby probe, before the mixed load.",
)
@click.option(
    "--charge-seconds",
    type=click.FloatRange(0, 120),
    default=5.0,
    show_default=True,
    help="How long a driver charges between Started and the stop call.",
)
@click.option(
    "--log-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the roles' logs here (default: a temporary folder, removed).",
)
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def mixed(
    ctx: click.Context,
    chargers: int,
    nearby_rate: float,
    session_rate: float,
    seconds: float,
    warmup: float,
    baseline_seconds: float,
    charge_seconds: float,
    log_dir: Path | None,
    json_file: Path | None,
) -> None:
    """A charger fleet, nearby queries and sessions together against every role in its own process:
    OCPP p99, read p99, projection lag p99, memory drift and errors, beside a fleet-only baseline."""
    plan = Plan(
        chargers, nearby_rate, session_rate, seconds, warmup, baseline_seconds, charge_seconds, log_dir
    )
    report = asyncio.run(run(ctx.obj["database_url"], ctx.obj["redis_url"], plan))
    click.echo(format_report(report))
    if json_file is not None:
        figures = {
            **asdict(report),
            "memory_drift": {role: m.drift for role, m in report.memory.items()},
            "delivered": report.delivered,
            "checks": report.checks,
        }
        json_file.write_text(json.dumps(figures, indent=2, default=str))
    if not all(report.checks.values()):
        ctx.exit(1)
