"""Turn domain events into stored JSON and back: explicit topics, typed transcoding, upcasting.

The JSON is plain (Decimal as a string, datetimes as RFC 3339, UUIDs as strings, enums as their values,
value objects as objects, tuples as arrays), so SQL, projections and people can read it. Python types
are restored from the event class's type hints, with one decoder compiled per type and cached.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import textwrap
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, Protocol
from uuid import UUID

import orjson
from eventsourcing.utils import get_topic

from csms.eventstore.errors import TranscodingError, UnknownTopicError
from csms.eventstore.records import NewEvent, RecordedEvent

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
Decoder = Callable[[Any], Any]

# Attributes every eventsourcing event has; they are columns of the store, not part of `data`.
_ENVELOPE = ("originator_id", "originator_version", "originator_topic")


class EventTypeSpec(Protocol):
    """What the codec needs to know of a registered event type (see `csms.domain.topics`)."""

    @property
    def topic(self) -> str: ...
    @property
    def cls(self) -> type[Any]: ...
    @property
    def version(self) -> int: ...
    @property
    def upcasters(self) -> Mapping[int, Upcaster]: ...


class EventCodec:
    """Encodes aggregate events for the store and decodes recorded events back into them."""

    def __init__(self, event_types: Iterable[EventTypeSpec]) -> None:
        self._by_topic: dict[str, EventTypeSpec] = {}
        self._by_class: dict[type[Any], EventTypeSpec] = {}
        self._decoders: dict[str, dict[str, Decoder]] = {}
        self._required: dict[str, frozenset[str]] = {}  # fields a stored event must carry, per topic
        for spec in event_types:
            if spec.topic in self._by_topic:
                raise ValueError(f"topic {spec.topic!r} is registered twice")
            if spec.cls in self._by_class:
                raise ValueError(f"{spec.cls.__qualname__} is registered under two topics")
            missing = [v for v in range(1, spec.version) if v not in spec.upcasters]
            if missing:
                raise ValueError(f"{spec.topic}: no upcaster from version(s) {missing}")
            self._by_topic[spec.topic] = spec
            self._by_class[spec.cls] = spec
            self._decoders[spec.topic] = _field_decoders(spec.cls)
            self._required[spec.topic] = frozenset(
                self._decoders[spec.topic].keys() - set(_ENVELOPE) - _optional_fields(spec.cls)
            )

    @property
    def topics(self) -> list[str]:
        return sorted(self._by_topic)

    def topic_of(self, event_class: type[Any]) -> str:
        spec = self._by_class.get(event_class)
        if spec is None:
            raise UnknownTopicError(f"<unregistered class {event_class.__qualname__}>")
        return spec.topic

    def encode(self, event: Any, metadata: Mapping[str, Any] | None = None) -> NewEvent:
        """A domain event as a `NewEvent` (topic, JSON data at the current schema version)."""
        spec = self._by_class.get(type(event))
        if spec is None:
            raise UnknownTopicError(f"<unregistered class {type(event).__qualname__}>")
        return NewEvent(
            topic=spec.topic,
            data=self.encode_data(event),
            schema_version=spec.version,
            metadata=dict(metadata or {}),
        )

    def encode_data(self, event: Any) -> bytes:
        state = {k: v for k, v in vars(event).items() if k not in _ENVELOPE}
        try:
            return orjson.dumps(state, default=_encode_default, option=orjson.OPT_NON_STR_KEYS)
        except TypeError as error:
            raise TranscodingError(f"cannot encode {type(event).__qualname__}: {error}") from error

    def upcast(self, topic: str, schema_version: int, data: dict[str, Any]) -> dict[str, Any]:
        """`data` stored at `schema_version`, brought up to the topic's current version."""
        spec = self._spec(topic)
        if schema_version > spec.version:
            raise TranscodingError(
                f"{topic} was stored at schema version {schema_version}, newer than this code's"
                f" {spec.version}: deploy the newer code first"
            )
        for version in range(schema_version, spec.version):
            data = spec.upcasters[version](dict(data))
        return data

    def decode(self, recorded: RecordedEvent) -> Any:
        """The domain event a recorded event stands for, upcast to the current schema."""
        spec = self._spec(recorded.topic)
        data = self.upcast(recorded.topic, recorded.schema_version, recorded.data)
        return self.decode_data(spec, recorded.stream_id, recorded.stream_version, data)

    def decode_data(self, spec: EventTypeSpec, stream_id: UUID, version: int, data: Mapping[str, Any]) -> Any:
        decoders = self._decoders[spec.topic]
        state: dict[str, Any] = {}
        for name, value in data.items():
            decoder = decoders.get(name)
            if decoder is None:
                raise TranscodingError(f"{spec.topic}: unexpected field {name!r}")
            try:
                state[name] = decoder(value)
            except (TypeError, ValueError, KeyError, InvalidOperation) as error:
                raise TranscodingError(f"{spec.topic}.{name}: {error}") from error
        required = self._required[spec.topic]
        if not required <= state.keys():
            missing = required - state.keys()
            raise TranscodingError(f"{spec.topic}: missing field(s) {sorted(missing)}")
        state["originator_id"] = stream_id
        state["originator_version"] = version
        if "originator_topic" in decoders:
            state["originator_topic"] = get_topic(_aggregate_of(spec.cls))
        # The same construction eventsourcing's own mapper uses: events are immutable and carry
        # exactly this state; no __init__ logic may run (or fail) while rebuilding history.
        event = object.__new__(spec.cls)
        object.__setattr__(event, "__dict__", state)
        return event

    def _spec(self, topic: str) -> EventTypeSpec:
        spec = self._by_topic.get(topic)
        if spec is None:
            raise UnknownTopicError(topic)
        return spec


def _encode_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Strings keep every digit: a float would turn 0.30 EUR into 0.29999999999999998.
        return str(value)
    if isinstance(value, UUID):
        # orjson serialises exactly uuid.UUID; drivers hand out subclasses (asyncpg's own UUID type).
        return str(value)
    if isinstance(value, frozenset | set):
        return sorted(value)
    raise TypeError(f"{type(value).__qualname__} is not a supported event field type")


def _aggregate_of(event_class: type[Any]) -> type[Any]:
    """The aggregate class an event class is nested in (`Charger.Registered` -> `Charger`)."""
    outer = event_class.__qualname__.split(".")[0]
    return typing.cast(type[Any], getattr(sys.modules[event_class.__module__], outer))


def _optional_fields(cls: type[Any]) -> set[str]:
    """Fields a stored event may omit (they have defaults in the event's signature)."""
    if dataclasses.is_dataclass(cls):
        return {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        }
    return set()


def _field_decoders(cls: type[Any]) -> dict[str, Decoder]:
    hints = typing.get_type_hints(cls)
    return {f.name: decoder_for(hints[f.name]) for f in dataclasses.fields(cls)}


@cache
def decoder_for(hint: Any) -> Decoder:
    """A function turning the JSON form of `hint` back into a value of that type."""
    if hint is Any:
        return _identity
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) != 1:
            raise TypeError(f"unsupported union {hint}: only `X | None` is transcoded")
        inner = decoder_for(non_none[0])
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = decoder_for(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [decoder_for(a) for a in args]
        return lambda v: tuple(d(x) for d, x in zip(items, v, strict=True))
    if origin in (list, frozenset, set):
        item = decoder_for(args[0]) if args else _identity
        container = typing.cast(Callable[[Any], Any], origin)
        return lambda v: container(item(x) for x in v)
    if origin is dict or origin is Mapping:
        key = decoder_for(args[0]) if args else _identity
        value = decoder_for(args[1]) if args else _identity
        return lambda v: {key(k): value(x) for k, x in v.items()}
    if origin is typing.Literal:
        return _identity
    if isinstance(hint, type):
        return _decoder_for_class(hint)
    if isinstance(hint, typing.TypeVar):
        return _identity
    raise TypeError(f"unsupported event field type {hint!r}")


def _decoder_for_class(cls: type[Any]) -> Decoder:
    if issubclass(cls, enum.Enum):
        return cls
    if cls is bool:
        return _expect(bool)
    if cls is int:
        return _int
    if cls is str:
        return _expect(str)
    if cls is float:
        return float
    if cls is Decimal:
        return _decimal
    if cls is datetime:
        return _datetime
    if cls is date:
        return date.fromisoformat
    if cls is time:
        return time.fromisoformat
    if cls is UUID:
        return UUID
    if dataclasses.is_dataclass(cls):
        return _dataclass_decoder(cls)
    if cls is type(None):
        return _identity
    raise TypeError(f"unsupported event field type {cls.__qualname__}")


def _dataclass_decoder(cls: type[Any]) -> Decoder:
    """A decoder for one value-object class, generated once: a straight run of attribute assignments.

    Like events, stored value objects are facts: they are rebuilt without re-running today's validation
    (`__post_init__`), which may be stricter than the rules they were made under. The generated function
    handles the usual case (exactly the class's fields) without a loop or a set operation, which matters
    because a meter-values event holds a tuple of them; anything else takes the checked path, which names
    the unexpected or missing field.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: decoder_for(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
    names = list(fields)
    if not all(name.isidentifier() for name in names):
        raise TypeError(f"unsupported field names in {cls.__qualname__}")

    def checked(v: Mapping[str, Any]) -> Any:
        obj = object.__new__(cls)
        for name, raw in v.items():
            decoder = fields.get(name)
            if decoder is None:
                raise ValueError(f"unexpected field {name!r} in {cls.__qualname__}")
            object.__setattr__(obj, name, decoder(raw))
        missing = fields.keys() - v.keys()
        if missing:
            raise ValueError(f"missing field(s) {sorted(missing)} in {cls.__qualname__}")
        return obj

    namespace: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
    namespace |= {f"_d{i}": fields[name] for i, name in enumerate(names)}
    namespace["_checked"] = checked
    body = "".join(f"    _set(obj, {name!r}, _d{i}(v[{name!r}]))\n" for i, name in enumerate(names))
    source = (
        "def decode(v):\n"
        f"    if len(v) != {len(names)}:\n"
        "        return _checked(v)\n"
        "    obj = _new(_cls)\n"
        "    try:\n"
        f"{textwrap.indent(body, '    ')}"
        "    except KeyError:\n"
        "        return _checked(v)\n"
        "    return obj\n"
    )
    exec(source, namespace)  # noqa: S102 (source built above from the class's own field names)
    decode: Decoder = namespace["decode"]
    return decode


def _identity(value: Any) -> Any:
    return value


def _expect(cls: type[Any]) -> Decoder:
    def check(value: Any) -> Any:
        if type(value) is not cls:
            raise TypeError(f"expected {cls.__name__}, got {type(value).__name__}")
        return value

    return check


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected int, got {type(value).__name__}")
    return value


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"expected a decimal string, got {type(value).__name__}")
    return Decimal(value)


def _datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"datetime {value!r} has no time zone")
    return parsed
