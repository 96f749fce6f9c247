"""`csms bench ingest`: MeterValues throughput of the gateway beside the `ocpp` library and a bare responder.

N chargers (OCPP 1.6J) each boot, start one transaction, then send MeterValues back to back (the next one as
soon as the previous CALLRESULT arrives; timestamps and energy always rising) for the duration. The same lean
client drives, one after the other in the same run, each server in a process of its own:

- ours: `csms serve --role gateway` on a scratch database, chargers registered with passwords (Basic auth).
  Every MeterValues is appended as ChargingSession.MeterValuesRecorded before its CALLRESULT; the benchmark
  counts those events at the end against the MeterValues the gateway answered.
- the `ocpp` library's central system as its documentation writes one (`loadtests/baselines`), no persistence.
- the bare responder: aiohttp + orjson canned answers, the ceiling of a Python WebSocket server here.

The client runs in processes of its own (`--client-processes`) so that its CPU is not the server's; its CPU
use is printed beside the servers' so that a saturated client shows.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
import click
import orjson

from loadtests.scratch import (
    HOST,
    POSTGRES_NOTE,
    Channel,
    CpuMeter,
    ServerProcess,
    bare_responder_argv,
    client_processes,
    count_events,
    database_name,
    free_port,
    gateway_argv,
    gateway_environment,
    histogram_state,
    library_server_argv,
    merged_histogram,
    postgres_pids,
    postmaster_pid,
    register_fleet,
    scratch_database,
    scratch_redis_prefix,
    server_process,
)
from loadtests.simulator.charger import basic_authorization
from loadtests.simulator.frames import CALLERROR, CALLRESULT, call, utc_timestamp
from loadtests.simulator.stats import LatencyHistogram

METER_VALUES_TOPIC: Final = "ChargingSession.MeterValuesRecorded"
#: The gateway's per-charger rate limit is lifted for this benchmark: each charger sends flat out.
GATEWAY_OVERRIDES: Final = {"CSMS_OCPP_RATE_LIMIT": "1000000", "CSMS_OCPP_RATE_BURST": "1000000"}
_RESPONSE_TIMEOUT = 30.0
_SETUP_CONCURRENCY = 50
_TARGET_VS_LIBRARY = 2.0
_GOAL_VS_LIBRARY = 3.0


# --------------------------------------------------------------------------- the lean client


@dataclass(frozen=True, slots=True)
class ClientArgs:
    url: str
    chargers: list[tuple[str, str]]
    """(charge point id, password) of this client's chargers."""
    id_tag: str
    seconds: float


@dataclass(slots=True)
class _Tally:
    """What one client process measured."""

    answered_in_window: int = 0
    answered_total: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors: Counter[str] = field(default_factory=Counter)


class CallFailed(Exception):
    """A CALL got a CALLERROR, no answer, or a frame that is not its answer."""


class LeanCharger:
    """One charger on its own WebSocket: one CALL at a time, answers read inline (no reader task)."""

    __slots__ = ("energy_wh", "id", "last_ms", "transaction_id", "uid", "ws")

    def __init__(self, charge_point_id: str, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.id = charge_point_id
        self.ws = ws
        self.uid = 0
        self.last_ms = 0
        self.energy_wh = 1_000_000
        self.transaction_id: int | None = None

    def timestamp(self) -> str:
        """Now, but always at least 1 ms after the previous one: every reading must be newer than the last."""
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        return utc_timestamp(self.last_ms / 1000)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.uid += 1
        uid = str(self.uid)
        await self.ws.send_frame(call(uid, action, payload), aiohttp.WSMsgType.TEXT)
        message = await self.ws.receive(timeout=_RESPONSE_TIMEOUT)
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise CallFailed(f"{action}: connection {message.type.name.lower()}")
        frame = orjson.loads(message.data)
        if frame[0] == CALLRESULT and frame[1] == uid and isinstance(frame[2], dict):
            result: dict[str, Any] = frame[2]
            return result
        if frame[0] == CALLERROR:
            raise CallFailed(f"{action}: CALLERROR {frame[2]}")
        raise CallFailed(f"{action}: unexpected frame")

    def start_transaction(self, id_tag: str) -> dict[str, Any]:
        return {
            "connectorId": 1,
            "idTag": id_tag,
            "meterStart": self.energy_wh,
            "timestamp": self.timestamp(),
        }

    def meter_values(self) -> dict[str, Any]:
        self.energy_wh += 7
        return {
            "connectorId": 1,
            "transactionId": self.transaction_id,
            "meterValue": [
                {
                    "timestamp": self.timestamp(),
                    "sampledValue": [
                        {
                            "value": str(self.energy_wh),
                            "context": "Sample.Periodic",
                            "measurand": "Energy.Active.Import.Register",
                            "location": "Outlet",
                            "unit": "Wh",
                        },
                        {
                            "value": "11000",
                            "context": "Sample.Periodic",
                            "measurand": "Power.Active.Import",
                            "location": "Outlet",
                            "unit": "W",
                        },
                    ],
                }
            ],
        }


async def _connect(
    http: aiohttp.ClientSession, args: ClientArgs, charge_point_id: str, password: str
) -> LeanCharger:
    ws = await http.ws_connect(
        f"{args.url}/{charge_point_id}",
        protocols=("ocpp1.6",),
        headers={"Authorization": basic_authorization(charge_point_id, password)},
        heartbeat=None,
        compress=0,
    )
    charger = LeanCharger(charge_point_id, ws)
    boot = await charger.call(
        "BootNotification", {"chargePointVendor": "CSMS-Bench", "chargePointModel": "Ingest"}
    )
    if boot.get("status") != "Accepted":
        raise CallFailed(f"BootNotification: {boot.get('status')}")
    started = await charger.call("StartTransaction", charger.start_transaction(args.id_tag))
    if started.get("idTagInfo", {}).get("status") != "Accepted":
        raise CallFailed(f"StartTransaction: {started.get('idTagInfo')}")
    charger.transaction_id = started["transactionId"]
    return charger


async def _send_meter_values(charger: LeanCharger, until: float, tally: _Tally) -> None:
    """Back to back until `until` (perf counter); the CALL in flight at the end is still awaited."""
    latency = tally.latency
    while True:
        sent_at = time.perf_counter()
        if sent_at >= until:
            return
        try:
            await charger.call("MeterValues", charger.meter_values())
        except (CallFailed, TimeoutError, aiohttp.ClientError, ConnectionError) as error:
            tally.errors[str(error) or type(error).__name__] += 1
            if charger.ws.closed:
                return
            continue
        answered_at = time.perf_counter()
        tally.answered_total += 1
        if answered_at <= until:
            tally.answered_in_window += 1
            latency.record(answered_at - sent_at)


async def ingest_client(channel: Channel, args: ClientArgs) -> dict[str, Any]:
    """One client process: set every charger up, report ready, and on "go" run for `args.seconds`."""
    tally = _Tally()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        limit = asyncio.Semaphore(_SETUP_CONCURRENCY)

        async def setup(charge_point_id: str, password: str) -> LeanCharger | None:
            async with limit:
                try:
                    return await _connect(http, args, charge_point_id, password)
                except (CallFailed, TimeoutError, aiohttp.ClientError, OSError) as error:
                    tally.errors[f"setup: {error}"] += 1
                    return None

        results = await asyncio.gather(*(setup(cp, pw) for cp, pw in args.chargers))
        chargers = [c for c in results if c is not None]
        channel.send("ready", len(chargers))
        await channel.recv()  # "go"
        cpu_before = time.process_time()
        began = time.perf_counter()
        until = began + args.seconds
        await asyncio.gather(*(_send_meter_values(c, until, tally) for c in chargers))
        cpu = time.process_time() - cpu_before
        for charger in chargers:
            await charger.ws.close()
    return {
        "chargers": len(chargers),
        "answered_in_window": tally.answered_in_window,
        "answered_total": tally.answered_total,
        "seconds": args.seconds,
        "cpu_percent": 100.0 * cpu / args.seconds,
        "latency": histogram_state(tally.latency),
        "errors": dict(tally.errors),
    }


# --------------------------------------------------------------------------- one target, then the table


@dataclass
class Row:
    target: str
    chargers: int
    messages_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    answered_total: int
    server_cpu: float
    postgres_cpu: float
    client_cpu: float
    error_kinds: dict[str, int] = field(default_factory=dict)


async def _measure(
    postgres: tuple[int | None, str],
    name: str,
    server: ServerProcess,
    chargers: list[tuple[str, str]],
    id_tag: str,
    seconds: float,
    clients: int,
) -> Row:
    url = f"ws://{HOST}:{server.port}/ocpp"
    shares = [chargers[i::clients] for i in range(clients)]
    args = [ClientArgs(url, share, id_tag, seconds) for share in shares]
    async with client_processes(ingest_client, args) as processes:
        ready = await processes.expect_all("ready", within=120)
        meter = CpuMeter({"server": lambda: [server.pid], "postgres": lambda: postgres_pids(*postgres)})
        meter.start()
        processes.send_all("go")
        await asyncio.sleep(seconds)
        cpu = meter.stop()
        results = await processes.expect_all("result", within=_RESPONSE_TIMEOUT + 30)
    histogram = merged_histogram([r["latency"] for r in results])
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result["errors"])
    return Row(
        target=name,
        chargers=sum(ready),
        messages_per_s=sum(r["answered_in_window"] for r in results) / seconds,
        p50_ms=histogram.percentile(0.50) * 1e3,
        p99_ms=histogram.percentile(0.99) * 1e3,
        errors=sum(errors.values()),
        answered_total=sum(r["answered_total"] for r in results),
        server_cpu=cpu["server"],
        postgres_cpu=cpu["postgres"],
        client_cpu=sum(r["cpu_percent"] for r in results),
        error_kinds=dict(errors),
    )


@dataclass
class Report:
    chargers: int
    seconds: float
    client_processes: int
    rounds: list[tuple[Row, Row]]
    """(ours, library) per round, measured one right after the other."""
    bare: Row
    events_recorded: int
    registration_seconds: float

    @property
    def rows(self) -> list[Row]:
        return [row for pair in self.rounds for row in pair] + [self.bare]

    @property
    def ratios(self) -> list[float]:
        """Ours / library, per round."""
        return [_ratio(ours, library) for ours, library in self.rounds]

    @property
    def ratio_vs_library(self) -> float:
        """The median of the rounds' ratios: the machine's speed drifts between rounds; a pair shares it."""
        return statistics.median(self.ratios)

    @property
    def ratio_vs_bare(self) -> float:
        return statistics.median(_ratio(ours, self.bare) for ours, _ in self.rounds)

    @property
    def answered_by_ours(self) -> int:
        return sum(ours.answered_total for ours, _ in self.rounds)

    @property
    def durable(self) -> bool:
        return self.events_recorded == self.answered_by_ours

    @property
    def errors_of_ours(self) -> int:
        return sum(ours.errors for ours, _ in self.rounds)

    @property
    def met(self) -> bool:
        return self.ratio_vs_library >= _TARGET_VS_LIBRARY and self.durable and self.errors_of_ours == 0


def _ratio(row: Row, base: Row) -> float:
    return row.messages_per_s / base.messages_per_s if base.messages_per_s else math.inf


async def run(
    database_url: str, redis_url: str, chargers: int, seconds: float, clients: int, rounds: int = 1
) -> Report:
    """Ours and the library `rounds` times, alternating (both servers up, only one driven at a time), then
    the bare responder once."""
    pairs: list[tuple[Row, Row]] = []
    postmaster = await postmaster_pid(database_url)
    postgres: tuple[int | None, str] = (postmaster, "")
    with tempfile.TemporaryDirectory(prefix="csms-bench-ingest-") as tmp:
        log_dir = Path(tmp)
        async with scratch_database(database_url) as url, scratch_redis_prefix(redis_url) as prefix:
            postgres = (postmaster, database_name(url))
            fleet = await register_fleet(url, chargers)
            credentials = list(fleet.passwords.items())
            port, library_port = free_port(), free_port()
            env = gateway_environment(url, redis_url, prefix, port, **GATEWAY_OVERRIDES)
            async with (
                server_process("gateway", gateway_argv(), port, log_dir, env) as gateway,
                server_process(
                    "ocpp-library", library_server_argv(library_port), library_port, log_dir
                ) as library,
            ):
                for number in range(1, rounds + 1):
                    suffix = f" (round {number})" if rounds > 1 else ""
                    ours = await _measure(
                        postgres,
                        f"ours: csms gateway{suffix}",
                        gateway,
                        credentials,
                        fleet.id_token,
                        seconds,
                        clients,
                    )
                    theirs = await _measure(
                        postgres,
                        f"ocpp library server{suffix}",
                        library,
                        credentials,
                        fleet.id_token,
                        seconds,
                        clients,
                    )
                    pairs.append((ours, theirs))
            events = await count_events(url, METER_VALUES_TOPIC)
        port = free_port()
        async with server_process("bare-responder", bare_responder_argv(port), port, log_dir) as bare_server:
            bare = await _measure(
                postgres, "bare responder", bare_server, credentials, fleet.id_token, seconds, clients
            )
    return Report(chargers, seconds, clients, pairs, bare, events, fleet.seconds)


def format_report(report: Report) -> str:
    lines = [
        "| target | chargers | MeterValues/s | p50 ms | p99 ms | errors | server CPU % | Postgres CPU % "
        "| client CPU % |",
        "|" + "---|" * 9,
    ]
    lines.extend(
        f"| {r.target} | {r.chargers} | {r.messages_per_s:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} "
        f"| {r.errors} | {r.server_cpu:.0f} | {r.postgres_cpu:.0f} | {r.client_cpu:.0f} |"
        for r in report.rows
    )
    vs_library, vs_bare = report.ratio_vs_library, report.ratio_vs_bare
    per_round = " / ".join(f"{ratio:.2f}x" for ratio in report.ratios)
    median = "median of the rounds: " if len(report.rounds) > 1 else ""
    lines += [
        "",
        "| ratio | value | target | met |",
        "|---|---|---|---|",
        f"| ours / library ({median}{per_round}) | {vs_library:.2f}x "
        f"| >= {_TARGET_VS_LIBRARY:.0f}x (goal {_GOAL_VS_LIBRARY:.0f}x) "
        f"| {'yes' if vs_library >= _TARGET_VS_LIBRARY else 'NO'} |",
        f"| ours / bare | {vs_bare:.2f}x | | |",
        "",
        f"Durability: the gateway answered {report.answered_by_ours:,} MeterValues and the store holds "
        f"{report.events_recorded:,} {METER_VALUES_TOPIC} events: "
        + ("match." if report.durable else "MISMATCH."),
        f"Gateway run with CSMS_OCPP_RATE_LIMIT={GATEWAY_OVERRIDES['CSMS_OCPP_RATE_LIMIT']} "
        f"CSMS_OCPP_RATE_BURST={GATEWAY_OVERRIDES['CSMS_OCPP_RATE_BURST']} (the per-charger limit, 20/s by "
        "default, would otherwise cap each charger); other settings as configured.",
        f"{report.chargers} chargers (OCPP 1.6J), {report.seconds:g} s per target and round; "
        f"{len(report.rounds)} round(s) of ours then the library (both servers up, one driven at a time), "
        "then the bare responder; the same client in "
        f"{report.client_processes} process(es) of its own for every target. CPU is % of one core over the "
        "measurement (2 cores here: server, Postgres and client share them)." + POSTGRES_NOTE,
    ]
    for r in report.rows:
        if r.error_kinds:
            lines.append(f"Errors ({r.target}): {r.error_kinds}")
    return "\n".join(lines)


@click.command("ingest")
@click.option("--chargers", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--seconds", type=click.FloatRange(1, 600), default=20.0, show_default=True)
@click.option(
    "--client-processes",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="Load-generator processes; raise it when the client's CPU is at 100%.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="Measure ours and the library this many times, alternating; the ratio is the rounds' median.",
)
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def ingest(
    ctx: click.Context,
    chargers: int,
    seconds: float,
    client_processes: int,
    rounds: int,
    json_file: Path | None,
) -> None:
    """MeterValues back to back from N chargers: the gateway (durably appending each) beside the `ocpp`
    library's server and a bare responder."""
    report = asyncio.run(
        run(ctx.obj["database_url"], ctx.obj["redis_url"], chargers, seconds, client_processes, rounds)
    )
    click.echo(format_report(report))
    if json_file is not None:
        figures = {
            **{k: v for k, v in asdict(report).items() if k not in ("rounds", "bare")},
            "rows": [asdict(r) for r in report.rows],
            "ratios_vs_library": report.ratios,
            "ours_vs_library": report.ratio_vs_library,
            "ours_vs_bare": report.ratio_vs_bare,
            "durable": report.durable,
            "gateway_overrides": GATEWAY_OVERRIDES,
        }
        json_file.write_text(json.dumps(figures, indent=2))
    if not report.met:
        ctx.exit(1)
