"""OCPP-J framing: valid frames read as typed values, each broken frame as the CALLERROR its version names."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from write_api.ocpp.errors import ErrorCode, error_codes
from write_api.ocpp.frames import (
    MAX_ERROR_DESCRIPTION_LENGTH,
    Call,
    CallError,
    CallResult,
    Frame,
    FrameError,
    MessageType,
    call_error_for,
    parse_frame,
    serialize,
)
from write_api.ocpp.versions import ProtocolVersion

V16 = ProtocolVersion.OCPP16
V201 = ProtocolVersion.OCPP201

# The examples of OCPP-J 1.6 §4.2.1 and §4.2.2, laid out as printed there.
SPEC_16_CALL = """[2,
 "19223201",
 "BootNotification",
 {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}
]"""
SPEC_16_CALL_RESULT = """[3,
 "19223201",
 {"status":"Accepted", "currentTime":"2013-02-01T20:53:32.486Z", "heartbeatInterval":300}
]"""
# The examples of OCPP 2.0.1 Part 4 §4.2.1, §4.2.2 and §4.2.3.
SPEC_201_CALL = """[2,
 "19223201",
 "BootNotification",
 {
  "reason": "PowerUp",
  "chargingStation": {
      "model": "SingleSocketCharger",
      "vendorName": "VendorX"
  }
 }
]"""
SPEC_201_CALL_RESULT = """[3,
 "19223201",
 {
   "currentTime": "2013-02-01T20:53:32.486Z",
   "interval": 300,
   "status": "Accepted"
 }
]"""
SPEC_201_CALL_ERROR = """[4,
  "162376037",
  "NotSupported",
  "SetDisplayMessageRequest not implemented",
  {}
]"""


# -- valid frames --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "version", "expected"),
    [
        (
            SPEC_16_CALL,
            V16,
            Call(
                "19223201",
                "BootNotification",
                {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"},
            ),
        ),
        (
            SPEC_16_CALL_RESULT,
            V16,
            CallResult(
                "19223201",
                {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z", "heartbeatInterval": 300},
            ),
        ),
        (
            SPEC_201_CALL,
            V201,
            Call(
                "19223201",
                "BootNotification",
                {
                    "reason": "PowerUp",
                    "chargingStation": {"model": "SingleSocketCharger", "vendorName": "VendorX"},
                },
            ),
        ),
        (
            SPEC_201_CALL_RESULT,
            V201,
            CallResult(
                "19223201", {"currentTime": "2013-02-01T20:53:32.486Z", "interval": 300, "status": "Accepted"}
            ),
        ),
        (
            SPEC_201_CALL_ERROR,
            V201,
            CallError("162376037", "NotSupported", "SetDisplayMessageRequest not implemented", {}),
        ),
    ],
)
def test_the_specs_example_frames_parse(raw: str, version: ProtocolVersion, expected: Frame) -> None:
    assert parse_frame(raw, version) == expected
    assert parse_frame(raw.encode(), version) == expected


@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_a_null_payload_is_read_as_an_empty_object(version: ProtocolVersion) -> None:
    # OCPP-J 1.6 §4.2.1 and OCPP 2.0.1 Part 4 §4.1.5 allow both; {} is merely the better practice.
    assert parse_frame('[2,"1","Heartbeat",null]', version) == Call("1", "Heartbeat", {})
    assert parse_frame('[3,"1",null]', version) == CallResult("1", {})
    assert parse_frame('[4,"1","GenericError","",null]', version) == CallError("1", "GenericError", "", {})


def test_a_peers_unknown_error_code_is_kept_as_sent() -> None:
    frame = parse_frame('[4,"7","SomethingElse","odd charger",{"why":1}]', V201)
    assert frame == CallError("7", "SomethingElse", "odd charger", {"why": 1})


def test_a_message_id_of_36_characters_is_accepted() -> None:
    guid = "0b6a8f5e-2c1d-4b8a-9f3e-7d6c5b4a3e21"
    assert len(guid) == 36
    assert parse_frame(f'[2,"{guid}","Heartbeat",{{}}]', V201) == Call(guid, "Heartbeat", {})
    # Characters, not bytes.
    assert parse_frame(orjson.dumps([2, "é" * 36, "Heartbeat", {}]), V16).message_id == "é" * 36


def test_frames_are_immutable() -> None:
    call = Call("1", "Heartbeat", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.action = "Reset"  # type: ignore[misc]
    assert call.message_type is MessageType.CALL
    assert CallResult("1", {}).message_type is MessageType.CALL_RESULT
    assert CallError("1", "GenericError", "", {}).message_type is MessageType.CALL_ERROR


# -- serialization -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        Call("19223201", "BootNotification", {"chargePointVendor": "VendorX", "chargePointModel": "M"}),
        Call("1", "Heartbeat", {}),
        CallResult(
            "19223201", {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z", "interval": 300}
        ),
        CallError("162376037", "NotSupported", "SetDisplayMessageRequest not implemented", {}),
        CallError("x", "GenericError", "ünïcødé", {"nested": [1, 2.5, None, True]}),
    ],
)
@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_serialize_then_parse_gives_the_frame_back(frame: Frame, version: ProtocolVersion) -> None:
    assert parse_frame(serialize(frame), version) == frame


def test_serialize_writes_compact_ocpp_j_arrays() -> None:
    assert serialize(Call("1", "Heartbeat", {})) == b'[2,"1","Heartbeat",{}]'
    assert serialize(CallResult("1", {"currentTime": "2024-01-01T00:00:00Z"})) == (
        b'[3,"1",{"currentTime":"2024-01-01T00:00:00Z"}]'
    )
    assert serialize(CallError("1", ErrorCode.NOT_IMPLEMENTED, "", {})) == b'[4,"1","NotImplemented","",{}]'


# -- broken frames -------------------------------------------------------------------------------------------

# (raw frame, 1.6 code, 2.0.1 code, id answered with, message type read)
BROKEN_FRAMES = [
    pytest.param(b"[2,", "FormationViolation", "FormatViolation", "-1", None, id="truncated JSON"),
    pytest.param(b"\xff\xfe[]", "FormationViolation", "FormatViolation", "-1", None, id="not UTF-8"),
    pytest.param(
        '[2,"1","Heartbeat",{}] x', "FormationViolation", "FormatViolation", "-1", None, id="trailing"
    ),
    pytest.param("", "FormationViolation", "FormatViolation", "-1", None, id="empty"),
    pytest.param("NaN", "FormationViolation", "FormatViolation", "-1", None, id="NaN is not JSON"),
    pytest.param('{"a": 1}', "FormationViolation", "RpcFrameworkError", "-1", None, id="object"),
    pytest.param('"hello"', "FormationViolation", "RpcFrameworkError", "-1", None, id="string"),
    pytest.param("null", "FormationViolation", "RpcFrameworkError", "-1", None, id="null"),
    pytest.param("[]", "FormationViolation", "RpcFrameworkError", "-1", None, id="empty array"),
    pytest.param(
        '["2","1","Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "1", None, id="type str"
    ),
    pytest.param(
        '[2.0,"1","Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "1", None, id="type float"
    ),
    pytest.param(
        '[true,"1","Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "1", None, id="type bool"
    ),
    pytest.param(
        '[null,5,"Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "-1", None, id="no type, no id"
    ),
    pytest.param(
        '[5,"1","Heartbeat",{}]', "FormationViolation", "MessageTypeNotSupported", "1", None, id="type 5"
    ),
    pytest.param("[0]", "FormationViolation", "MessageTypeNotSupported", "-1", None, id="type 0, no id"),
    pytest.param(
        '[2,19223201,"Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "-1", 2, id="int id"
    ),
    pytest.param('[2,null,"Heartbeat",{}]', "FormationViolation", "RpcFrameworkError", "-1", 2, id="null id"),
    pytest.param("[2]", "FormationViolation", "RpcFrameworkError", "-1", 2, id="CALL without id"),
    pytest.param(
        '[2,"' + "x" * 37 + '","Heartbeat",{}]',
        "FormationViolation",
        "RpcFrameworkError",
        "-1",
        2,
        id="id of 37 characters",
    ),
    pytest.param('[2,"1","Heartbeat"]', "FormationViolation", "RpcFrameworkError", "1", 2, id="CALL of 3"),
    pytest.param(
        '[2,"1","Heartbeat",{},{}]', "FormationViolation", "RpcFrameworkError", "1", 2, id="CALL of 5"
    ),
    pytest.param('[2,"1",7,{}]', "FormationViolation", "RpcFrameworkError", "1", 2, id="action not a string"),
    pytest.param(
        '[2,"1","Heartbeat",[]]', "FormationViolation", "FormatViolation", "1", 2, id="payload array"
    ),
    pytest.param(
        '[2,"1","Heartbeat","{}"]', "FormationViolation", "FormatViolation", "1", 2, id="payload string"
    ),
    pytest.param('[3,"1"]', "FormationViolation", "RpcFrameworkError", "1", 3, id="CALLRESULT of 2"),
    pytest.param('[3,"1",{},{}]', "FormationViolation", "RpcFrameworkError", "1", 3, id="CALLRESULT of 4"),
    pytest.param('[3,"1",42]', "FormationViolation", "FormatViolation", "1", 3, id="CALLRESULT payload int"),
    pytest.param("[3,1,{}]", "FormationViolation", "RpcFrameworkError", "-1", 3, id="CALLRESULT int id"),
    pytest.param(
        '[4,"1","GenericError",""]', "FormationViolation", "RpcFrameworkError", "1", 4, id="CALLERROR of 4"
    ),
    pytest.param('[4,"1",1,"",{}]', "FormationViolation", "RpcFrameworkError", "1", 4, id="error code int"),
    pytest.param(
        '[4,"1","GenericError",null,{}]', "FormationViolation", "RpcFrameworkError", "1", 4, id="desc null"
    ),
    pytest.param(
        '[4,"1","GenericError","",[]]', "FormationViolation", "FormatViolation", "1", 4, id="details array"
    ),
]


@pytest.mark.parametrize(("raw", "code_16", "code_201", "reply_id", "message_type"), BROKEN_FRAMES)
@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_a_broken_frame_raises_its_versions_code(
    raw: str | bytes,
    code_16: str,
    code_201: str,
    reply_id: str,
    message_type: int | None,
    version: ProtocolVersion,
) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, version)
    error = caught.value
    assert error.error_code == (code_16 if version is V16 else code_201)
    assert error.error_code in error_codes(version)
    assert error.message_id == reply_id
    assert error.message_type == message_type


@pytest.mark.parametrize(
    ("raw", "answerable"),
    [
        ("[2,", True),  # type unknown: answered, with "-1"
        ('[7,"1"]', True),  # OCPP 2.0.1 Part 4 §4.4: an unknown type is answered
        ('[2,"1","Heartbeat",[]]', True),
        ("[2,1]", True),
        ('[3,"1",[]]', False),  # a broken answer is never answered
        ("[3,1,{}]", False),
        ('[4,"1","GenericError",""]', False),
        ("[4]", False),
    ],
)
def test_only_a_call_or_a_frame_of_unknown_type_is_answered(raw: str, answerable: bool) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(raw, V201)
    assert caught.value.answerable is answerable


def test_an_invalid_frame_is_not_echoed_in_the_description() -> None:
    # OCPP 2.0.1 Part 4 §4.2.3: the CALLERROR SHALL NOT include the syntactically invalid JSON.
    with pytest.raises(FrameError) as caught:
        parse_frame('[2,"1","Heartbeat",{"secret-looking-thing": ]', V201)
    assert "secret-looking-thing" not in caught.value.description


# -- the CALLERROR for an error ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(ProtocolVersion))
def test_call_error_for_echoes_the_id_and_code(version: ProtocolVersion) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame('[2,"abc","Heartbeat",[]]', version)
    reply = call_error_for(caught.value)
    assert reply == CallError("abc", caught.value.error_code, "Payload is not a JSON object", {})
    assert orjson.loads(serialize(reply)) == [
        4,
        "abc",
        str(caught.value.error_code),
        reply.error_description,
        {},
    ]


def test_call_error_for_an_unreadable_frame_uses_id_minus_one() -> None:
    with pytest.raises(FrameError) as caught:
        parse_frame(b"\x00", V201)
    assert orjson.loads(serialize(call_error_for(caught.value)))[:3] == [4, "-1", "FormatViolation"]


def test_call_error_for_keeps_the_description_within_255_characters() -> None:
    error = FrameError(ErrorCode.GENERIC_ERROR, "x" * 1000, "1", MessageType.CALL, {"k": "v"})
    reply = call_error_for(error)
    assert len(reply.error_description) == MAX_ERROR_DESCRIPTION_LENGTH
    assert reply.error_details == {"k": "v"}


def test_a_frame_error_reads_well_in_a_log() -> None:
    error = FrameError(ErrorCode.RPC_FRAMEWORK_ERROR, "MessageTypeId is not an integer", "1")
    assert str(error) == "RpcFrameworkError (message id '1'): MessageTypeId is not an integer"
    assert error.details == {}
    assert error.message_type is None
