"""Prometheus metrics of the OCPP gateway: connected chargers, messages, call latency, commands, and the
gateway's own defences (boots answered Pending, messages held back by the rate limiter).

Labels are bounded: the protocol (two values), the action (only actions the gateway knows; anything else a
charger sends counts as `unknown`, an unreadable frame as `malformed`), the direction (`received`: the
charger's CALLs; `sent`: the CSMS's CALLs to the charger) and the result. Never a charger id.

Children are looked up once per label combination and kept: `labels()` costs a lock and a dict lookup, which
is noticeable at tens of thousands of messages per second.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from write_api.ocpp.versions import ProtocolVersion

CONNECTED = Gauge(
    "csms_ocpp_connected_chargers",
    "Chargers with an open, authenticated WebSocket on this process, by protocol.",
    ["protocol"],
    multiprocess_mode="livesum",
)
CONNECTIONS = Counter(
    "csms_ocpp_connections_total", "Charger WebSocket connections accepted, by protocol.", ["protocol"]
)
DISCONNECTIONS = Counter(
    "csms_ocpp_disconnections_total",
    "Charger WebSocket connections that ended, by protocol and cause (charger, replaced, shutdown, timeout,"
    " lost, error, too_large: a frame over CSMS_OCPP_MAX_FRAME_BYTES, closed with 1009).",
    ["protocol", "cause"],
)
REFUSED = Counter(
    "csms_ocpp_connections_refused_total",
    "Connection attempts refused before or at the upgrade, by reason.",
    ["reason"],
)
MESSAGES = Counter(
    "csms_ocpp_messages_total",
    "OCPP CALLs by protocol, action, direction (received from or sent to chargers) and result.",
    ["protocol", "action", "direction", "result"],
)
CALL_SECONDS = Histogram(
    "csms_ocpp_call_duration_seconds",
    "Time from a CALL to its CALLRESULT or CALLERROR, by protocol, action and direction "
    "(received: our handling, events committed; sent: the charger's answer).",
    ["protocol", "action", "direction"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
BOOTS_PENDING = Counter(
    "csms_ocpp_boots_pending_total",
    "BootNotifications answered Pending because the node was over its boot pace (a reconnect storm).",
)
THROTTLED = Counter(
    "csms_ocpp_throttled_messages_total",
    "Charger messages held back by the per-charger rate limiter, by protocol.",
    ["protocol"],
)
COMMANDS = Counter(
    "csms_ocpp_commands_total",
    "Commands sent to chargers through the command interface, by action and outcome.",
    ["action", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "csms_ocpp_command_duration_seconds",
    "Time from a command's request to its outcome, wherever the charger is connected, by action.",
    ["action"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

RECEIVED = "received"
SENT = "sent"
UNKNOWN_ACTION = "unknown"
MALFORMED = "malformed"

# Children made up front for the two bounded labels: the series exist (at 0) before the first event, so
# `rate()` and `increase()` see the first one.
_throttled = {version: THROTTLED.labels(version.value) for version in ProtocolVersion}

_messages: dict[tuple[str, str, str, str], Counter] = {}
_durations: dict[tuple[str, str, str], Histogram] = {}


def record_call(
    protocol: ProtocolVersion, action: str, direction: str, result: str, seconds: float | None
) -> None:
    """One CALL answered (or given up on): count it and, when it was answered, observe its latency."""
    key = (protocol.value, action, direction, result)
    counter = _messages.get(key)
    if counter is None:
        counter = _messages[key] = MESSAGES.labels(*key)
    counter.inc()
    if seconds is not None:
        duration_key = (protocol.value, action, direction)
        histogram = _durations.get(duration_key)
        if histogram is None:
            histogram = _durations[duration_key] = CALL_SECONDS.labels(*duration_key)
        histogram.observe(seconds)


def record_connected(protocol: ProtocolVersion) -> None:
    CONNECTIONS.labels(protocol.value).inc()
    CONNECTED.labels(protocol.value).inc()


def record_disconnected(protocol: ProtocolVersion, cause: str) -> None:
    DISCONNECTIONS.labels(protocol.value, cause).inc()
    CONNECTED.labels(protocol.value).dec()


def record_throttled(protocol: ProtocolVersion) -> None:
    """A charger's message waits because the charger sends faster than its rate limit."""
    _throttled[protocol].inc()


def record_boot_pending() -> None:
    BOOTS_PENDING.inc()


def record_refused(reason: str) -> None:
    REFUSED.labels(reason).inc()


def record_command(action: str, outcome: str, seconds: float) -> None:
    COMMANDS.labels(action, outcome).inc()
    COMMAND_SECONDS.labels(action).observe(seconds)
