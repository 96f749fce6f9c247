"""Payload validation against the `ocpp` package's bundled JSON schemas, compiled once with jsonschema-rs.

The `ocpp` library validates with the pure-Python `jsonschema` (hundreds of µs a message, so its ChargePoint
pushes the work to a thread pool). The same schemas compiled by jsonschema-rs take a few µs, so the gateway
validates inline, on every message, in both directions.

Accepting what the library accepts, so that no charger that works with it breaks with us:

- Formats (`date-time`, `uri`) are not asserted, as the library's `Draft4Validator` without a format checker
  does not assert them either: chargers in the field send timestamps without an offset, and handlers parse
  them anyway.
- The library parses three 1.6 payloads with `Decimal` so that `multipleOf: 0.1` accepts a float like 21.4.
  jsonschema-rs checks `multipleOf` without that float error (21.4 passes, 4.11 fails), so floats are fine.
- Each schema's own `$schema` dialect is honoured (draft-04 for 1.6, draft-06 for 2.0.1 and the 1.6 security
  extension), where the library uses draft-04 throughout. The only difference that shows on these schemas:
  under draft-06, 1.0 is a valid `integer`. Handlers must therefore coerce integers with `int()`.

A `null` payload, which both specs allow for "no payload", reaches us as `{}` (see `frames.parse_frame`).
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import jsonschema_rs
import orjson

from write_api.ocpp.errors import Fault, error_code
from write_api.ocpp.frames import UNKNOWN_MESSAGE_ID, Call, FrameError, JsonObject, MessageType
from write_api.ocpp.versions import ProtocolVersion

# Which fault a failed schema keyword is, so that it gets its version's code. The spec's words:
# "OccurrenceConstraintViolation: ... at least one of the fields violates occurrence constraints" (a required
# field, the cardinality of a list), "TypeConstraintViolation: ... violates data type constraints (e.g.
# "somestring": 12)", "PropertyConstraintViolation: ... at least one field contains an invalid value";
# an unknown field means the payload does not have its PDU's structure (OCPP-J 1.6 §4.2.3 Table 7,
# OCPP 2.0.1 Part 4 §4.3 Table 8). Anything else (no such keyword appears in the bundled schemas) is treated
# like an unknown field.
# The `ocpp` library's mapping differs, and we keep to the spec's words instead: it answers a missing field
# with ProtocolError, a too-long string with TypeConstraintViolation, and every other keyword (enum, minimum,
# multipleOf...) with "FormatViolation", a code 1.6 does not have. It only chooses codes, never acceptance.
_FAULT_BY_KEYWORD: Final[Mapping[str, Fault]] = MappingProxyType(
    {
        "required": Fault.OCCURRENCE,
        "minItems": Fault.OCCURRENCE,
        "maxItems": Fault.OCCURRENCE,
        "additionalItems": Fault.OCCURRENCE,
        "minProperties": Fault.OCCURRENCE,
        "maxProperties": Fault.OCCURRENCE,
        "type": Fault.TYPE,
        "enum": Fault.PROPERTY,
        "const": Fault.PROPERTY,
        "minLength": Fault.PROPERTY,
        "maxLength": Fault.PROPERTY,
        "pattern": Fault.PROPERTY,
        "format": Fault.PROPERTY,
        "minimum": Fault.PROPERTY,
        "maximum": Fault.PROPERTY,
        "exclusiveMinimum": Fault.PROPERTY,
        "exclusiveMaximum": Fault.PROPERTY,
        "multipleOf": Fault.PROPERTY,
        "uniqueItems": Fault.PROPERTY,
        "additionalProperties": Fault.INVALID_PAYLOAD,
    }
)

_SCHEMA_DIRECTORY: Final[Mapping[ProtocolVersion, str]] = MappingProxyType(
    {ProtocolVersion.OCPP16: "v16", ProtocolVersion.OCPP201: "v201"}
)
# 1.6 names a request's schema after the bare action (`Authorize.json`), 2.0.1 adds "Request"; both add
# "Response" for the response's.
_REQUEST_SUFFIX: Final[Mapping[ProtocolVersion, str]] = MappingProxyType(
    {ProtocolVersion.OCPP16: "", ProtocolVersion.OCPP201: "Request"}
)
_RESPONSE_SUFFIX: Final = "Response"
_UTF8_BOM: Final = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class _Schemas:
    """One version's compiled validators, by action."""

    requests: Mapping[str, jsonschema_rs.Validator]
    responses: Mapping[str, jsonschema_rs.Validator]


# Compiled on first use per version (about 10 ms for either), then kept for the life of the process: they are
# a pure function of the installed `ocpp` package, like `re`'s cache of compiled patterns.
_compiled: dict[ProtocolVersion, _Schemas] = {}


def _schemas(version: ProtocolVersion) -> _Schemas:
    schemas = _compiled.get(version)
    if schemas is None:
        schemas = _compiled[version] = _compile(version)
    return schemas


def _compile(version: ProtocolVersion) -> _Schemas:
    directory = importlib.resources.files("ocpp") / _SCHEMA_DIRECTORY[version] / "schemas"
    request_suffix = _REQUEST_SUFFIX[version]
    requests: dict[str, jsonschema_rs.Validator] = {}
    responses: dict[str, jsonschema_rs.Validator] = {}
    for resource in directory.iterdir():
        name = resource.name.removesuffix(".json")
        if name == resource.name:
            continue
        schema = orjson.loads(resource.read_bytes().removeprefix(_UTF8_BOM))
        validator = jsonschema_rs.validator_for(schema, validate_formats=False)
        if name.endswith(_RESPONSE_SUFFIX):
            responses[name.removesuffix(_RESPONSE_SUFFIX)] = validator
        elif name.endswith(request_suffix):
            requests[name.removesuffix(request_suffix) if request_suffix else name] = validator
    # An action is usable only with both halves: a CALL we accept must have a response we can check.
    actions = requests.keys() & responses.keys()
    return _Schemas(
        requests=MappingProxyType({action: requests[action] for action in actions}),
        responses=MappingProxyType({action: responses[action] for action in actions}),
    )


def compile_validators(*versions: ProtocolVersion) -> None:
    """Compile the validators of `versions` (all by default) now rather than on the first message."""
    for version in versions or tuple(ProtocolVersion):
        _schemas(version)


def supported_actions(version: ProtocolVersion) -> frozenset[str]:
    """The actions `version` defines (with both a request and a response schema), in either direction."""
    return frozenset(_schemas(version).requests)


def validate_call(version: ProtocolVersion, call: Call) -> None:
    """Raise `FrameError` unless `call` is a request `version` defines, with a payload its schema accepts.

    An action `version` does not define is `NotImplemented` ("Requested Action is not known by receiver").
    One it defines but the gateway does not handle is the handler's to refuse with `NotSupported`
    (`Fault.UNSUPPORTED_ACTION`).
    """
    _check(version, _schemas(version).requests, call.action, call.payload, call.message_id, MessageType.CALL)


def validate_response(
    version: ProtocolVersion, action: str, payload: JsonObject, message_id: str = UNKNOWN_MESSAGE_ID
) -> None:
    """Raise `FrameError` unless `payload` is a valid response to a CALL of `action` in `version`.

    For a charger's CALLRESULT (the error is then never answered: see `FrameError.answerable`), and for our
    own responses before they are sent.
    """
    _check(version, _schemas(version).responses, action, payload, message_id, MessageType.CALL_RESULT)


def _check(
    version: ProtocolVersion,
    validators: Mapping[str, jsonschema_rs.Validator],
    action: str,
    payload: JsonObject,
    message_id: str,
    message_type: MessageType,
) -> None:
    validator = validators.get(action)
    if validator is None:
        raise FrameError(
            error_code(version, Fault.UNKNOWN_ACTION),
            f"Action {action!r} is not an OCPP {version.value.removeprefix('ocpp')} action",
            message_id,
            message_type,
        )
    half = "request" if message_type is MessageType.CALL else "response"
    try:
        if validator.is_valid(payload):
            return
        # Only now, on the slow path, ask for the first error to name it.
        error = next(iter(validator.iter_errors(payload)), None)
    except ValueError as exc:
        # jsonschema-rs cannot hand back the offending value: it is nested deeper than its recursion limit
        # (about 255 levels; orjson allows 1024), or, in our own responses, not JSON-shaped.
        raise FrameError(
            error_code(version, Fault.INVALID_PAYLOAD),
            f"{action} {half} cannot be validated: {exc}",
            message_id,
            message_type,
        ) from None
    if error is None:  # is_valid and iter_errors disagree: not expected, but never let it pass silently
        raise FrameError(
            error_code(version, Fault.INVALID_PAYLOAD),
            f"{action} {half} is not valid",
            message_id,
            message_type,
        )
    keyword = error.kind.name
    path = _json_pointer(error.instance_path)
    raise FrameError(
        error_code(version, _FAULT_BY_KEYWORD.get(keyword, Fault.INVALID_PAYLOAD)),
        # jsonschema-rs quotes the offending value, possibly the whole payload: keep logs and replies short
        f"{action} {half}{f' at {path}' if path else ''}: {_shorten(error.message)}",
        message_id,
        message_type,
        {"path": path, "keyword": keyword},
    )


def _json_pointer(parts: list[str | int]) -> str:
    """RFC 6901: "" is the whole payload; "~" and "/" inside a key are escaped."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
