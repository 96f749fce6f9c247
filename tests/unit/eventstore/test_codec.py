"""The codec: plain JSON out, typed events back, upcasting in one place, clear errors."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest
from eventsourcing.domain import Aggregate, event

from csms.eventstore.codec import EventCodec, Upcaster
from csms.eventstore.errors import TranscodingError, UnknownTopicError
from csms.eventstore.records import RecordedEvent


class Colour(enum.StrEnum):
    RED = "Red"
    GREEN = "Green"


@dataclass(frozen=True)
class Part:
    name: str
    price: Decimal
    made_at: datetime | None


class Widget(Aggregate):
    @event("Made")
    def __init__(
        self, id: UUID, owner: UUID, colour: Colour, parts: tuple[Part, ...], timestamp: datetime
    ) -> None:
        self.owner, self.colour, self.parts = owner, colour, parts

    def paint(self, colour: Colour, at: datetime) -> None:
        self._painted(colour=colour, note=None, timestamp=at)

    @event("Painted")
    def _painted(self, colour: Colour, note: str | None, timestamp: datetime) -> None:
        self.colour = colour


@dataclass(frozen=True)
class Spec:
    topic: str
    cls: type[Any]
    version: int = 1
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)


def _painted_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # v1 stored the colour in lower case under "color".
    data["colour"] = data.pop("color").capitalize()
    return data


# The @event decorator creates these classes at run time, so static typing cannot see them as attributes.
MADE: type[Any] = vars(Widget)["Made"]
PAINTED: type[Any] = vars(Widget)["Painted"]

CODEC = EventCodec(
    [
        Spec("Widget.Made", MADE),
        Spec("Widget.Painted", PAINTED, version=2, upcasters={1: _painted_v1_to_v2}),
    ]
)
AT = datetime(2026, 11, 28, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=1)))


def _recorded(topic: str, data: dict[str, Any], version: int = 1, schema_version: int = 1) -> RecordedEvent:
    return RecordedEvent(1, uuid.uuid4(), version, topic, schema_version, data, {}, AT)


def test_events_round_trip_through_plain_json() -> None:
    widget = Widget(
        id=uuid.uuid4(),
        owner=uuid.uuid4(),
        colour=Colour.RED,
        parts=(Part("bolt", Decimal("0.30"), AT), Part("nut", Decimal("1E+2"), None)),
        timestamp=AT,
    )
    widget.paint(Colour.GREEN, AT + timedelta(seconds=1))
    made, painted = widget.collect_events()

    encoded = CODEC.encode(made, {"correlation_id": "c-1"})
    data = orjson.loads(encoded.data)
    assert encoded.topic == "Widget.Made"
    assert encoded.metadata == {"correlation_id": "c-1"}
    assert data["parts"][0] == {
        "name": "bolt",
        "price": "0.30",
        "made_at": "2026-11-28T23:59:59.123456+01:00",
    }
    assert data["colour"] == "Red"
    assert "originator_id" not in data

    rebuilt = [
        CODEC.decode(RecordedEvent(n, widget.id, n, e.topic, e.schema_version, orjson.loads(e.data), {}, AT))
        for n, e in enumerate([encoded, CODEC.encode(painted)], start=1)
    ]
    assert rebuilt == [made, painted]
    copy = rebuilt[1].mutate(rebuilt[0].mutate(None))
    assert copy == widget
    assert copy.parts[0].price == Decimal("0.30")


def test_old_schema_versions_are_upcast_on_read() -> None:
    painted = CODEC.decode(
        _recorded("Widget.Painted", {"color": "green", "note": None, "timestamp": AT.isoformat()}, 2)
    )
    assert painted.colour is Colour.GREEN
    assert CODEC.encode(painted).schema_version == 2


def test_unknown_topic_is_named() -> None:
    with pytest.raises(UnknownTopicError, match=r"'Widget\.Exploded'"):
        CODEC.decode(_recorded("Widget.Exploded", {}))


def test_a_schema_version_newer_than_the_code_is_refused() -> None:
    with pytest.raises(TranscodingError, match="newer than this code"):
        CODEC.decode(_recorded("Widget.Painted", {}, schema_version=3))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "Green", "timestamp": AT.isoformat()}, "missing field"),
        (
            {"colour": "Green", "note": None, "timestamp": AT.isoformat(), "extra": 1},
            "unexpected field 'extra'",
        ),
        ({"colour": "Purple", "note": None, "timestamp": AT.isoformat()}, "Widget.Painted.colour"),
        ({"colour": "Green", "note": 5, "timestamp": AT.isoformat()}, "expected str"),
        ({"colour": "Green", "note": None, "timestamp": "2026-01-01T00:00:00"}, "no time zone"),
    ],
)
def test_data_that_does_not_match_the_event_is_reported(data: dict[str, Any], message: str) -> None:
    with pytest.raises(TranscodingError, match=message):
        CODEC.decode(_recorded("Widget.Painted", data, schema_version=2))


def test_registration_requires_an_upcaster_for_every_older_version() -> None:
    with pytest.raises(ValueError, match="no upcaster"):
        EventCodec([Spec("Widget.Painted", PAINTED, version=2)])


def test_unregistered_event_classes_cannot_be_encoded() -> None:
    codec = EventCodec([Spec("Widget.Made", MADE)])
    widget = Widget(id=uuid.uuid4(), owner=uuid.uuid4(), colour=Colour.RED, parts=(), timestamp=AT)
    widget.paint(Colour.GREEN, datetime.now(UTC))
    with pytest.raises(UnknownTopicError, match="Painted"):
        codec.encode(widget.collect_events()[1])


@pytest.mark.parametrize(
    ("part", "message"),
    [
        ({"name": "bolt", "price": "0.30"}, r"missing field\(s\) \['made_at'\] in Part"),
        ({"name": "bolt", "price": "0.30", "made_at": None, "colour": "Red"}, "unexpected field 'colour'"),
        # As many fields as the class has, but one misnamed: the fast path must not take it.
        ({"name": "bolt", "cost": "0.30", "made_at": None}, "unexpected field 'cost' in Part"),
        ({"name": "bolt", "price": 0.3, "made_at": None}, "expected a decimal string"),
    ],
)
def test_value_objects_that_do_not_match_their_class_are_reported(part: dict[str, Any], message: str) -> None:
    data = {"owner": str(uuid.uuid4()), "colour": "Red", "parts": [part], "timestamp": AT.isoformat()}
    with pytest.raises(TranscodingError, match=message):
        CODEC.decode(_recorded("Widget.Made", data))


def test_value_objects_decode_field_by_field() -> None:
    data = {
        "owner": str(uuid.uuid4()),
        "colour": "Red",
        "parts": [{"made_at": AT.isoformat(), "price": "1.25", "name": "nut"}],  # any order
        "timestamp": AT.isoformat(),
    }
    made = CODEC.decode(_recorded("Widget.Made", data))
    assert made.parts == (Part("nut", Decimal("1.25"), AT),)
