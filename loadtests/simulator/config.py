"""What every charger of a simulated fleet shares: endpoint, protocol version, timings and limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

OcppVersion = Literal["1.6", "2.0.1"]

#: Called as observer(charger_id, event, action, payload) on "connected" (payload: the endpoint's URL),
#: "disconnected", "queued" (a transaction-related message was generated), "sent" (a CALL left),
#: "result" (its CALLRESULT arrived), "error" (CALLERROR or timeout) and "csms_call" (a call from the
#: CSMS was answered).
Observer = Callable[[str, str, str, Any], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargerConfig:
    """One instance per fleet: a charger keeps only what differs between chargers."""

    url: str = "ws://127.0.0.1:9000/ocpp"
    #: Other nodes of the same CSMS. A charger stays on an endpoint while it serves; after a failed connection
    #: attempt, or a connection the CSMS closed or lost, it tries the next of `url` + these, round robin.
    #: Empty: `url` only.
    failover_urls: tuple[str, ...] = ()
    version: OcppVersion = "1.6"
    connectors: int = 1
    #: Seconds between Heartbeats; None means the interval the CSMS returns in BootNotification.
    heartbeat: float | None = None
    #: Heartbeat interval used when the CSMS returns 0 and no override is given.
    default_heartbeat: float = 300.0
    meter_interval: float = 60.0
    session_duration: float = 3600.0
    #: Pause between the end of a session and the next one on a charger that charges.
    idle_duration: float = 60.0
    #: Steady charging power of a simulated EV, in W.
    power_w: int = 11_000
    #: idTag / idToken presented for local starts; None derives one from the charger id.
    id_tag: str | None = None
    response_timeout: float = 30.0
    connect_timeout: float = 30.0
    #: Seconds between WebSocket pings (aiohttp's heartbeat); None disables them.
    ws_ping: float | None = 60.0
    # Reconnect back-off, after OCPP 2.0.1's RetryBackOffWaitMinimum / RandomRange / RepeatTimes: the n-th
    # attempt waits reconnect_min * 2**min(n - 1, reconnect_repeat) + uniform(0, reconnect_range).
    reconnect_min: float = 2.0
    reconnect_range: float = 10.0
    reconnect_repeat: int = 5
    #: Wait before another BootNotification when Pending / Rejected come with interval 0, or the boot fails.
    boot_retry: float = 30.0
    #: Send BootNotification on every reconnect, not only after a (re)boot, as some firmware does.
    boot_on_reconnect: bool = False
    # Failed transaction-related messages (CALLERROR or timeout), after OCPP 1.6 section 3.7.1.
    tx_attempts: int = 3
    tx_retry_interval: float = 10.0
    #: Transaction-related messages kept while offline; past it periodic meter values are dropped.
    offline_queue_limit: int = 1000
    vendor: str = "CSMS-Sim"
    model: str = "SimCharger"
    firmware: str = "1.0.0"
    observer: Observer | None = None

    @property
    def urls(self) -> tuple[str, ...]:
        """Every endpoint, in the order a charger tries them."""
        return (self.url, *self.failover_urls)

    def __post_init__(self) -> None:
        if self.connectors < 1:
            raise ValueError("a charger has at least one connector")
        if self.meter_interval <= 0 or self.session_duration <= 0 or self.idle_duration < 0:
            raise ValueError(
                "meter interval and session duration must be positive, idle duration not negative"
            )
        if self.tx_attempts < 1:
            raise ValueError("tx_attempts must be at least 1")
