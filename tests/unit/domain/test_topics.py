"""The topic registry covers every event exactly once, and every event is codec-friendly."""

import dataclasses
import types
import typing
from datetime import date, datetime, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

import pytest

from csms.domain import AGGREGATES, EVENT_TYPES, EventType, Station, event_classes
from csms.domain.topics import EVENT_TYPES_BY_TOPIC

# Fields every event has; the event store keeps them in its envelope.
BASE_FIELDS = {
    "originator_id",
    "originator_version",
    "timestamp",
    "originator_topic",
    "originator_id_type",
}
SCALARS = (str, int, bool, Decimal, datetime, date, time, UUID)


def test_every_event_an_aggregate_can_emit_is_registered_exactly_once() -> None:
    emitted = [cls for aggregate in AGGREGATES for cls in event_classes(aggregate)]
    registered = [event_type.cls for event_type in EVENT_TYPES]

    assert sorted(map(_name, emitted)) == sorted(map(_name, registered))
    assert len(set(registered)) == len(registered)


def test_topics_are_unique_and_named_after_aggregate_and_event() -> None:
    topics = [event_type.topic for event_type in EVENT_TYPES]

    assert len(set(topics)) == len(topics)
    for event_type in EVENT_TYPES:
        assert event_type.topic == _name(event_type.cls)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda event_type: event_type.topic)
def test_type_hints_resolve_to_types_the_codec_transcodes(event_type: EventType) -> None:
    hints = typing.get_type_hints(event_type.cls)

    for field_name, hint in hints.items():
        if field_name not in BASE_FIELDS:
            _assert_codec_type(hint, f"{event_type.topic}.{field_name}")


def test_station_created_v1_is_upcast_to_v2() -> None:
    """v1 had top-level "lat"/"lon" strings and no opening hours."""
    stored_v1 = {
        "company_id": "00000000-0000-4000-8000-000000000001",
        "name": "Centraal P1",
        "address": {
            "street": "Stationsplein 1",
            "city": "Amsterdam",
            "postal_code": "1012 AB",
            "country": "NLD",
            "state": None,
        },
        "lat": "52.378901",
        "lon": "4.900272",
        "time_zone": "Europe/Amsterdam",
    }
    event_type = EVENT_TYPES_BY_TOPIC["Station.Created"]

    upcast = event_type.upcast(dict(stored_v1), from_version=1)

    assert event_type.version == 2
    assert upcast == {
        "company_id": "00000000-0000-4000-8000-000000000001",
        "name": "Centraal P1",
        "address": stored_v1["address"],
        "coordinates": {"latitude": "52.378901", "longitude": "4.900272"},
        "time_zone": "Europe/Amsterdam",
        "opening_hours": {"twentyfourseven": True, "regular_hours": []},
    }
    current_fields = {f.name for f in dataclasses.fields(_station_created())} - BASE_FIELDS
    assert set(upcast) == current_fields
    assert event_type.upcast(upcast, from_version=2) == upcast


def test_an_event_type_needs_an_upcaster_for_every_older_version() -> None:
    with pytest.raises(ValueError, match="no upcaster"):
        EventType("Station.Created", _station_created(), version=3, upcasters={})


def _station_created() -> Any:
    return vars(Station)["Created"]


def _name(cls: type[Any]) -> str:
    """ "Aggregate.Event" from the class's qualified name."""
    return ".".join(cls.__qualname__.split(".")[-2:])


def _assert_codec_type(hint: Any, where: str) -> None:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in SCALARS:
        return
    if isinstance(hint, type) and issubclass(hint, Enum):
        assert all(isinstance(member.value, str) for member in hint), f"{where}: {hint}"
        return
    if origin in (typing.Union, types.UnionType):
        others = [arg for arg in args if arg is not type(None)]
        assert args == (others[0], type(None)), f"{where}: only X | None is allowed"
        _assert_codec_type(others[0], where)
        return
    if origin is tuple:
        assert args == (args[0], Ellipsis), f"{where}: only tuple[X, ...]"
        _assert_codec_type(args[0], f"{where}[]")
        return
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        assert hint.__dataclass_params__.frozen, f"{where}: {hint.__name__} is not frozen"  # type: ignore[attr-defined]
        for name, field_hint in typing.get_type_hints(hint).items():
            _assert_codec_type(field_hint, f"{where}.{name}")
        return
    pytest.fail(f"{where}: {hint!r} is not a type the codec transcodes")
