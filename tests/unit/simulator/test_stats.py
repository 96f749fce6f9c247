"""Latency histograms: fixed memory, percentiles within one bucket of the truth, summaries that serialise."""

from __future__ import annotations

import math

import orjson
from hypothesis import given
from hypothesis import strategies as st

from loadtests.simulator.stats import LatencyHistogram, Stats

_BUCKET_WIDTH = 2 ** (1 / 8)

latencies = st.lists(st.floats(min_value=1e-6, max_value=60.0, allow_nan=False), min_size=1, max_size=300)


@given(latencies, st.sampled_from([0.5, 0.9, 0.99, 1.0]))
def test_a_percentile_is_within_one_bucket_of_the_exact_value(samples: list[float], fraction: float) -> None:
    histogram = LatencyHistogram()
    for sample in samples:
        histogram.record(sample)
    exact = sorted(samples)[max(1, math.ceil(fraction * len(samples))) - 1]
    estimate = histogram.percentile(fraction)
    assert exact * (1 - 1e-9) <= estimate <= exact * _BUCKET_WIDTH * (1 + 1e-9)
    assert histogram.min <= estimate <= histogram.max


@given(latencies)
def test_count_min_max_mean_are_exact(samples: list[float]) -> None:
    histogram = LatencyHistogram()
    for sample in samples:
        histogram.record(sample)
    assert histogram.count == len(samples) == sum(histogram.counts)
    assert histogram.min == min(samples)
    assert histogram.max == max(samples)
    assert math.isclose(histogram.total / histogram.count, sum(samples) / len(samples))


def test_an_empty_histogram_reports_nothing() -> None:
    histogram = LatencyHistogram()
    assert histogram.percentile(0.99) == 0.0
    assert histogram.summary_ms() == {}


def test_the_summary_serialises_and_the_table_lists_every_action() -> None:
    stats = Stats()
    stats.action("Heartbeat").sent += 1
    stats.action("Heartbeat").results += 1
    stats.action("Heartbeat").latency.record(0.0021)
    stats.action("BootNotification").sent += 1
    stats.errors["timeout (BootNotification)"] += 1
    summary = orjson.loads(orjson.dumps(stats.summary(elapsed=2.0)))
    assert summary["calls_answered"] == 1
    assert summary["calls_per_s"] == 0.5
    assert summary["actions"]["Heartbeat"]["latency_ms"]["max"] == 2.1
    assert summary["errors"] == {"timeout (BootNotification)": 1}
    table = stats.table()
    assert "Heartbeat" in table
    assert "BootNotification" in table
