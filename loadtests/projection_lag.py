"""How far behind the log the read models run while a large fleet feeds the gateway (`csms bench projection`).

The fleet of `csms bench fleet` (N chargers at their everyday pace: heartbeats, 30 % charging with
MeterValues every 10 s), ten chargers to a published station, runs against a gateway process, and every
projector runs in a `csms serve --role projector` process of its own, both on a scratch database. During
the window a sampler asks, every 100 ms and for each projection, how old the oldest event of its topics is
that it has not applied yet (0 when it has applied all of them): that is how stale a reader of that model is
at that moment. "Lag" counts from when the event was first seen committed (the sampler notes the log's head
every 100 ms); "age since recorded" counts from its `recorded_at`, the start of the transaction that wrote
it, and so also holds the gateway's own commit time.

Baseline, in the same run: the age since recorded of the log's newest event at the moment its NOTIFY reaches
a listener that does nothing else. No projector can be fresher than that (it is woken by the same NOTIFY).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import asyncpg
from redis.asyncio import Redis

from csms.eventstore.recorder import NOTIFY_CHANNEL
from csms.eventstore.subscription import parse_notification
from csms.redis_support import redis_client
from loadtests.bench_fleet import SimulatorArgs, fleet_simulator
from loadtests.scratch import (
    HOST,
    ClientFailed,
    ClientProcesses,
    CpuMeter,
    client_processes,
    free_port,
    gateway_argv,
    gateway_environment,
    raise_open_files_limit,
    register_fleet,
    scratch_database,
    scratch_redis_prefix,
    server_process,
    write_password_file,
)
from projections.catalog import projection_targets
from projections.positions import postgres_position, redis_position

SAMPLE_SECONDS = 0.1
CHARGERS_PER_STATION = 10  # published stations, so station discovery has its everyday work
_SETTLE_GRACE_SECONDS = 90.0
_OLDEST_UNAPPLIED = """
    SELECT position, extract(epoch FROM clock_timestamp() - recorded_at) AS age FROM events
    WHERE position > $1 AND topic = ANY($2::text[]) ORDER BY position LIMIT 1
"""


@dataclass
class LagFigures:
    name: str
    samples: list[float] = field(default_factory=list)  # seconds behind the log (0: caught up)
    since_recorded: list[float] = field(default_factory=list)  # age since the event's recorded_at

    def percentile(self, share: float, samples: list[float] | None = None) -> float:
        values = self.samples if samples is None else samples
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def maximum(self) -> float:
        return max(self.samples, default=float("nan"))


@dataclass
class LagReport:
    chargers: int
    minutes: float
    settle_seconds: float
    events_per_second: float
    projections: list[LagFigures]
    notify: LagFigures
    cpu: dict[str, float]


@contextlib.asynccontextmanager
async def _projector_process(env: Mapping[str, str], log_dir: Path) -> AsyncIterator[int]:
    """`csms serve --role projector` in a process of its own, until the block ends (SIGTERM)."""
    log: IO[bytes] = (log_dir / "projector.log").open("wb")
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms.cli", "serve", "--role", "projector",
            env=dict(env), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    finally:
        log.close()
    try:
        yield process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


class LagSampler:
    """Samples each projection's lag, and the NOTIFY floor (`sample_lag` drives it for a window)."""

    def __init__(self, pool: asyncpg.Pool, redis: Redis, key_prefix: str, database_url: str) -> None:
        self._pool = pool
        self._redis = redis
        self._key_prefix = key_prefix
        self._database_url = database_url
        targets = projection_targets(pool, redis, key_prefix)
        self._topics = {t.name: sorted(t.projector.topics) for t in targets}
        self._kinds = {t.name: t.kind for t in targets}
        self.figures = {name: LagFigures(name) for name in self._topics}
        self.notify = LagFigures("NOTIFY to an idle listener (floor)")
        self._last_notify_sample = 0.0
        # When each head position was first seen committed: an event is "in the log" from then on.
        self._heads: list[tuple[int, float]] = []

    async def _position(self, name: str) -> int:
        if self._kinds[name] == "redis":
            return await redis_position(self._redis, self._key_prefix, name)
        return await postgres_position(self._pool, name)

    async def sample_projections(self) -> None:
        head = int(await self._pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
        self._heads.append((head, time.monotonic()))
        for name, topics in self._topics.items():
            position = await self._position(name)
            row = await self._pool.fetchrow(_OLDEST_UNAPPLIED, position, topics)
            figures = self.figures[name]
            if row is None:
                figures.samples.append(0.0)
                figures.since_recorded.append(0.0)
                continue
            figures.samples.append(time.monotonic() - self._visible_since(int(row["position"])))
            figures.since_recorded.append(float(row["age"]))

    def _visible_since(self, position: int) -> float:
        """When the sampler first saw the head at or past `position` (its first sample, if before it)."""
        index = bisect.bisect_left(self._heads, position, key=lambda entry: entry[0])
        return self._heads[min(index, len(self._heads) - 1)][1]

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        connection = await asyncpg.connect(self._database_url)
        pending: set[asyncio.Task[None]] = set()

        def on_notify(_connection: object, _pid: int, _channel: str, payload: object) -> None:
            now = time.monotonic()
            if now - self._last_notify_sample < SAMPLE_SECONDS:
                return
            self._last_notify_sample = now
            head, _ = parse_notification(str(payload))
            if head is None:
                return
            task = asyncio.ensure_future(self._notify_age(head))
            pending.add(task)
            task.add_done_callback(pending.discard)

        await connection.add_listener(NOTIFY_CHANNEL, on_notify)
        try:
            yield
        finally:
            await connection.remove_listener(NOTIFY_CHANNEL, on_notify)
            await asyncio.gather(*pending, return_exceptions=True)
            await connection.close()

    async def _notify_age(self, position: int) -> None:
        age = await self._pool.fetchval(
            "SELECT extract(epoch FROM clock_timestamp() - recorded_at) FROM events WHERE position = $1",
            position,
        )
        if age is not None:
            self.notify.samples.append(float(age))


async def sample_lag(sampler: LagSampler, seconds: float) -> None:
    """Every `SAMPLE_SECONDS` for `seconds`: each projection's lag, and the NOTIFY floor meanwhile."""
    ends = time.monotonic() + seconds
    async with sampler.listening():
        while time.monotonic() < ends:
            began = time.monotonic()
            await sampler.sample_projections()
            await asyncio.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - began)))


async def measure_lag(
    database_url: str, redis_url: str, chargers: int, minutes: float, ramp_rate: float
) -> LagReport:
    raise_open_files_limit(chargers + 1024)
    with tempfile.TemporaryDirectory(prefix="csms-bench-lag-") as tmp:
        work = Path(tmp)
        async with scratch_database(database_url) as url, scratch_redis_prefix(redis_url) as prefix:
            fleet = await register_fleet(url, chargers, per_station=CHARGERS_PER_STATION)
            password_file = work / "passwords.txt"
            write_password_file(password_file, fleet.passwords)
            port = free_port()
            ramp_up = chargers / ramp_rate
            args = [
                SimulatorArgs(
                    url=f"ws://{HOST}:{port}/ocpp",
                    password_file=str(password_file),
                    first=0,
                    count=chargers,
                    id_tag=fleet.id_token,
                    ramp_up=ramp_up,
                    settle_within=ramp_up + _SETTLE_GRACE_SECONDS,
                    seed=0,
                )
            ]
            env = gateway_environment(url, redis_url, prefix, port, CSMS_PROJECTOR_PORT=str(free_port()))
            pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
            redis = redis_client(redis_url, max_connections=8)
            try:
                async with (
                    server_process("gateway", gateway_argv(), port, work, env) as gateway,
                    _projector_process(env, work) as projector_pid,
                    client_processes(fleet_simulator, args) as clients,
                ):
                    return await _run_window(
                        pool,
                        redis,
                        prefix,
                        url,
                        clients,
                        (gateway.pid, projector_pid),
                        chargers,
                        minutes,
                        args[0].settle_within,
                    )
            finally:
                await redis.aclose()
                await pool.close()


async def _run_window(
    pool: asyncpg.Pool,
    redis: Redis,
    prefix: str,
    url: str,
    clients: ClientProcesses,
    pids: tuple[int, int],
    chargers: int,
    minutes: float,
    settle_within: float,
) -> LagReport:
    gateway_pid, projector_pid = pids
    await clients.expect_all("ready", within=120)
    clients.send_all("go")
    settled = await clients.expect_all("settled", within=settle_within + 60)
    sampler = LagSampler(pool, redis, prefix, url)
    meter = CpuMeter(
        {
            "gateway": lambda: [gateway_pid],
            "projector": lambda: [projector_pid],
            "simulator": lambda: clients.pids,
        }
    )
    head_before = int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    began = time.monotonic()
    meter.start()
    clients.send_all("window")
    await sample_lag(sampler, minutes * 60)
    cpu = meter.stop()
    elapsed = time.monotonic() - began
    head_after = int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))
    clients.send_all("stop")
    # The simulators' own figures are not needed here; a slow shutdown of 10,000 sockets is not a failure.
    with contextlib.suppress(ClientFailed):
        await clients.expect_all("result", within=180)
    return LagReport(
        chargers=chargers,
        minutes=minutes,
        settle_seconds=max(float(s["seconds"]) for s in settled),
        events_per_second=(head_after - head_before) / elapsed,
        projections=list(sampler.figures.values()),
        notify=sampler.notify,
        cpu=cpu,
    )


def format_lag(report: LagReport, target_p99: float) -> str:
    lines = [
        f"{report.chargers:,} chargers (OCPP 1.6J, {CHARGERS_PER_STATION} to a published station,"
        f" 30 % charging, MeterValues every 10 s), settled after "
        f"{report.settle_seconds:.0f} s; lag sampled every {SAMPLE_SECONDS * 1000:.0f} ms for "
        f"{report.minutes:g} min while the log grew by {report.events_per_second:,.0f} events/s.",
        "",
        "| projection | samples | lag p50 (ms) | lag p99 (ms) | max (ms) | age since recorded p99 (ms)"
        " | target p99 | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for figures in report.projections:
        met = figures.percentile(0.99) < target_p99
        lines.append(
            f"| {figures.name} | {len(figures.samples):,} | {figures.percentile(0.5) * 1e3:.1f}"
            f" | {figures.percentile(0.99) * 1e3:.1f} | {figures.maximum * 1e3:.1f}"
            f" | {figures.percentile(0.99, figures.since_recorded) * 1e3:.1f}"
            f" | < {target_p99 * 1e3:.0f} ms | {'yes' if met else 'NO'} |"
        )
    floor = report.notify
    lines.append(
        f"| {floor.name} | {len(floor.samples):,} | | | {floor.maximum * 1e3:.1f}"
        f" | {floor.percentile(0.99) * 1e3:.1f} | | |"
    )
    cpu = ", ".join(f"{name} {value:.0f} %" for name, value in report.cpu.items())
    lines += ["", f"CPU (% of one core) during the window: {cpu}."]
    return "\n".join(lines)


def lag_figures(report: LagReport) -> dict[str, Any]:
    return {
        "chargers": report.chargers,
        "minutes": report.minutes,
        "events_per_second": report.events_per_second,
        "projections": {
            f.name: {
                "p50": f.percentile(0.5),
                "p99": f.percentile(0.99),
                "max": f.maximum,
                "since_recorded_p99": f.percentile(0.99, f.since_recorded),
            }
            for f in report.projections
        },
        "notify_since_recorded": {
            "p50": report.notify.percentile(0.5),
            "p99": report.notify.percentile(0.99),
        },
        "cpu": report.cpu,
    }
