"""`csms bench storm`: a reconnect storm: N registered chargers connect within seconds and must all get in.

After an outage or a restart every charger reconnects and boots at once. The charger-fleet simulator connects
N registered chargers (OCPP 1.6J, Basic auth) to a `csms serve --role gateway` process on a scratch database,
spread evenly over `--within` seconds. Each boots and, once Accepted, reports its connector's status. Beyond
CSMS_OCPP_BOOTS_PER_SECOND (after a burst of CSMS_OCPP_BOOT_BURST) the gateway answers Pending with the time
until the charger's slot at that pace, which the simulator honours. Measured: the time until every charger
is accepted and has reported its status, Pending answers, failed and dropped connections, and everyone's CPU
second by second (gateway, Postgres, simulator) to show which of them holds the storm back. The same storm
then hits the bare responder (no auth, no persistence, no admission control) in the same run.

`--listen-backlog N` is an experiment for choosing a default: it starts the gateway with the listen backlog of
`csms/cli/serving.py` (4096) patched; it is not a setting.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import click

from csms.settings import Settings
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
    listen_queue_counters,
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
from loadtests.simulator.fleet import Fleet

_TARGET_SECONDS = 30.0
_PROGRESS_SECONDS = 1.0
_TIMELINE_STEP = 5

# `python -c` body for the experiments: the gateway with defaults that are not settings patched first.
_PATCHED_GATEWAY: Final = """\
import os
backlog = os.environ.pop("BENCH_LISTEN_BACKLOG", "")
if backlog:
    from csms.cli import serving
    serving._LISTEN_BACKLOG = int(backlog)
from csms.cli import main
main()
"""


# --------------------------------------------------------------------------- the simulator process


@dataclass(frozen=True, slots=True)
class StormArgs:
    url: str
    password_file: str
    first: int
    count: int
    within: float
    give_up_after: float
    seed: int


@dataclass(slots=True)
class _Arrivals:
    """When each charger got in, in seconds since the storm began (wall clock, shared by processes)."""

    began: float = 0.0
    accepted: dict[str, float] = field(default_factory=dict)
    reported: dict[str, float] = field(default_factory=dict)

    def observe(self, charger_id: str, event: str, action: str, payload: Any) -> None:
        if event != "result":
            return
        if action == "BootNotification" and payload.get("status") == "Accepted":
            self.accepted.setdefault(charger_id, time.time() - self.began)
        elif action == "StatusNotification" and charger_id in self.accepted:
            self.reported.setdefault(charger_id, time.time() - self.began)


async def storm_simulator(channel: Channel, args: StormArgs) -> dict[str, Any]:
    """One simulator process: its share of the storm, from the shared start time until all got in."""
    ids = list(load_passwords(Path(args.password_file)).items())[args.first : args.first + args.count]
    arrivals = _Arrivals()
    config = ChargerConfig(url=args.url, version="1.6", observer=arrivals.observe)
    fleet = Fleet(
        [cp for cp, _ in ids],
        config,
        passwords=dict(ids),
        charging_share=0.0,
        ramp_up=args.within,
        seed=args.seed,
    )
    stats = fleet.stats
    channel.send("ready", os.getpid())
    _, starts_at = await channel.recv()  # go, with the storm's start (wall clock)
    await asyncio.sleep(max(0.0, starts_at - time.time()))
    arrivals.began = starts_at
    stop = asyncio.Event()
    running = asyncio.get_running_loop().create_task(fleet.run(stop=stop))

    def progress() -> dict[str, Any]:
        return {
            "t": time.time() - starts_at,
            "connected": stats.connected,
            "accepted": len(arrivals.accepted),
            "reported": len(arrivals.reported),
            "pending": stats.boots.get("Pending", 0),
            "failures": sum(stats.connect_failures.values()),
        }

    while time.time() - starts_at < args.give_up_after and len(arrivals.reported) < len(ids):
        await asyncio.sleep(_PROGRESS_SECONDS)
        channel.send("progress", progress())
    final = progress()
    dropped = stats.disconnects  # before stop: every disconnect so far was the server's doing
    stop.set()
    await running
    return {
        **final,
        "chargers": len(ids),
        "accepted_at": sorted(arrivals.accepted.values()),
        "reported_at": sorted(arrivals.reported.values()),
        "boots": dict(stats.boots),
        "connect_failures": dict(stats.connect_failures),
        "dropped": dropped,
        "errors": dict(stats.errors),
        "latency": {name: histogram_state(a.latency) for name, a in stats.actions.items()},
    }


# --------------------------------------------------------------------------- one target


@dataclass
class Column:
    target: str
    chargers: int
    accepted: int = 0
    reported: int = 0
    all_accepted_s: float | None = None
    all_reported_s: float | None = None
    accepted_by_s: dict[str, float] = field(default_factory=dict)
    """Share of the chargers accepted by 10 s, 20 s, 30 s, ..."""
    pending_answers: int = 0
    connect_failures: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    boot_p50_ms: float = 0.0
    boot_p99_ms: float = 0.0
    status_p99_ms: float = 0.0
    listen_overflows: dict[str, int] = field(default_factory=dict)
    """Kernel TcpExt counters (whole machine) over the storm: SYNs dropped at a full accept queue."""
    cpu_mean: dict[str, float] = field(default_factory=dict)
    cpu_peak: dict[str, float] = field(default_factory=dict)
    timeline: list[dict[str, float]] = field(default_factory=list)

    def overflows(self, counter: str) -> int:
        return self.listen_overflows.get(counter, 0)


async def _follow(clients: ClientProcesses, index: int, within: float, seen: list[dict[str, Any]]) -> Any:
    """Client `index`'s progress until its result."""
    while True:
        kind, payload = await clients.next_message(index, within)
        if kind == "result":
            return payload
        seen.append(payload)


async def _sample_cpu(meter: CpuMeter, samples: list[dict[str, float]]) -> None:
    meter.start()
    while True:
        await asyncio.sleep(_PROGRESS_SECONDS)
        samples.append(meter.lap())


def _timeline(
    progress: list[list[dict[str, Any]]], cpu: list[dict[str, float]], step: int
) -> list[dict[str, float]]:
    """Every `step` seconds: chargers in, summed over the clients' latest reports, and CPU (mean over the
    step; one sample a second)."""
    rows: list[dict[str, float]] = []
    end = max((p[-1]["t"] for p in progress if p), default=0.0)
    second = step
    while second < end + step:
        row: dict[str, float] = {"t": float(second)}
        latest = [
            max((e for e in p if e["t"] <= second + 0.5), key=lambda e: e["t"], default=None)
            for p in progress
        ]
        for key in ("connected", "accepted", "reported", "pending", "failures"):
            row[key] = float(sum(e[key] for e in latest if e is not None))
        window = cpu[second - step : second]
        for group in ("server", "postgres", "simulator"):
            row[f"{group}_cpu"] = sum(s[group] for s in window) / len(window) if window else 0.0
        rows.append(row)
        second += step
    return rows


async def _measure(
    name: str, server: ServerProcess, args: list[StormArgs], postgres: tuple[int | None, str]
) -> Column:
    column = Column(name, sum(a.count for a in args))
    async with client_processes(storm_simulator, args) as clients:
        await clients.expect_all("ready", within=120)
        meter = CpuMeter(
            {
                "server": lambda: [server.pid],
                "postgres": lambda: postgres_pids(*postgres),
                "simulator": lambda: clients.pids,
            }
        )
        cpu: list[dict[str, float]] = []
        progress: list[list[dict[str, Any]]] = [[] for _ in args]
        counters_before = listen_queue_counters()
        starts_at = time.time() + 0.5
        clients.send_all("go", starts_at)
        await asyncio.sleep(max(0.0, starts_at - time.time()))
        sampler = asyncio.create_task(_sample_cpu(meter, cpu))
        try:
            within = max(a.give_up_after for a in args) + 60
            results = await asyncio.gather(
                *(_follow(clients, i, within, progress[i]) for i in range(len(args)))
            )
        finally:
            sampler.cancel()
        counters = listen_queue_counters()
    column.listen_overflows = {k: v - counters_before.get(k, 0) for k, v in counters.items()}
    accepted = sorted(t for r in results for t in r["accepted_at"])
    reported = sorted(t for r in results for t in r["reported_at"])
    column.accepted, column.reported = len(accepted), len(reported)
    if accepted and len(accepted) == column.chargers:
        column.all_accepted_s = accepted[-1]
    if reported and len(reported) == column.chargers:
        column.all_reported_s = reported[-1]
    horizon = int(max(a.give_up_after for a in args))
    column.accepted_by_s = {
        f"{s}": sum(1 for t in accepted if t <= s) / column.chargers for s in range(10, horizon + 1, 10)
    }
    boots: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in results:
        boots.update(r["boots"])
        failures.update(r["connect_failures"])
        errors.update(r["errors"])
        column.dropped += r["dropped"]
    column.pending_answers = boots.get("Pending", 0)
    column.connect_failures = dict(failures)
    column.errors = dict(errors)
    boot = merged_histogram(r["latency"].get("BootNotification", {"count": 0}) for r in results)
    status = merged_histogram(r["latency"].get("StatusNotification", {"count": 0}) for r in results)
    column.boot_p50_ms = boot.percentile(0.50) * 1e3
    column.boot_p99_ms = boot.percentile(0.99) * 1e3
    column.status_p99_ms = status.percentile(0.99) * 1e3
    # CPU while the storm lasted: until everyone was in (or the benchmark gave up).
    lasted = column.all_reported_s or float(horizon)
    storm = cpu[: max(1, int(lasted + 0.999))]
    for group in ("server", "postgres", "simulator"):
        column.cpu_mean[group] = sum(s[group] for s in storm) / len(storm) if storm else 0.0
        column.cpu_peak[group] = max((s[group] for s in storm), default=0.0)
    column.timeline = _timeline(progress, cpu, _TIMELINE_STEP)
    return column


# --------------------------------------------------------------------------- the run and its table


@dataclass
class Report:
    chargers: int
    within: float
    simulator_processes: int
    boots_per_second: float
    boot_burst: int
    experiment: Experiment
    open_files_limit: int
    columns: list[Column]

    @property
    def ours(self) -> Column:
        return self.columns[0]

    @property
    def checks(self) -> dict[str, bool]:
        ours = self.ours
        return {
            "all accepted in time": ours.all_accepted_s is not None
            and ours.all_accepted_s <= _TARGET_SECONDS,
            "none dropped": ours.dropped == 0 and not ours.connect_failures,
        }


@dataclass(frozen=True, slots=True)
class Experiment:
    """Gateway defaults that are not settings, patched at start-up to measure a proposal."""

    listen_backlog: int | None = None

    def command(self) -> list[str]:
        if self.listen_backlog is None:
            return gateway_argv()
        return [sys.executable, "-c", _PATCHED_GATEWAY, *gateway_argv()[3:]]

    def environment(self) -> dict[str, str]:
        env = {}
        if self.listen_backlog is not None:
            env["BENCH_LISTEN_BACKLOG"] = str(self.listen_backlog)
        return env


async def run(
    database_url: str,
    redis_url: str,
    settings: Settings,
    chargers: int,
    within: float,
    give_up_after: float,
    processes: int,
    experiment: Experiment,
    baseline: bool,
) -> Report:
    open_files = raise_open_files_limit(chargers + 1024)
    columns: list[Column] = []
    postmaster = await postmaster_pid(database_url)
    postgres: tuple[int | None, str] = (postmaster, "")
    with tempfile.TemporaryDirectory(prefix="csms-bench-storm-") as tmp:
        work = Path(tmp)
        async with scratch_database(database_url) as url, scratch_redis_prefix(redis_url) as prefix:
            postgres = (postmaster, database_name(url))
            fleet = await register_fleet(url, chargers)
            password_file = work / "passwords.txt"
            write_password_file(password_file, fleet.passwords)

            def simulators(port: int) -> list[StormArgs]:
                share = -(-chargers // processes)
                return [
                    StormArgs(
                        url=f"ws://{HOST}:{port}/ocpp",
                        password_file=str(password_file),
                        first=first,
                        count=min(share, chargers - first),
                        within=within,
                        give_up_after=give_up_after,
                        seed=first,
                    )
                    for first in range(0, chargers, share)
                ]

            port = free_port()
            env = gateway_environment(url, redis_url, prefix, port, **experiment.environment())
            async with server_process("gateway", experiment.command(), port, work, env) as gateway:
                columns.append(await _measure("ours: csms gateway", gateway, simulators(port), postgres))
        if baseline:
            port = free_port()
            async with server_process("bare-responder", bare_responder_argv(port), port, work) as bare:
                columns.append(await _measure("bare responder", bare, simulators(port), postgres))
    return Report(
        chargers,
        within,
        processes,
        settings.ocpp_boots_per_second,
        settings.ocpp_boot_burst,
        experiment,
        open_files,
        columns,
    )


def _seconds(value: float | None) -> str:
    return "not all" if value is None else f"{value:.1f}"


def format_report(report: Report) -> str:
    columns = report.columns
    checks = report.checks

    def row(label: str, cells: list[str], target: str = "", met: bool | None = None) -> str:
        verdict = "" if met is None else ("yes" if met else "NO")
        return f"| {label} | " + " | ".join(cells) + f" | {target} | {verdict} |"

    lines = [
        "| figure | " + " | ".join(c.target for c in columns) + " | target | met |",
        "|" + "---|" * (len(columns) + 3),
        row("accepted / reported status", [f"{c.accepted:,} / {c.reported:,}" for c in columns]),
        row(
            "all accepted after (s)",
            [_seconds(c.all_accepted_s) for c in columns],
            f"<= {_TARGET_SECONDS:.0f} s",
            checks["all accepted in time"],
        ),
        row("all reported status after (s)", [_seconds(c.all_reported_s) for c in columns]),
    ]
    marks = sorted({k for c in columns for k in c.accepted_by_s}, key=int)
    lines.extend(
        row(f"  accepted by {mark} s", [f"{c.accepted_by_s.get(mark, 0.0):.1%}" for c in columns])
        for mark in marks[:6]
    )
    lines += [
        row("Pending answers", [f"{c.pending_answers:,}" for c in columns]),
        row(
            "failed / dropped connections",
            [f"{sum(c.connect_failures.values())} / {c.dropped}" for c in columns],
            "0 / 0",
            checks["none dropped"],
        ),
        row("other errors", [f"{sum(c.errors.values())}" for c in columns]),
        row(
            "kernel listen-queue overflows / drops",
            [f"{c.overflows('ListenOverflows'):,} / {c.overflows('ListenDrops'):,}" for c in columns],
        ),
        row(
            "BootNotification p50 / p99 (ms)", [f"{c.boot_p50_ms:.1f} / {c.boot_p99_ms:.1f}" for c in columns]
        ),
        row("StatusNotification p99 (ms)", [f"{c.status_p99_ms:.1f}" for c in columns]),
    ]
    for group, label in (("server", "server"), ("postgres", "Postgres"), ("simulator", "simulator")):
        lines.append(
            row(
                f"{label} CPU % mean / peak 1 s",
                [f"{c.cpu_mean.get(group, 0):.0f} / {c.cpu_peak.get(group, 0):.0f}" for c in columns],
            )
        )
    backlog = report.experiment.listen_backlog
    retry = "until the charger's slot at the boot pace, listen backlog " + (
        "4096 (csms's default)" if backlog is None else f"{backlog} (EXPERIMENT: patched, not a setting)"
    )
    lines += [
        "",
        f"{report.chargers:,} registered chargers (OCPP 1.6J, Basic auth) connecting evenly within "
        f"{report.within:g} s; times from the first connection. Gateway admission: "
        f"CSMS_OCPP_BOOTS_PER_SECOND={report.boots_per_second:g}, CSMS_OCPP_BOOT_BURST={report.boot_burst}, "
        f"Pending retry interval {retry}. The simulator ran in {report.simulator_processes} process(es) of "
        "its own; CPU is % of one core (2 cores here, shared by server, Postgres and simulator)."
        + POSTGRES_NOTE
        + f" Open-files limit raised to {report.open_files_limit:,}.",
    ]
    for c in columns:
        if c.connect_failures:
            lines.append(f"Connect failures ({c.target}): {c.connect_failures}")
        if c.errors:
            lines.append(f"Errors ({c.target}): {c.errors}")
    for c in columns:
        lines += [
            "",
            f"Timeline ({c.target}):",
            "",
            "| t (s) | connected | accepted | status reported | Pending answers | failed connects "
            "| server CPU % | Postgres CPU % | simulator CPU % |",
            "|" + "---|" * 9,
        ]
        lines.extend(
            f"| {r['t']:.0f} | {r['connected']:,.0f} | {r['accepted']:,.0f} | {r['reported']:,.0f} "
            f"| {r['pending']:,.0f} | {r['failures']:,.0f} | {r['server_cpu']:.0f} | {r['postgres_cpu']:.0f} "
            f"| {r['simulator_cpu']:.0f} |"
            for r in c.timeline
        )
    return "\n".join(lines)


@click.command("storm")
@click.option("--chargers", type=click.IntRange(1, 15_000), default=10_000, show_default=True)
@click.option(
    "--within",
    type=click.FloatRange(0),
    default=10.0,
    show_default=True,
    help="Seconds over which the chargers connect (evenly spread).",
)
@click.option(
    "--give-up-after",
    type=click.FloatRange(10, 600),
    default=120.0,
    show_default=True,
    help="Stop waiting for stragglers after this many seconds.",
)
@click.option("--simulator-processes", type=click.IntRange(1, 8), default=1, show_default=True)
@click.option(
    "--listen-backlog",
    type=click.IntRange(1, 65535),
    default=None,
    help="Experiment: patch the gateway's listen backlog (csms's default: 4096).",
)
@click.option(
    "--baseline/--no-baseline", default=True, show_default=True, help="Also storm the bare responder."
)
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def storm(
    ctx: click.Context,
    chargers: int,
    within: float,
    give_up_after: float,
    simulator_processes: int,
    listen_backlog: int | None,
    baseline: bool,
    json_file: Path | None,
) -> None:
    """A reconnect storm: N registered chargers connect within seconds; time until all are accepted and
    have reported status, Pending answers, failed connections, beside the bare responder."""
    report = asyncio.run(
        run(
            ctx.obj["database_url"],
            ctx.obj["redis_url"],
            ctx.obj["settings"],
            chargers,
            within,
            give_up_after,
            simulator_processes,
            Experiment(listen_backlog),
            baseline,
        )
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
