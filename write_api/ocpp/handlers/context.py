"""What a handler knows about the charger whose message it handles, and the signature handlers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from write_api.charger_reports import ChargerReports
from write_api.ocpp.admission import BootAdmission
from write_api.ocpp.metrics import record_boot_pending


@dataclass(slots=True)
class ChargerContext:
    """One connected charger, as its connection's handlers see it.

    `booted` turns true once this connection's BootNotification was accepted (or when the charger was booted
    before and reconnected without rebooting, as chargers do after a network outage): only then may the CSMS
    send it calls.
    """

    charge_point_id: str
    charger_id: UUID
    reports: ChargerReports
    clock: Callable[[], datetime]
    heartbeat_interval: int
    admission: BootAdmission | None = None
    booted: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


Payload = dict[str, Any]
Handler = Callable[[ChargerContext, Payload], Awaitable[Payload]]
Handlers = Mapping[str, Handler]


def boot_response(context: ChargerContext, record: Callable[[], Awaitable[None]]) -> Awaitable[Payload]:
    """Accept the boot (recording it with `record`) or, when the node is over its boot pace, answer Pending
    without recording anything; the same for both protocol versions."""

    async def answer() -> Payload:
        retry_after = None if context.admission is None else context.admission.admit(context.charge_point_id)
        if retry_after is not None:
            context.booted = False
            record_boot_pending()
            return {"status": "Pending", "currentTime": now_iso(context), "interval": retry_after}
        await record()
        context.booted = True
        return {"status": "Accepted", "currentTime": now_iso(context), "interval": context.heartbeat_interval}

    return answer()


def now_iso(context: ChargerContext) -> str:
    """The CSMS's current time as OCPP dateTime (UTC, millisecond precision, `Z`)."""
    return context.clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")
