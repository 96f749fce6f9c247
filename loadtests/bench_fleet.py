"""`csms bench fleet`: a large fleet at its everyday pace: latency, errors and memory per connection.

The charger-fleet simulator (`loadtests/simulator`) connects N registered chargers (OCPP 1.6J, Basic auth)
to a `csms serve --role gateway` process on a scratch database, ramped up gently (`--ramp-rate`): heartbeat
every 60 s, 30% of them charging with MeterValues every 10 s. Once every charger is accepted and every
session has started, the measurement window runs for `--minutes`: CALL→CALLRESULT latency of everything the
chargers send, and the gateway's resident memory with N connections beside before connecting. The same
fleet then runs against the bare responder (aiohttp + orjson canned answers: no auth, no persistence) in
the same run.

The simulator runs in processes of its own, so its CPU does not count against the server's; the machine's
cores are shared by server, Postgres and simulator, and each one's CPU use is printed.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import click

from loadtests.scratch import (
    HOST,
    POSTGRES_NOTE,
    Channel,
    ClientProcesses,
    CpuMeter,
    ServerProcess,
    bare_responder_argv,
    client_processes,
    database_name,
    free_port,
    gateway_argv,
    gateway_environment,
    histogram_state,
    merged_histogram,
    postgres_pids,
    postmaster_pid,
    raise_open_files_limit,
    register_fleet,
    scratch_database,
    scratch_redis_prefix,
    server_process,
    write_password_file,
)
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.credentials import load_passwords
from loadtests.simulator.fleet import Fleet, charges
from loadtests.simulator.stats import Stats

HEARTBEAT_SECONDS: Final = 60.0
METER_INTERVAL_SECONDS: Final = 10.0
CHARGING_SHARE: Final = 0.3
_TARGET_P99_MS = 50.0
_TARGET_KIB_PER_CONNECTION = 30.0
_SAMPLE_SECONDS = 5.0
# Below what one gateway process takes in when chargers connect, boot and report status (measured by
# `csms bench storm`: about 350-400 per second on 2 cores), so the ramp stays a ramp and not a storm.
_RAMP_RATE = 300.0
# Past this wait for every charger to be accepted and charging, the window starts anyway (and says so).
_SETTLE_GRACE_SECONDS = 90.0


# --------------------------------------------------------------------------- the simulator process


@dataclass(frozen=True, slots=True)
class SimulatorArgs:
    url: str
    password_file: str
    first: int
    count: int
    id_tag: str
    ramp_up: float
    settle_within: float
    seed: int


async def fleet_simulator(channel: Channel, args: SimulatorArgs) -> dict[str, Any]:
    """One simulator process: its slice of the fleet, driven by the benchmark's go / window / stop."""
    loop = asyncio.get_running_loop()
    ids = list(load_passwords(Path(args.password_file)).items())[args.first : args.first + args.count]
    config = ChargerConfig(
        url=args.url,
        version="1.6",
        heartbeat=HEARTBEAT_SECONDS,
        meter_interval=METER_INTERVAL_SECONDS,
        session_duration=24 * 3600.0,  # longer than any run: sessions go on through the window
        idle_duration=METER_INTERVAL_SECONDS,  # first sessions start within this after boot
        id_tag=args.id_tag,
    )
    fleet = Fleet(
        [cp for cp, _ in ids],
        config,
        passwords=dict(ids),
        charging_share=CHARGING_SHARE,
        ramp_up=args.ramp_up,
        seed=args.seed,
    )
    stats = fleet.stats
    sessions = sum(charges(i, CHARGING_SHARE) for i in range(len(ids)))
    channel.send("ready", os.getpid())
    await channel.recv()  # go
    stop = asyncio.Event()
    began = loop.time()
    running = loop.create_task(fleet.run(stop=stop))
    while loop.time() - began < args.settle_within:
        if stats.accepted >= len(ids) and stats.sessions_started >= sessions:
            break
        await asyncio.sleep(0.25)
    channel.send(
        "settled",
        {
            "seconds": loop.time() - began,
            "accepted": stats.accepted,
            "sessions": stats.sessions_started,
            "expected_sessions": sessions,
            "dropped": stats.disconnects,
        },
    )
    await channel.recv()  # window
    # Each "lap" answers with the figures since the window (or the last lap) began and starts anew, so
    # one fleet can serve several measured phases; "stop" ends the last one.
    while True:
        stats.actions = {}  # latency from here on only; calls in flight finish in the old figures
        errors_before = dict(stats.errors)
        cpu_before, window_began = time.process_time(), loop.time()
        kind, _ = await channel.recv()
        summary = _window_summary(
            len(ids), stats, errors_before, loop.time() - window_began, time.process_time() - cpu_before
        )
        if kind != "lap":
            break
        channel.send("lap", summary)
    stop.set()
    await running
    return summary


def _window_summary(
    chargers: int, stats: Stats, errors_before: dict[str, int], window: float, cpu: float
) -> dict[str, Any]:
    actions = {
        name: {
            "sent": a.sent,
            "results": a.results,
            "errors": a.errors,
            "timeouts": a.timeouts,
            "lost": a.lost,
            "latency": histogram_state(a.latency),
        }
        for name, a in stats.actions.items()
    }
    return {
        "chargers": chargers,
        "connected": stats.connected,
        "accepted": stats.accepted,
        "sessions_running": stats.sessions_started - stats.sessions_ended,
        "boots": dict(stats.boots),
        "dropped": stats.disconnects,  # before stop: every disconnect so far is one the server caused
        "connect_failures": dict(stats.connect_failures),
        "errors": dict(stats.errors),
        "errors_in_window": {
            kind: n - errors_before.get(kind, 0)
            for kind, n in stats.errors.items()
            if n > errors_before.get(kind, 0)
        },
        "window_seconds": window,
        "cpu_percent": 100.0 * cpu / window if window else 0.0,
        "actions": actions,
    }


# --------------------------------------------------------------------------- one target


@dataclass
class Column:
    target: str
    chargers: int
    connected: int = 0
    accepted: int = 0
    sessions: int = 0
    settle_seconds: float = 0.0
    calls_per_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    action_p99_ms: dict[str, float] = field(default_factory=dict)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    boots: dict[str, int] = field(default_factory=dict)
    rss_before_mib: float = 0.0
    rss_with_fleet_mib: float = 0.0
    rss_peak_mib: float = 0.0
    kib_per_connection: float = 0.0
    server_cpu: float = 0.0
    postgres_cpu: float = 0.0
    simulator_cpu: float = 0.0


async def _window(
    server: ServerProcess, clients: ClientProcesses, seconds: float, postgres: tuple[int | None, str]
) -> tuple[dict[str, float], int, int]:
    """Run the measurement window: CPU of everyone, and the server's RSS at the end and at its peak."""
    meter = CpuMeter(
        {
            "server": lambda: [server.pid],
            "postgres": lambda: postgres_pids(*postgres),
            "simulator": lambda: clients.pids,
        }
    )
    meter.start()
    clients.send_all("window")
    peak = server.rss_bytes()
    ends = time.monotonic() + seconds
    while (left := ends - time.monotonic()) > 0:
        await asyncio.sleep(min(_SAMPLE_SECONDS, left))
        peak = max(peak, server.rss_bytes())
    cpu = meter.stop()
    rss = server.rss_bytes()
    return cpu, rss, max(peak, rss)


async def _measure(
    name: str,
    server: ServerProcess,
    args: list[SimulatorArgs],
    seconds: float,
    postgres: tuple[int | None, str],
) -> Column:
    column = Column(name, sum(a.count for a in args))
    await asyncio.sleep(1.0)  # let the freshly started server settle before taking its idle memory
    rss_before = server.rss_bytes()
    async with client_processes(fleet_simulator, args) as clients:
        await clients.expect_all("ready", within=120)
        clients.send_all("go")
        settled = await clients.expect_all("settled", within=max(a.settle_within for a in args) + 60)
        column.settle_seconds = max(s["seconds"] for s in settled)
        cpu, rss, peak = await _window(server, clients, seconds, postgres)
        clients.send_all("stop")
        results = await clients.expect_all("result", within=180)
    histograms: list[dict[str, Any]] = []
    per_action: dict[str, list[dict[str, Any]]] = {}
    errors: Counter[str] = Counter()
    boots: Counter[str] = Counter()
    answered = 0.0
    for result in results:
        for action, figures in result["actions"].items():
            histograms.append(figures["latency"])
            per_action.setdefault(action, []).append(figures["latency"])
            answered += figures["results"] / result["window_seconds"]
        errors.update(result["errors"])
        errors.update({f"connect failure: {k}": v for k, v in result["connect_failures"].items()})
        if result["dropped"]:
            errors["connections dropped by the server"] += result["dropped"]
        boots.update(result["boots"])
    overall = merged_histogram(histograms)
    column.connected = sum(r["connected"] for r in results)
    column.accepted = sum(r["accepted"] for r in results)
    column.sessions = sum(r["sessions_running"] for r in results)
    column.calls_per_s = answered
    column.p50_ms = overall.percentile(0.50) * 1e3
    column.p99_ms = overall.percentile(0.99) * 1e3
    column.action_p99_ms = {
        action: merged_histogram(states).percentile(0.99) * 1e3
        for action, states in sorted(per_action.items())
    }
    column.errors = sum(errors.values())
    column.error_kinds = dict(errors)
    column.boots = dict(boots)
    column.rss_before_mib = rss_before / 2**20
    column.rss_with_fleet_mib = rss / 2**20
    column.rss_peak_mib = peak / 2**20
    column.kib_per_connection = (rss - rss_before) / 1024 / max(column.connected, 1)
    column.server_cpu = cpu["server"]
    column.postgres_cpu = cpu["postgres"]
    column.simulator_cpu = cpu["simulator"]
    return column


# --------------------------------------------------------------------------- the run and its table


@dataclass
class Report:
    chargers: int
    minutes: float
    ramp_up: float
    simulator_processes: int
    open_files_limit: int
    registration_seconds: float
    columns: list[Column]

    @property
    def ours(self) -> Column:
        return self.columns[0]

    @property
    def checks(self) -> dict[str, bool]:
        ours = self.ours
        return {
            "p99": ours.p99_ms <= _TARGET_P99_MS,
            "errors": ours.errors == 0 and ours.connected == self.chargers,
            "memory": ours.kib_per_connection <= _TARGET_KIB_PER_CONNECTION,
        }


async def run(
    database_url: str, redis_url: str, chargers: int, minutes: float, ramp_up: float, processes: int
) -> Report:
    open_files = raise_open_files_limit(chargers + 1024)
    columns: list[Column] = []
    postmaster = await postmaster_pid(database_url)
    postgres: tuple[int | None, str] = (postmaster, "")
    with tempfile.TemporaryDirectory(prefix="csms-bench-fleet-") as tmp:
        work = Path(tmp)
        async with scratch_database(database_url) as url, scratch_redis_prefix(redis_url) as prefix:
            postgres = (postmaster, database_name(url))
            fleet = await register_fleet(url, chargers)
            password_file = work / "passwords.txt"
            write_password_file(password_file, fleet.passwords)

            def simulators(port: int) -> list[SimulatorArgs]:
                share = -(-chargers // processes)
                return [
                    SimulatorArgs(
                        url=f"ws://{HOST}:{port}/ocpp",
                        password_file=str(password_file),
                        first=first,
                        count=min(share, chargers - first),
                        id_tag=fleet.id_token,
                        ramp_up=ramp_up,
                        settle_within=ramp_up + _SETTLE_GRACE_SECONDS,
                        seed=first,
                    )
                    for first in range(0, chargers, share)
                ]

            port = free_port()
            env = gateway_environment(
                url, redis_url, prefix, port, CSMS_OCPP_HEARTBEAT_INTERVAL_SECONDS=str(int(HEARTBEAT_SECONDS))
            )
            async with server_process("gateway", gateway_argv(), port, work, env) as gateway:
                columns.append(
                    await _measure("ours: csms gateway", gateway, simulators(port), minutes * 60, postgres)
                )
            port = free_port()
            async with server_process("bare-responder", bare_responder_argv(port), port, work) as bare:
                columns.append(
                    await _measure("bare responder", bare, simulators(port), minutes * 60, postgres)
                )
    return Report(chargers, minutes, ramp_up, processes, open_files, fleet.seconds, columns)


def _row(label: str, cells: list[str], target: str = "", met: bool | None = None) -> str:
    verdict = "" if met is None else ("yes" if met else "NO")
    return f"| {label} | " + " | ".join(cells) + f" | {target} | {verdict} |"


def format_report(report: Report) -> str:
    columns = report.columns
    checks = report.checks
    lines = [
        "| figure | " + " | ".join(c.target for c in columns) + " | target | met |",
        "|" + "---|" * (len(columns) + 3),
        _row("chargers connected / accepted", [f"{c.connected:,} / {c.accepted:,}" for c in columns]),
        _row("sessions charging", [f"{c.sessions:,}" for c in columns]),
        _row("all accepted and charging after (s)", [f"{c.settle_seconds:.1f}" for c in columns]),
        _row("calls answered per second (window)", [f"{c.calls_per_s:,.0f}" for c in columns]),
        _row("CALL→CALLRESULT p50 (ms)", [f"{c.p50_ms:.2f}" for c in columns]),
        _row(
            "CALL→CALLRESULT p99 (ms)",
            [f"{c.p99_ms:.2f}" for c in columns],
            f"<= {_TARGET_P99_MS:.0f} ms",
            checks["p99"],
        ),
    ]
    actions = sorted({a for c in columns for a in c.action_p99_ms})
    lines.extend(
        _row(f"  {action} p99 (ms)", [f"{c.action_p99_ms.get(action, 0.0):.2f}" for c in columns])
        for action in actions
    )
    lines += [
        _row("errors (whole run)", [f"{c.errors}" for c in columns], "0", checks["errors"]),
        _row("RSS before connecting (MiB)", [f"{c.rss_before_mib:.1f}" for c in columns]),
        _row("RSS with the fleet (MiB)", [f"{c.rss_with_fleet_mib:.1f}" for c in columns]),
        _row("RSS peak during the window (MiB)", [f"{c.rss_peak_mib:.1f}" for c in columns]),
        _row(
            "RSS per connection (KiB)",
            [f"{c.kib_per_connection:.1f}" for c in columns],
            f"<= {_TARGET_KIB_PER_CONNECTION:.0f} KiB",
            checks["memory"],
        ),
        _row("server CPU % (window)", [f"{c.server_cpu:.0f}" for c in columns]),
        _row("Postgres CPU % (window)", [f"{c.postgres_cpu:.0f}" for c in columns]),
        _row("simulator CPU % (window)", [f"{c.simulator_cpu:.0f}" for c in columns]),
        "",
        f"{report.chargers:,} chargers (OCPP 1.6J) ramped up over {report.ramp_up:.0f} s, heartbeat every "
        f"{HEARTBEAT_SECONDS:.0f} s, {CHARGING_SHARE:.0%} charging with MeterValues every "
        f"{METER_INTERVAL_SECONDS:.0f} s; measured over {report.minutes:g} min once all were accepted and "
        "charging. RSS per connection = (RSS with the fleet - RSS before connecting) / connected chargers "
        "(VmRSS of the server process).",
        f"The simulator ran in {report.simulator_processes} process(es) of its own; CPU is % of one core "
        "(2 cores here, shared by server, Postgres and simulator)."
        + POSTGRES_NOTE
        + f" Open-files limit raised to {report.open_files_limit:,}. Gateway settings as configured, "
        f"heartbeat interval {HEARTBEAT_SECONDS:.0f} s.",
    ]
    lines.extend(f"Errors ({c.target}): {c.error_kinds}" for c in columns if c.error_kinds)
    lines.extend(f"Boots ({c.target}): {c.boots}" for c in columns)
    return "\n".join(lines)


@click.command("fleet")
@click.option("--chargers", type=click.IntRange(1, 15_000), default=10_000, show_default=True)
@click.option(
    "--minutes", type=click.FloatRange(0.1, 30), default=2.0, show_default=True, help="Measurement window."
)
@click.option(
    "--ramp-rate",
    type=click.FloatRange(1),
    default=_RAMP_RATE,
    show_default=True,
    help="Chargers connecting per second before the window (the ramp itself is not measured).",
)
@click.option("--simulator-processes", type=click.IntRange(1, 8), default=1, show_default=True)
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def fleet(
    ctx: click.Context,
    chargers: int,
    minutes: float,
    ramp_rate: float,
    simulator_processes: int,
    json_file: Path | None,
) -> None:
    """N simulated chargers connected to the gateway at their everyday pace: latency, errors, memory per
    connection, beside the bare responder."""
    ramp = chargers / ramp_rate
    report = asyncio.run(
        run(ctx.obj["database_url"], ctx.obj["redis_url"], chargers, minutes, ramp, simulator_processes)
    )
    click.echo(format_report(report))
    if json_file is not None:
        figures = {
            **{k: v for k, v in asdict(report).items() if k != "columns"},
            "columns": [asdict(c) for c in report.columns],
            "checks": report.checks,
        }
        json_file.write_text(json.dumps(figures, indent=2))
    if not all(report.checks.values()):
        ctx.exit(1)
