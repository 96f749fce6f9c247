"""Checks payloads against the JSON schemas bundled with the `ocpp` package, as a CSMS built on it would."""

from __future__ import annotations

import re
from typing import Any

from ocpp.messages import MessageType, get_validator

# Draft 4 validators in jsonschema check no date-time format without an extra package: check them here.
_DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
_TIME_KEYS = frozenset({"timestamp", "currentTime"})


def _bad_times(value: Any, path: str = "") -> list[str]:
    problems: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in _TIME_KEYS and not (isinstance(item, str) and _DATE_TIME.match(item)):
                problems.append(f"{path}/{key}: {item!r} is not an RFC 3339 date-time")
            problems.extend(_bad_times(item, f"{path}/{key}"))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(_bad_times(item, f"{path}/{index}"))
    return problems


def schema_errors(version: str, action: str, payload: Any, *, response: bool = False) -> list[str]:
    kind = MessageType.CallResult if response else MessageType.Call
    validator = get_validator(kind, action, version)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(payload)]
    return errors + _bad_times(payload)


def assert_valid(version: str, action: str, payload: Any, *, response: bool = False) -> None:
    errors = schema_errors(version, action, payload, response=response)
    kind = "response" if response else "request"
    assert not errors, f"{version} {action} {kind} is not schema-valid: {errors}\n{payload}"
