"""What a simulated charger asks of an OCPP version: payloads to send, answers to the CSMS's calls."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from loadtests.simulator.charger import Charger
    from loadtests.simulator.frames import Payload
    from loadtests.simulator.offline_queue import QueuedMessage
    from loadtests.simulator.session import Session

#: Run after the answer to a CSMS call has been sent: the spec wants e.g. the TriggerMessage response out
#: before the message it triggers, and a RemoteStart acknowledged before the transaction starts.
Effect = Callable[[], None]


class CallError(Exception):
    """Raised by a handler of a CSMS call: answered with a CALLERROR carrying this code."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description


class BootReason(enum.Enum):
    """Why a BootNotification is sent (2.0.1's BootReasonEnumType; 1.6 has no such field)."""

    POWER_UP = "PowerUp"
    REMOTE_RESET = "RemoteReset"
    TRIGGERED = "Triggered"


class Trigger(enum.IntFlag):
    """Messages the CSMS asked for with TriggerMessage, sent by the charger once the response is out."""

    NONE = 0
    BOOT = enum.auto()
    HEARTBEAT = enum.auto()
    STATUS = enum.auto()
    METER_VALUES = enum.auto()
    TRANSACTION_EVENT = enum.auto()


class Reading:
    """One meter sample of a connector: the energy register (Wh) and the power flowing (W)."""

    __slots__ = ("energy_wh", "power_w", "timestamp")

    def __init__(self, energy_wh: int, power_w: int, timestamp: str) -> None:
        self.energy_wh = energy_wh
        self.power_w = power_w
        self.timestamp = timestamp


class OcppProtocol(Protocol):
    """One OCPP version: stateless, shared by every charger speaking it."""

    version: str
    subprotocol: str
    #: Error code for a call whose payload cannot be read (1.6 spells it FormationViolation).
    format_violation: str
    #: idToken type of a locally presented token (2.0.1; 1.6 has plain idTags).
    local_id_type: str

    def new_transaction_id(self) -> str: ...

    def boot_notification(self, charger: Charger, reason: BootReason) -> Payload: ...

    def heartbeat(self) -> Payload: ...

    def status_notification(self, charger: Charger, connector: int, timestamp: str) -> Payload: ...

    def authorize(self, id_tag: str) -> Payload: ...

    def authorized(self, result: Payload) -> bool: ...

    def meter_values(self, charger: Charger, connector: int, reading: Reading) -> tuple[str, Payload]:
        """A MeterValues message asked for by TriggerMessage (sent at once, not transaction-related)."""
        ...

    def session_started(self, session: Session, reading: Reading, offline: bool) -> tuple[str, Payload]: ...

    def session_sampled(
        self, session: Session, reading: Reading, offline: bool, triggered: bool
    ) -> tuple[str, Payload]: ...

    def session_ended(self, session: Session, reading: Reading, offline: bool) -> tuple[str, Payload]: ...

    def prepare(self, message: QueuedMessage) -> Payload | None:
        """The payload of a queued message as sent now, or None when it can no longer be sent."""
        ...

    def on_result(self, charger: Charger, message: QueuedMessage, result: Payload) -> None:
        """Take in the CSMS's answer to a transaction-related message."""
        ...

    def handle(self, charger: Charger, action: str, payload: Payload) -> tuple[Payload, Effect | None]:
        """Answer a call from the CSMS; raise CallError for a CALLERROR."""
        ...
