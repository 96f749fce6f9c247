"""Prometheus metrics of the projectors: how far each has got, how stale it is, what applying costs, and the
log's head as they read it (so lag in events is head minus position)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Module-level by Prometheus convention: registered once per process. Labelled by projection name only.
# Gauges say how to combine processes when several share a metrics directory (`csms serve --workers N`).
POSITION = Gauge(
    "csms_projection_position",
    "Last log position the projection has applied.",
    ["projection"],
    multiprocess_mode="livemax",
)
LAG_SECONDS = Gauge(
    "csms_projection_lag_seconds",
    "Age of the oldest event in the batch just applied (0 once caught up): how stale a reader may be.",
    ["projection"],
    multiprocess_mode="livemax",
)
ACTIVE = Gauge(
    "csms_projection_active",
    "1 while this instance applies the projection's events, 0 on standby.",
    ["projection"],
    multiprocess_mode="livesum",
)
EVENTS = Counter("csms_projection_events_total", "Events applied to the projection.", ["projection"])
BATCH_SECONDS = Histogram(
    "csms_projection_batch_seconds",
    "Time to apply one batch and record its position.",
    ["projection"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RELOADS = Counter(
    "csms_projection_reloads_total",
    "Batches refused because the generation or position moved (a swap, another instance, lost Redis data).",
    ["projection"],
)
HEAD_POSITION = Gauge(
    "csms_eventstore_head_position",
    "Position of the last committed event of the log, as this instance's projectors last read it (on every"
    " read while one applies a projection, at least every CSMS_POLL_INTERVAL_SECONDS; on standby it stays"
    " put).",
    multiprocess_mode="livemax",
)


class LogHead:
    """The highest head the runners of one process have read, exported as csms_eventstore_head_position.

    Each runner reads the head at its own moment; one whose read returns a little later with an older
    value must not set the gauge back, or head minus position would dip below zero.
    """

    def __init__(self) -> None:
        self.position = 0

    def saw(self, position: int) -> None:
        if position > self.position:
            self.position = position
            HEAD_POSITION.set(position)
