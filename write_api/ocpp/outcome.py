"""The outcome of a CSMS-initiated call to a charger, as every caller sees it (API, router, gateway)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class CallStatus(enum.StrEnum):
    RESULT = "result"  # the charger answered with a CALLRESULT: read `payload` (e.g. status Accepted)
    CALL_ERROR = "call_error"  # the charger answered with a CALLERROR
    OFFLINE = "offline"  # the charger is not connected to any gateway
    TIMED_OUT = "timed_out"  # no answer within the timeout
    NOT_BOOTED = "not_booted"  # connected, but its BootNotification has not been accepted yet


@dataclass(frozen=True, slots=True)
class CallOutcome:
    status: CallStatus
    payload: dict[str, Any] | None = None
    error_code: str | None = None
    error_description: str | None = None

    @classmethod
    def result(cls, payload: dict[str, Any]) -> CallOutcome:
        return cls(CallStatus.RESULT, payload=payload)

    @classmethod
    def call_error(cls, code: str, description: str) -> CallOutcome:
        return cls(CallStatus.CALL_ERROR, error_code=code, error_description=description)

    @classmethod
    def offline(cls) -> CallOutcome:
        return cls(CallStatus.OFFLINE)

    @classmethod
    def timed_out(cls) -> CallOutcome:
        return cls(CallStatus.TIMED_OUT)

    @classmethod
    def not_booted(cls) -> CallOutcome:
        return cls(CallStatus.NOT_BOOTED)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "payload": self.payload,
            "errorCode": self.error_code,
            "errorDescription": self.error_description,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CallOutcome:
        return cls(
            CallStatus(data["status"]),
            data.get("payload"),
            data.get("errorCode"),
            data.get("errorDescription"),
        )
