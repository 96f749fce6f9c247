"""Deterministic sample data for every registered event, synthesised from the event's type hints.

`python -m tests.golden.samples` writes the golden file of any event type/version that has none yet.
Existing files are never rewritten: they are the record of what was stored, and changing them by hand
defeats their purpose. A new schema version gets a new file next to the old one.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import orjson

from csms.domain.topics import EVENT_TYPES
from csms.eventstore.codec import EventCodec

GOLDEN_DIR = Path(__file__).parent / "events"
_NAMESPACE = UUID("6f1c3f5e-2d35-4c0e-9a53-2c6d4b1f9e20")
_ENVELOPE = {"originator_id", "originator_version", "originator_topic"}


def golden_path(topic: str, version: int) -> Path:
    return GOLDEN_DIR / f"{topic}.v{version}.json"


def sample_value(hint: Any, path: str) -> Any:
    """A plausible, deterministic Python value of type `hint` (non-None for optionals)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(a for a in args if a is not type(None)), path)
    if origin is tuple:
        return (sample_value(args[0], path + "[0]"),)
    if origin is list:
        return [sample_value(args[0], path + "[0]")]
    if origin is dict:
        return {sample_value(args[0], path + ".key"): sample_value(args[1], path + ".value")}
    if isinstance(hint, type):
        return _sample_of_class(hint, path)
    raise TypeError(f"{path}: no sample for {hint!r}")


def _sample_of_class(cls: type[Any], path: str) -> Any:
    if issubclass(cls, enum.Enum):
        return next(iter(cls))
    if cls is bool:
        return True
    if cls is int:
        return 7
    if cls is str:
        return path.rsplit(".", 1)[-1] + "-sample"
    if cls is Decimal:
        return Decimal("12.34")
    if cls is datetime:
        return datetime(2026, 3, 29, 1, 30, 15, 250000, tzinfo=UTC)
    if cls is date:
        return date(2026, 3, 29)
    if cls is time:
        return time(22, 30)
    if cls is UUID:
        return uuid5(_NAMESPACE, path)
    if dataclasses.is_dataclass(cls):
        # Samples pin the stored shape, not the domain's rules, so value objects are built without
        # their validation (exactly as the codec rebuilds them from storage).
        hints = typing.get_type_hints(cls)
        obj = object.__new__(cls)
        for f in dataclasses.fields(cls):
            object.__setattr__(obj, f.name, sample_value(hints[f.name], f"{path}.{f.name}"))
        return obj
    raise TypeError(f"{path}: no sample for {cls.__qualname__}")


def sample_data(event_class: type[Any], topic: str) -> dict[str, Any]:
    """The JSON `data` of a sample event of `event_class`, as the codec would store it."""
    hints = typing.get_type_hints(event_class)
    state = {
        f.name: sample_value(hints[f.name], f"{topic}.{f.name}")
        for f in dataclasses.fields(event_class)
        if f.name not in _ENVELOPE
    }
    event = object.__new__(event_class)
    object.__setattr__(event, "__dict__", state)
    data: dict[str, Any] = orjson.loads(EventCodec([]).encode_data(event))
    return data


def write_missing() -> list[Path]:
    written = []
    for spec in EVENT_TYPES:
        path = golden_path(spec.topic, spec.version)
        if path.exists():
            continue
        document = {"topic": spec.topic, "version": spec.version, "data": sample_data(spec.cls, spec.topic)}
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_missing():
        print(f"wrote {written_path}")
