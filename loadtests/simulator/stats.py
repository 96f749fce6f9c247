"""What a fleet measured: CALL→CALLRESULT latency per action, outcomes, connections and the offline queue."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

# Latency buckets are logarithmic, 8 per power of two (each about 9% wide), from 1 µs up to about 10^8 µs.
_BUCKETS_PER_OCTAVE = 8
_BUCKETS = 27 * _BUCKETS_PER_OCTAVE


def _bucket(seconds: float) -> int:
    micros = seconds * 1e6
    if micros <= 1.0:
        return 0
    return min(int(math.log2(micros) * _BUCKETS_PER_OCTAVE), _BUCKETS - 1)


def _bucket_upper_bound(index: int) -> float:
    return float(2.0 ** ((index + 1) / _BUCKETS_PER_OCTAVE) / 1e6)


class LatencyHistogram:
    """A log-bucketed histogram: fixed memory, percentiles within a bucket (about 9%), exact min/max/mean."""

    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, seconds: float) -> None:
        self.counts[_bucket(seconds)] += 1
        self.count += 1
        self.total += seconds
        if seconds < self.min:
            self.min = seconds
        if seconds > self.max:
            self.max = seconds

    def percentile(self, fraction: float) -> float:
        """The latency below which `fraction` of the samples fall, in seconds (0.0 when empty)."""
        if self.count == 0:
            return 0.0
        rank = max(1, math.ceil(fraction * self.count))
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return min(max(_bucket_upper_bound(index), self.min), self.max)
        return self.max

    def summary_ms(self) -> dict[str, float]:
        if self.count == 0:
            return {}
        return {
            "min": round(self.min * 1e3, 3),
            "mean": round(self.total / self.count * 1e3, 3),
            "p50": round(self.percentile(0.50) * 1e3, 3),
            "p90": round(self.percentile(0.90) * 1e3, 3),
            "p99": round(self.percentile(0.99) * 1e3, 3),
            "max": round(self.max * 1e3, 3),
        }


class ActionStats:
    """Outcomes of the CALLs of one action sent by the chargers."""

    __slots__ = ("errors", "latency", "lost", "results", "sent", "timeouts")

    def __init__(self) -> None:
        self.sent = 0
        self.results = 0
        self.errors = 0
        self.timeouts = 0
        self.lost = 0  # the connection dropped before an answer came
        self.latency = LatencyHistogram()

    def summary(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "results": self.results,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "lost": self.lost,
            "latency_ms": self.latency.summary_ms(),
        }


class Stats:
    """Shared by every charger of a fleet (one event loop, so no locking)."""

    def __init__(self) -> None:
        self.actions: dict[str, ActionStats] = {}
        #: Calls from the CSMS answered, by action.
        self.csms_calls: Counter[str] = Counter()
        #: Problems worth a look, by kind: CALLERRORs received, timeouts, malformed or unexpected frames,
        #: messages dropped. Connection failures are counted apart (expected while a CSMS restarts).
        self.errors: Counter[str] = Counter()
        self.connect_failures: Counter[str] = Counter()
        self.boots: Counter[str] = Counter()
        self.connects = 0
        self.disconnects = 0
        self.connected = 0
        self.accepted = 0
        self.queued_offline = 0
        self.replayed = 0
        self.dropped = 0
        self.sessions_started = 0
        self.sessions_ended = 0

    def action(self, name: str) -> ActionStats:
        stats = self.actions.get(name)
        if stats is None:
            stats = self.actions[name] = ActionStats()
        return stats

    def summary(self, elapsed: float | None = None) -> dict[str, Any]:
        calls = sum(a.results for a in self.actions.values())
        summary: dict[str, Any] = {
            "elapsed_s": None if elapsed is None else round(elapsed, 3),
            "calls_answered": calls,
            "calls_per_s": None if not elapsed else round(calls / elapsed, 1),
            "connected": self.connected,
            "accepted": self.accepted,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "connect_failures": dict(self.connect_failures),
            "boots": dict(self.boots),
            "sessions": {"started": self.sessions_started, "ended": self.sessions_ended},
            "offline_queue": {
                "queued_offline": self.queued_offline,
                "replayed": self.replayed,
                "dropped": self.dropped,
            },
            "actions": {name: a.summary() for name, a in sorted(self.actions.items())},
            "csms_calls": dict(self.csms_calls),
            "errors": dict(self.errors),
        }
        return summary

    def table(self) -> str:
        """A fixed-width table of the per-action figures, for the terminal."""
        header = f"{'action':<26}{'sent':>9}{'ok':>9}{'err':>6}{'tmo':>6}"
        header += f"{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'max ms':>10}"
        lines = [header, "-" * len(header)]
        for name, a in sorted(self.actions.items()):
            lat = a.latency
            lines.append(
                f"{name:<26}{a.sent:>9}{a.results:>9}{a.errors:>6}{a.timeouts:>6}"
                f"{lat.percentile(0.5) * 1e3:>10.2f}{lat.percentile(0.9) * 1e3:>10.2f}"
                f"{lat.percentile(0.99) * 1e3:>10.2f}{lat.max * 1e3:>10.2f}"
            )
        return "\n".join(lines)
