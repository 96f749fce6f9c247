"""OCPP-J frames (CALL, CALLRESULT, CALLERROR) encoded with orjson, and the UTC timestamps they carry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

CALL = 2
CALLRESULT = 3
CALLERROR = 4

Payload = dict[str, Any]


def call(unique_id: str, action: str, payload: Payload) -> bytes:
    return orjson.dumps([CALL, unique_id, action, payload])


def call_result(unique_id: str, payload: Payload) -> bytes:
    return orjson.dumps([CALLRESULT, unique_id, payload])


def call_error(unique_id: str, code: str, description: str = "") -> bytes:
    return orjson.dumps([CALLERROR, unique_id, code, description, {}])


def utc_timestamp(epoch_seconds: float) -> str:
    """RFC 3339 in UTC with milliseconds, as OCPP's date-time fields expect: 2024-05-01T12:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
