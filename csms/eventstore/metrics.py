"""Prometheus metrics of the event store's appends: batches, their sizes, and how long a commit takes."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

BATCHES = Counter("csms_eventstore_append_batches_total", "Group commits of the appender.")
EVENTS = Counter("csms_eventstore_appended_events_total", "Events appended to the log.")
BATCH_EVENTS = Histogram(
    "csms_eventstore_append_batch_events",
    "Events per group commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
)
BATCH_SUBMISSIONS = Histogram(
    "csms_eventstore_append_batch_submissions",
    "Appends (callers) gathered into one group commit.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
COMMIT_SECONDS = Histogram(
    "csms_eventstore_append_seconds",
    "Time from a group commit's start to its answer (append lock, version check, insert, commit).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

APPEND_ERRORS = Counter(
    "csms_eventstore_append_errors_total",
    "Appends that failed in the database (not concurrency conflicts), by error type.",
    ["error"],
)


def record_append_error(error: str) -> None:
    """One submission refused or lost by the database: its caller gets the error, nothing was committed."""
    APPEND_ERRORS.labels(error).inc()


def record_batch(submissions: int, events: int, seconds: float) -> None:
    """The appender's batch observer: one committed group commit."""
    BATCHES.inc()
    EVENTS.inc(events)
    BATCH_EVENTS.observe(events)
    BATCH_SUBMISSIONS.observe(submissions)
    COMMIT_SECONDS.observe(seconds)
