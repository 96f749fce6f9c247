"""The benchmarks' pure parts: the lean client's payloads, merging latency across processes, the storm's
timeline and experiment options. The benchmarks themselves are not tests and never run here."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, cast

import aiohttp

from loadtests.bench_ingest import LeanCharger, Report, Row, format_report
from loadtests.bench_lifecycle import Baseline, Plan
from loadtests.bench_lifecycle import Report as LifecycleReport
from loadtests.bench_storm import Experiment, _timeline
from loadtests.drivers import Window, paced_sessions
from loadtests.scratch import Channel, gateway_argv, histogram_state, merged_histogram
from loadtests.simulator.stats import LatencyHistogram
from tests.unit.simulator.schemas import assert_valid


def _charger() -> LeanCharger:
    return LeanCharger("CP-1", cast(aiohttp.ClientWebSocketResponse, None))


def test_the_ingest_client_sends_schema_valid_1_6_payloads() -> None:
    charger = _charger()
    assert_valid("1.6", "BootNotification", {"chargePointVendor": "CSMS-Bench", "chargePointModel": "Ingest"})
    assert_valid("1.6", "StartTransaction", charger.start_transaction("BENCH0123"))
    charger.transaction_id = 42
    assert_valid("1.6", "MeterValues", charger.meter_values())


def test_back_to_back_meter_values_always_rise_in_time_and_energy() -> None:
    # The gateway drops a reading not newer than the last one: every MeterValues must be a new fact.
    charger = _charger()
    charger.transaction_id = 1
    start = charger.start_transaction("BENCH0123")
    values = [charger.meter_values()["meterValue"][0] for _ in range(200)]  # far faster than 1 per ms
    stamps = [start["timestamp"]] + [v["timestamp"] for v in values]
    energy = [start["meterStart"]] + [int(v["sampledValue"][0]["value"]) for v in values]
    assert stamps == sorted(set(stamps))
    assert energy == sorted(set(energy))


def test_histograms_from_several_processes_merge_into_one() -> None:
    first, second = LatencyHistogram(), LatencyHistogram()
    for ms in (1, 2, 3):
        first.record(ms / 1000)
    second.record(0.5)
    empty = histogram_state(LatencyHistogram())
    merged = merged_histogram([histogram_state(first), empty, histogram_state(second)])
    assert merged.count == 4
    assert merged.min == 0.001
    assert merged.max == 0.5
    assert merged.percentile(1.0) == 0.5
    assert merged.counts == [a + b for a, b in zip(first.counts, second.counts, strict=True)]


def test_the_storm_timeline_sums_clients_and_averages_cpu_per_step() -> None:
    def report(t: float, accepted: int) -> dict[str, Any]:
        return {key: accepted for key in ("connected", "accepted", "reported")} | {
            "t": t,
            "pending": 0,
            "failures": 0,
        }

    progress = [
        [report(1.0, 10), report(2.0, 20), report(3.0, 30), report(4.0, 40)],
        [report(1.1, 5), report(2.1, 7), report(3.1, 9)],
    ]
    busy = {"server": 100.0, "postgres": 10.0, "simulator": 50.0}
    calm = {"server": 50.0, "postgres": 0.0, "simulator": 50.0}
    cpu = [busy, calm, busy, calm]
    rows = _timeline(progress, cpu, step=2)
    assert [(r["t"], r["accepted"]) for r in rows] == [(2.0, 27.0), (4.0, 49.0)]
    assert rows[0]["server_cpu"] == 75.0
    assert rows[1]["postgres_cpu"] == 5.0


def test_experiments_patch_the_gateway_only_when_asked() -> None:
    assert Experiment().command() == gateway_argv()
    assert Experiment().environment() == {}
    patched = Experiment(listen_backlog=4096)
    assert patched.command()[-3:] == ["serve", "--role", "gateway"]
    assert patched.environment() == {"BENCH_LISTEN_BACKLOG": "4096"}


def _row(target: str, per_second: float, answered: int = 0) -> Row:
    return Row(target, 100, per_second, 1.0, 2.0, 0, answered, 90.0, 10.0, 20.0)


def test_the_ingest_ratio_is_the_median_of_the_rounds_and_durability_counts_every_round() -> None:
    rounds = [
        (_row("ours", 2_400, answered=100), _row("library", 1_000)),  # 2.4x
        (_row("ours", 1_500, answered=100), _row("library", 1_000)),  # 1.5x
        (_row("ours", 2_100, answered=100), _row("library", 1_000)),  # 2.1x
    ]
    bare = _row("bare", 10_500)
    report = Report(100, 15.0, 1, rounds, bare, events_recorded=300, registration_seconds=1.0)
    assert report.ratios == [2.4, 1.5, 2.1]
    assert report.ratio_vs_library == 2.1
    assert report.ratio_vs_bare == 0.2
    assert report.durable
    assert report.met
    assert "median of the rounds: 2.40x / 1.50x / 2.10x) | 2.10x" in format_report(report)

    lost_one = Report(100, 15.0, 1, rounds, bare, events_recorded=299, registration_seconds=1.0)
    assert not lost_one.durable
    assert not lost_one.met


class _Benchmark:
    """The benchmark's end of a driver process's channel, in memory: messages are sent by `say`."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def say(self, kind: str) -> None:
        self.inbox.put_nowait((kind, None))

    async def recv(self) -> tuple[str, Any]:
        return await self.inbox.get()


async def test_paced_sessions_start_at_the_rate_on_free_drivers_and_count_the_starts_none_could_take() -> (
    None
):
    benchmark, window = _Benchmark(), Window()
    running: list[str] = []
    most = 0

    async def session(driver: str) -> None:
        nonlocal most
        running.append(driver)
        most = max(most, len(running))
        await asyncio.sleep(0.05)
        running.remove(driver)

    async def script() -> None:
        await asyncio.sleep(0.05)
        benchmark.say("window")
        await asyncio.sleep(0.2)
        benchmark.say("stop")

    scripted = asyncio.create_task(script())
    pace, under_way = await paced_sessions(cast(Channel, benchmark), 100.0, deque("ab"), session, window)
    await scripted
    await asyncio.gather(*under_way)

    assert 0.15 < window.closed - window.opened < 0.3
    assert 15 <= pace.asked <= 25  # 100/s for 0.2 s
    # Two drivers, each busy 50 ms, take at most 40 of the 100 starts a second: the rest are skipped.
    assert pace.skipped >= pace.asked // 3
    assert most <= 2


def _lifecycle_report(rate: float, sessions_per_s: float) -> LifecycleReport:
    plan = Plan(400, 60, 5, 1.0, 0.5, "separate", None, rate)
    report = LifecycleReport(plan, {}, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), Baseline(1.0, 1.0))
    report.sessions_per_s = sessions_per_s
    return report


def test_the_lifecycle_rate_is_met_by_capacity_in_a_closed_loop_and_by_delivery_at_a_rate() -> None:
    assert _lifecycle_report(0, 100.0).checks["sessions_per_s"]
    assert not _lifecycle_report(0, 99.9).checks["sessions_per_s"]
    assert _lifecycle_report(100, 99.9).checks["sessions_per_s"]  # the window's edges
    assert not _lifecycle_report(100, 98.0).checks["sessions_per_s"]
    assert not _lifecycle_report(50, 50.0).checks["sessions_per_s"]  # delivered, but below the target
