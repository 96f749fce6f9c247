"""`csms bench nearby`: "chargers near me" requests per second through the real read API, beside baselines.

20,000 stations (clustered around eight Dutch cities, a fifth spread over the country; one to three EVSEs
each, mixed connectors, statuses and connectivity) are projected into a scratch Redis key space by the real
station discovery projector, from domain events made in memory. Then, one after the other, on the same data:

- **ours**: the read API app exactly as `csms serve --role read-api` builds it (`read_api.runtime`), in
  `--processes` processes sharing one port (SO_REUSEPORT: the kernel spreads connections over them, one per
  core); its rate limiter is set high, because every request comes from one address here.
- **bare handler**: the floor for any HTTP answer from Redis: an aiohttp handler that parses lat/lon and does
  one GEOSEARCH (nearest 20 within 5 km) on the same GEO key, served the same way, no filters, ids only.
- **redis-benchmark** (when the binary exists): that GEOSEARCH, and our nearby script with a filter, sent
  straight to Redis by its own C client: what Redis itself can do, with no HTTP and no Python.

The load generator is one process (its own raw HTTP/1.1 keep-alive client on uvloop, `--connections`
concurrent requests), sending a mix of queries: 5 km around points near the cities, 40% without filters,
the rest with connector, power type, minimum power and availability filters. Each HTTP figure is a window of
`--seconds` after a warm-up; CPU is shown per group (servers, load generator, Redis) as % of one core. All of
it shares the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import json
import math
import os
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

import click
import orjson
import psutil
from aiohttp import web
from redis.asyncio import Redis

from csms.domain import (
    Address,
    Charger,
    Company,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    ConnectorStatus,
    Coordinates,
    Currency,
    Evse,
    OcppVersion,
    PowerType,
    PriceComponent,
    Station,
    Tariff,
    TariffDimension,
    TariffElement,
)
from csms.domain.topics import topic_of
from csms.redis_support import redis_client
from csms.settings import Settings
from loadtests.http_load import Answers, request_loop
from loadtests.scratch import (
    HOST,
    Channel,
    ClientProcesses,
    CpuMeter,
    client_processes,
    free_port,
    histogram_state,
    merged_histogram,
    scratch_redis_prefix,
)
from projections import station_keys as keys
from projections.projector import ProjectedEvent
from projections.redis_target import RedisTarget
from projections.station_discovery import StationDiscoveryProjector
from read_api.runtime import read_api_app
from read_api.station_queries import _NEARBY
from read_api.station_routes import STATION_RATE_LIMIT, RateLimiter

_CITIES: Final = (
    (52.3702, 4.8952),  # Amsterdam
    (51.9244, 4.4777),  # Rotterdam
    (52.0907, 5.1214),  # Utrecht
    (52.0705, 4.3007),  # The Hague
    (51.4416, 5.4697),  # Eindhoven
    (53.2194, 6.5665),  # Groningen
    (51.9851, 5.8987),  # Arnhem
    (52.2215, 6.8937),  # Enschede
)
_COUNTRY: Final = ((51.0, 53.4), (3.5, 7.1))  # latitude and longitude bounds
_CLUSTER_SIGMA_KM: Final = 6.0
_SPREAD_SHARE: Final = 0.2
_LAYOUTS: Final = (
    (ConnectorStandard.IEC_62196_T2, PowerType.AC_3_PHASE, 11_000),
    (ConnectorStandard.IEC_62196_T2, PowerType.AC_3_PHASE, 22_000),
    (ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 50_000),
    (ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 150_000),
    (ConnectorStandard.CHADEMO, PowerType.DC, 50_000),
)
_STATUSES: Final = (
    ConnectorStatus.AVAILABLE,
    ConnectorStatus.AVAILABLE,
    ConnectorStatus.CHARGING,
    ConnectorStatus.FAULTED,
)
# The query mix: (share, extra query parameters).
_MIX: Final[tuple[tuple[float, dict[str, str]], ...]] = (
    (0.40, {}),
    (0.20, {"connector": "IEC_62196_T2_COMBO"}),
    (0.15, {"available": "true"}),
    (0.15, {"connector": "IEC_62196_T2_COMBO", "minPowerKw": "50", "available": "true"}),
    (0.10, {"connector": "IEC_62196_T2", "powerType": "AC_3_PHASE"}),
)
_RADIUS_KM: Final = 5.0
_QUERIES: Final = 4096  # distinct URLs, cycled through
_SEED_BATCH: Final = 2000
_TARGET_RATIO: Final = 0.8
_TARGET_P99_MS: Final = 25.0
_READY_WITHIN: Final = 60.0
_AT: Final = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- the stations


def _station_points(count: int, rng: random.Random) -> list[tuple[float, float]]:
    points = []
    for _ in range(count):
        if rng.random() < _SPREAD_SHARE:
            points.append((rng.uniform(*_COUNTRY[0]), rng.uniform(*_COUNTRY[1])))
            continue
        latitude, longitude = rng.choice(_CITIES)
        north_km, east_km = rng.gauss(0, _CLUSTER_SIGMA_KM), rng.gauss(0, _CLUSTER_SIGMA_KM)
        points.append(
            (
                latitude + north_km / 111.32,
                longitude + east_km / (111.32 * math.cos(math.radians(latitude))),
            )
        )
    return points


def discovery_events(count: int, seed: int) -> list[ProjectedEvent]:
    """The events of `count` stations with chargers, as the projector would read them from the log."""
    rng = random.Random(seed)
    clock = iter(_AT + timedelta(milliseconds=n) for n in range(10**9))
    company = Company.create(uuid.uuid4(), "Benchmark Charging", next(clock))
    tariff = Tariff.create(
        uuid.uuid4(),
        company.id,
        "Standard",
        Currency.EUR,
        Decimal("21"),
        (TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal("0.39")),)),),
        next(clock),
    )
    aggregates: list[Any] = [company, tariff]
    for n, (latitude, longitude) in enumerate(_station_points(count, rng)):
        at = next(clock)
        station = Station.create(
            uuid.uuid4(),
            company.id,
            f"Station {n}",
            Address(f"Street {n}", "Somewhere", None, "NLD"),
            Coordinates(Decimal(f"{latitude:.6f}"), Decimal(f"{longitude:.6f}")),
            "Europe/Amsterdam",
            at,
        )
        station.assign_tariff(tariff.id, at)
        station.publish(at)
        layout = rng.sample(_LAYOUTS, rng.randint(1, 3))
        evses = tuple(
            Evse(i, (Connector(1, standard, ConnectorFormat.CABLE, kind, power),))
            for i, (standard, kind, power) in enumerate(layout, start=1)
        )
        charger = Charger.register(
            uuid.uuid4(), company.id, station.id, f"NEARBY-{n:06d}", "benchmark-hash", evses, at
        )
        if rng.random() < 0.9:  # a tenth offline
            charger.connected(OcppVersion.OCPP16, next(clock))
            for evse in evses:
                moment = next(clock)
                charger.report_connector_status(evse.evse_id, 1, rng.choice(_STATUSES), None, moment, moment)
        aggregates += [station, charger]
    events: list[ProjectedEvent] = []
    for aggregate in aggregates:
        for event in aggregate.collect_events():
            events.append(
                ProjectedEvent(
                    position=len(events) + 1,
                    recorded_at=event.timestamp,
                    stream_id=event.originator_id,
                    stream_version=event.originator_version,
                    topic=topic_of(event),
                    event=event,
                    metadata={},
                )
            )
    return events


async def seed(redis: Redis, key_prefix: str, events: Sequence[ProjectedEvent]) -> float:
    """Apply `events` through the real projector and target; returns the seconds it took."""
    began = time.perf_counter()
    target = RedisTarget(StationDiscoveryProjector(), redis, key_prefix)
    generation, position = await target.active_generation(), 0
    for start in range(0, len(events), _SEED_BATCH):
        batch = events[start : start + _SEED_BATCH]
        if not await target.apply(generation, batch, position, batch[-1].position):
            raise RuntimeError("the scratch generation moved while seeding")
        position = batch[-1].position
    return time.perf_counter() - began


def query_paths(count: int, seed_value: int) -> list[bytes]:
    rng = random.Random(seed_value)
    shares = [share for share, _ in _MIX]
    paths = []
    for _ in range(count):
        latitude, longitude = rng.choice(_CITIES)
        latitude += rng.gauss(0, 3.0) / 111.32
        longitude += rng.gauss(0, 3.0) / 70.0
        (extra,) = rng.choices([params for _, params in _MIX], weights=shares)
        query = {"lat": f"{latitude:.5f}", "lon": f"{longitude:.5f}", "radiusKm": f"{_RADIUS_KM:g}", **extra}
        paths.append(("/stations/nearby?" + urlencode(query)).encode())
    return paths


# --------------------------------------------------------------------------- server processes


@dataclass(frozen=True, slots=True)
class ServeArgs:
    kind: str  # "ours" or "bare"
    port: int
    settings: Settings
    database_url: str
    redis_url: str
    geo_key: str


BARE_REDIS = web.AppKey("bare_redis", Redis)
BARE_GEO_KEY = web.AppKey("bare_geo_key", str)


async def bare_nearby(request: web.Request) -> web.Response:
    """The floor: parse the point, one GEOSEARCH, ids and distances as JSON."""
    latitude, longitude = float(request.query["lat"]), float(request.query["lon"])
    radius = float(request.query.get("radiusKm", "5"))
    hits: Any = await request.app[BARE_REDIS].geosearch(
        request.app[BARE_GEO_KEY],
        longitude=longitude,
        latitude=latitude,
        radius=radius,
        unit="km",
        sort="ASC",
        count=20,
        withdist=True,
    )
    stations = [{"id": member.decode(), "distanceM": round(distance)} for member, distance in hits]
    return web.Response(body=orjson.dumps({"stations": stations}), content_type="application/json")


async def serve_process(channel: Channel, args: ServeArgs) -> dict[str, Any]:
    """One server process: ours (the real read API app) or the bare handler, on a shared port."""
    async with contextlib.AsyncExitStack() as stack:
        if args.kind == "ours":
            app = await stack.enter_async_context(
                read_api_app(args.settings, args.database_url, args.redis_url)
            )
            # Every request of the benchmark comes from 127.0.0.1: the limiter runs, and never refuses.
            app[STATION_RATE_LIMIT] = RateLimiter(rate=1e12, burst=1e12)
        else:
            redis = redis_client(args.redis_url)
            stack.push_async_callback(redis.aclose)
            app = web.Application()
            app[BARE_REDIS] = redis
            app[BARE_GEO_KEY] = args.geo_key
            app.router.add_get("/stations/nearby", bare_nearby)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        # reuse_port: every process binds the same port and the kernel balances connections between them.
        await web.TCPSite(runner, HOST, args.port, reuse_port=True, backlog=4096).start()
        channel.send("ready", os.getpid())
        await channel.recv()  # stop
    return {}


@contextlib.asynccontextmanager
async def servers(args: ServeArgs, processes: int) -> AsyncIterator[ClientProcesses]:
    async with client_processes(serve_process, [args] * processes) as started:
        await started.expect_all("ready", _READY_WITHIN)
        try:
            yield started
        finally:
            started.send_all("stop")
            await started.expect_all("result", _READY_WITHIN)


# --------------------------------------------------------------------------- the load generator


@dataclass(frozen=True, slots=True)
class LoadArgs:
    paths: list[bytes]
    connections: int


async def load_process(channel: Channel, args: LoadArgs) -> dict[str, Any]:
    """Waits for ("go", {port, warmup, seconds}); answers ("measured", figures); ends on ("stop", None)."""
    while True:
        kind, order = await channel.recv()
        if kind == "stop":
            return {}
        answers = Answers()
        now = time.perf_counter()
        window = (now + order["warmup"], now + order["warmup"] + order["seconds"])
        await asyncio.gather(
            *(
                request_loop(order["port"], args.paths, n, args.connections, window, answers)
                for n in range(args.connections)
            )
        )
        channel.send(
            "measured", {"histogram": histogram_state(answers.latency), "statuses": dict(answers.statuses)}
        )


# --------------------------------------------------------------------------- measuring


@dataclass(slots=True)
class Row:
    target: str
    processes: int | None
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    cpu: dict[str, float]
    errors: int = 0
    ratio: float | None = None  # requests/s over the bare handler's with as many processes
    met: bool | None = None


async def measure_http(
    name: str,
    serve: ServeArgs,
    processes: int,
    load: ClientProcesses,
    redis_pids: list[int],
    warmup: float,
    seconds: float,
) -> Row:
    async with servers(serve, processes) as started:
        meter = CpuMeter(
            {"servers": lambda: started.pids, "load": lambda: load.pids, "redis": lambda: redis_pids}
        )
        load.send_all("go", {"port": serve.port, "warmup": warmup, "seconds": seconds})
        await asyncio.sleep(warmup)
        meter.start()
        (figures,) = await load.expect_all("measured", warmup + seconds + 60)
        cpu = meter.stop()
    histogram = merged_histogram([figures["histogram"]])
    statuses: dict[int, int] = {int(k): v for k, v in figures["statuses"].items()}
    return Row(
        target=name,
        processes=processes,
        requests_per_s=histogram.count / seconds,
        p50_ms=histogram.percentile(0.50) * 1e3,
        p99_ms=histogram.percentile(0.99) * 1e3,
        cpu={k: round(v) for k, v in cpu.items()},
        errors=sum(n for status, n in statuses.items() if status != 200),
    )


async def measure_redis_benchmark(
    name: str, redis_url: str, command: Sequence[str], requests: int, connections: int, redis_pids: list[int]
) -> Row | None:
    binary = shutil.which("redis-benchmark")
    if binary is None:
        return None
    parts = urlsplit(redis_url)
    argv = [binary, "-h", parts.hostname or HOST, "-p", str(parts.port or 6379)]
    if parts.password:
        argv += ["-a", parts.password]
    database = (parts.path or "/0").lstrip("/") or "0"
    argv += ["--dbnum", database, "-n", str(requests), "-c", str(connections), "--csv", *command]
    meter = CpuMeter({"redis": lambda: redis_pids})
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    meter.start()
    output, _ = await process.communicate()
    cpu = meter.stop()
    rows = list(csv.DictReader(io.StringIO(output.decode())))
    if process.returncode != 0 or not rows:
        return None
    figures = rows[-1]
    return Row(
        target=name,
        processes=None,
        requests_per_s=float(figures["rps"]),
        p50_ms=float(figures["p50_latency_ms"]),
        p99_ms=float(figures["p99_latency_ms"]),
        cpu={"redis": round(cpu["redis"])},
    )


async def redis_pid(redis: Redis) -> list[int]:
    """Redis's own pid when it runs on this machine (to count its CPU), else nothing."""
    info = await redis.info("server")
    pid = int(info.get("process_id", 0))
    if pid and psutil.pid_exists(pid) and "redis" in psutil.Process(pid).name():
        return [pid]
    return []


async def run(
    settings: Settings,
    database_url: str,
    redis_url: str,
    *,
    stations: int,
    processes: Sequence[int],
    connections: int,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    async with scratch_redis_prefix(redis_url) as key_prefix:
        redis = redis_client(redis_url)
        try:
            made = time.perf_counter()
            events = discovery_events(stations, seed=20_000)
            made = time.perf_counter() - made
            seeded = await seed(redis, key_prefix, events)
            prefix = RedisTarget(StationDiscoveryProjector(), redis, key_prefix).prefix(1)
            geo_key = prefix + keys.GEO
            indexed = int(await redis.zcard(geo_key))
            pids = await redis_pid(redis)
            paths = query_paths(_QUERIES, seed_value=5)
            ours_settings = dataclasses.replace(settings, redis_key_prefix=key_prefix)
            port = free_port()
            rows: list[Row] = []
            async with client_processes(load_process, [LoadArgs(paths, connections)]) as load:
                for count in processes:
                    ours = ServeArgs("ours", port, ours_settings, database_url, redis_url, geo_key)
                    bare = dataclasses.replace(ours, kind="bare")
                    mine = await measure_http("ours: read API", ours, count, load, pids, warmup, seconds)
                    floor = await measure_http("bare handler", bare, count, load, pids, warmup, seconds)
                    mine.ratio = mine.requests_per_s / floor.requests_per_s if floor.requests_per_s else None
                    if count == max(processes):
                        mine.met = (
                            mine.ratio is not None
                            and mine.ratio >= _TARGET_RATIO
                            and mine.p99_ms < _TARGET_P99_MS
                            and mine.errors == 0
                        )
                    rows += [mine, floor]
                load.send_all("stop")
                await load.expect_all("result", 30)
            point = _CITIES[0]
            geosearch = [
                "GEOSEARCH", geo_key, "FROMLONLAT", str(point[1]), str(point[0]),
                "BYRADIUS", "5", "km", "ASC", "COUNT", "20", "WITHDIST",
            ]  # fmt: skip
            await redis.script_load(_NEARBY.source)
            facet = keys.facet(keys.AVAILABLE, "IEC_62196_T2_COMBO")
            filtered = [
                "EVALSHA", _NEARBY.sha, "4", prefix + keys.POSITION, prefix + keys.CARDS,
                prefix + keys.geo(facet), prefix + keys.match(facet),
                str(point[1]), str(point[0]), "5000", "20", "50000",
            ]  # fmt: skip
            for name, command in (
                ("redis-benchmark: GEOSEARCH", geosearch),
                ("redis-benchmark: our nearby script, CCS >= 50 kW available", filtered),
            ):
                row = await measure_redis_benchmark(name, redis_url, command, 200_000, 50, pids)
                if row is not None:
                    rows.append(row)
        finally:
            await redis.aclose()
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "stations": stations,
        "indexed": indexed,
        "events": len(events),
        "events_made_seconds": round(made, 1),
        "seed_seconds": round(seeded, 1),
        "connections": connections,
        "seconds": seconds,
        "rows": [dataclasses.asdict(row) for row in rows],
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [
        "| target | server processes | requests/s | p50 (ms) | p99 (ms) | ours / bare | errors "
        "| CPU servers / load / Redis (% of a core) | target | met |",
        "|" + "---|" * 10,
    ]
    for row in result["rows"]:
        cpu = row["cpu"]
        cpu_text = " / ".join(str(cpu[k]) if k in cpu else "-" for k in ("servers", "load", "redis"))
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        target = ""
        if row["met"] is not None:
            target = f">= {_TARGET_RATIO}x bare, p99 < {_TARGET_P99_MS:g} ms"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        processes = "-" if row["processes"] is None else str(row["processes"])
        lines.append(
            f"| {row['target']} | {processes} | {row['requests_per_s']:,.0f} | {row['p50_ms']:.2f} "
            f"| {row['p99_ms']:.2f} | {ratio} | {row['errors']} | {cpu_text} | {target} | {met} |"
        )
    return "\n".join(lines)


@click.command("nearby")
@click.option("--stations", default=20_000, show_default=True, help="Stations in the read model.")
@click.option(
    "--processes",
    default="1,2",
    show_default=True,
    help="Server process counts to measure (comma-separated); the target applies to the largest.",
)
@click.option("--connections", default=8, show_default=True, help="Concurrent requests of the load.")
@click.option("--warmup", default=2.0, show_default=True, help="Seconds of load before each window.")
@click.option("--seconds", default=10.0, show_default=True, help="Length of each measured window.")
@click.option("--json", "json_file", type=click.Path(path_type=Path), help="Also write the figures here.")
@click.pass_context
def nearby(
    ctx: click.Context,
    stations: int,
    processes: str,
    connections: int,
    warmup: float,
    seconds: float,
    json_file: Path | None,
) -> None:
    """Nearby-station queries through the real read API, beside a bare GEOSEARCH handler and Redis itself."""
    counts = sorted({int(p) for p in processes.split(",") if p.strip()})
    result = asyncio.run(
        run(
            ctx.obj["settings"],
            ctx.obj["database_url"],
            ctx.obj["redis_url"],
            stations=stations,
            processes=counts,
            connections=connections,
            warmup=warmup,
            seconds=seconds,
        )
    )
    click.echo(
        f"{result['stations']:,} stations ({result['indexed']:,} with EVSEs in the GEO index), "
        f"{result['events']:,} events projected in {result['seed_seconds']} s; "
        f"{result['connections']} concurrent requests, {result['seconds']:g} s windows; "
        f"measured {result['measured_at']}"
    )
    click.echo(format_table(result))
    if json_file is not None:
        json_file.write_text(json.dumps(result, indent=2))
    if any(row["met"] is False for row in result["rows"]):
        ctx.exit(1)
