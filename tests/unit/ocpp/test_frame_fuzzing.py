"""Whatever a charger sends, reading it raises only FrameError, and each FrameError has a valid answer."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp import messages
from ocpp.exceptions import OCPPError

from tests.unit.ocpp.test_validation import VALID_CALLS
from write_api.ocpp.errors import error_codes
from write_api.ocpp.frames import (
    MAX_ERROR_DESCRIPTION_LENGTH,
    MAX_MESSAGE_ID_LENGTH,
    UNKNOWN_MESSAGE_ID,
    Call,
    CallError,
    CallResult,
    Frame,
    FrameError,
    JsonObject,
    call_error_for,
    parse_frame,
    serialize,
)
from write_api.ocpp.validation import supported_actions, validate_call
from write_api.ocpp.versions import ProtocolVersion

# No example database: these are unit tests and write nothing to disk.
fuzz = settings(database=None, max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

versions = st.sampled_from(list(ProtocolVersion))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=12), json_values, max_size=5)
actions = st.sampled_from(
    sorted(supported_actions(ProtocolVersion.OCPP16) | supported_actions(ProtocolVersion.OCPP201))
)
message_ids = st.text(max_size=MAX_MESSAGE_ID_LENGTH + 4)
short_ids = st.text(max_size=MAX_MESSAGE_ID_LENGTH)
# Mostly strings, which reach the enum, length and format checks that other JSON values stop short of.
replacements = st.one_of(st.text(max_size=25), json_values)


def _mostly(usual: st.SearchStrategy[Any], unusual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` about four times in five (`|` alone would weigh each branch of a nested `one_of` equally)."""
    return st.integers(min_value=0, max_value=4).flatmap(lambda n: unusual if n == 0 else usual)


@st.composite
def frame_like(draw: st.DrawFn) -> list[Any]:
    """A well-formed frame of a random type, then as often as not one element or its length damaged."""
    type_id = draw(_mostly(st.sampled_from([2, 3, 4]), st.integers(-2, 9) | json_scalars))
    message_id = draw(_mostly(short_ids, message_ids | json_scalars))
    if type_id == 2:
        frame = [type_id, message_id, draw(st.one_of(actions, st.text(max_size=20))), draw(json_objects)]
    elif type_id == 3:
        frame = [type_id, message_id, draw(json_objects)]
    elif type_id == 4:
        frame = [
            type_id,
            message_id,
            draw(st.text(max_size=30)),
            draw(st.text(max_size=80)),
            draw(json_objects),
        ]
    else:
        frame = [type_id, message_id, *draw(st.lists(json_values, max_size=4))]
    damage = draw(_mostly(st.just("none"), st.sampled_from(["element", "length"])))
    if damage == "element":
        frame[draw(st.integers(min_value=0, max_value=len(frame) - 1))] = draw(json_values)
    elif damage == "length":
        frame = (frame + draw(st.lists(json_values, min_size=1, max_size=2)))[
            : draw(st.integers(0, len(frame) + 2))
        ]
    return frame


@st.composite
def mutated_payloads(draw: st.DrawFn) -> tuple[ProtocolVersion, str, JsonObject]:
    """A realistic request with one value replaced, removed or added somewhere inside it."""
    version, action, payload = draw(st.sampled_from(VALID_CALLS))
    payload = copy.deepcopy(payload)
    containers: list[dict[str, Any] | list[Any]] = []
    _collect_containers(payload, containers)
    target = draw(st.sampled_from(containers))
    operation = draw(st.sampled_from(["replace", "remove", "add"]))
    if isinstance(target, dict):
        if operation == "add" or not target:
            target[draw(st.text(max_size=12))] = draw(replacements)
        else:
            key = draw(st.sampled_from(sorted(target)))
            if operation == "remove":
                del target[key]
            else:
                target[key] = draw(replacements)
    elif operation == "add" or not target:
        target.append(draw(replacements))
    else:
        index = draw(st.integers(min_value=0, max_value=len(target) - 1))
        if operation == "remove":
            del target[index]
        else:
            target[index] = draw(replacements)
    return version, action, payload


def _collect_containers(value: Any, into: list[dict[str, Any] | list[Any]]) -> None:
    if isinstance(value, dict):
        into.append(value)
        for item in value.values():
            _collect_containers(item, into)
    elif isinstance(value, list):
        into.append(value)
        for item in value:
            _collect_containers(item, into)


def _read(raw: str | bytes, version: ProtocolVersion) -> FrameError | None:
    """What the gateway does with a frame: parse it, then validate a CALL. Any other exception fails."""
    try:
        frame = parse_frame(raw, version)
        if isinstance(frame, Call):
            validate_call(version, frame)
    except FrameError as error:
        _assert_well_formed_answer(error, version)
        return error
    return None


def _assert_well_formed_answer(error: FrameError, version: ProtocolVersion) -> None:
    reply = call_error_for(error)
    wire = serialize(reply)
    decoded = orjson.loads(wire)
    assert type(decoded) is list
    assert len(decoded) == 5
    message_type, message_id, code, description, details = decoded
    assert message_type == 4
    assert type(message_id) is str
    assert len(message_id) <= MAX_MESSAGE_ID_LENGTH
    assert code in error_codes(version)
    assert type(description) is str
    assert len(description) <= MAX_ERROR_DESCRIPTION_LENGTH
    assert type(details) is dict
    # ...and our own reader takes it for the CALLERROR it is.
    assert parse_frame(wire, version) == reply


def _expected_reply_id(value: Any) -> str:
    if type(value) is list and len(value) > 1:
        candidate = value[1]
        if type(candidate) is str and len(candidate) <= MAX_MESSAGE_ID_LENGTH:
            return candidate
    return UNKNOWN_MESSAGE_ID


def _assert_answer_matches(value: Any, error: FrameError) -> None:
    """The id is echoed whenever it is readable, "-1" otherwise; answers are never answered."""
    assert error.message_id == _expected_reply_id(value)
    is_answer = type(value) is list and value and type(value[0]) is int and value[0] in (3, 4)
    assert error.answerable is not is_answer


@fuzz
@given(st.binary(max_size=200), versions)
def test_arbitrary_bytes_raise_only_frame_errors(raw: bytes, version: ProtocolVersion) -> None:
    _read(raw, version)


@fuzz
@given(st.text(max_size=200), versions)
def test_arbitrary_text_raises_only_frame_errors(raw: str, version: ProtocolVersion) -> None:
    error = _read(raw, version)
    if error is not None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            assert error.message_id == UNKNOWN_MESSAGE_ID
        else:
            _assert_answer_matches(value, error)


@fuzz
@given(json_values, versions)
def test_arbitrary_json_values_raise_only_frame_errors(value: Any, version: ProtocolVersion) -> None:
    raw = orjson.dumps(value)
    error = _read(raw, version)
    if error is not None:
        _assert_answer_matches(orjson.loads(raw), error)


@fuzz
@given(frame_like(), versions)
def test_frame_like_arrays_raise_only_frame_errors_and_echo_readable_ids(
    value: list[Any], version: ProtocolVersion
) -> None:
    raw = orjson.dumps(value)
    error = _read(raw, version)
    if error is not None:
        _assert_answer_matches(orjson.loads(raw), error)


@fuzz
@given(st.sampled_from(VALID_CALLS), st.data())
def test_damaged_bytes_of_real_frames_raise_only_frame_errors(
    case: tuple[ProtocolVersion, str, JsonObject], data: st.DataObject
) -> None:
    version, action, payload = case
    raw = bytearray(orjson.dumps([2, "19223201", action, payload]))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        position = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[position] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(raw)))
    _read(bytes(raw[:cut]), version)


@fuzz
@given(mutated_payloads())
def test_whatever_the_library_accepts_we_accept(case: tuple[ProtocolVersion, str, JsonObject]) -> None:
    version, action, payload = case
    raw = orjson.dumps([2, "19223201", action, payload])
    error = _read(raw, version)
    if error is not None:
        assert error.message_id == "19223201"
        assert error.answerable
        # Only the library's verdict may differ, and only where it is stricter (see test_validation).
        message = messages.Call("19223201", action, orjson.loads(raw))
        try:
            messages._validate_payload(message, version.value.removeprefix("ocpp"))
        except OCPPError:
            return
        raise AssertionError(f"the ocpp library accepts what we refuse: {error}")


frames = (
    st.builds(Call, short_ids, st.text(), json_objects)
    | st.builds(CallResult, short_ids, json_objects)
    | st.builds(CallError, short_ids, st.text(), st.text(), json_objects)
)


@fuzz
@given(frames, versions)
def test_any_frame_survives_a_round_trip(frame: Frame, version: ProtocolVersion) -> None:
    assert parse_frame(serialize(frame), version) == frame
