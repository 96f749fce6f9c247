"""Payload validation: what the bundled schemas accept, and the version's code for each kind of violation."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import orjson
import pytest
from ocpp import messages
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.v16 import call as call_16
from ocpp.v16 import call_result as result_16
from ocpp.v16 import datatypes as datatypes_16
from ocpp.v16 import enums as enums_16
from ocpp.v201 import call as call_201
from ocpp.v201 import call_result as result_201
from ocpp.v201 import datatypes as datatypes_201
from ocpp.v201 import enums as enums_201

from write_api.ocpp.errors import ErrorCode, error_codes
from write_api.ocpp.frames import Call, CallResult, FrameError, JsonObject, MessageType, parse_frame
from write_api.ocpp.validation import (
    compile_validators,
    supported_actions,
    validate_call,
    validate_response,
)
from write_api.ocpp.versions import ProtocolVersion

V16 = ProtocolVersion.OCPP16
V201 = ProtocolVersion.OCPP201
AT = "2026-11-28T12:00:00.000Z"

# Realistic requests from chargers, one per (version, action), all valid.
VALID_CALLS: list[tuple[ProtocolVersion, str, JsonObject]] = [
    (
        V16,
        "BootNotification",
        {
            "chargePointVendor": "VendorX",
            "chargePointModel": "SingleSocketCharger",
            "chargePointSerialNumber": "SN-000123",
            "firmwareVersion": "1.4.2",
            "meterType": "ABB B23",
        },
    ),
    (V16, "Heartbeat", {}),
    (V16, "Authorize", {"idTag": "04E91C5A123456"}),
    (
        V16,
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": AT},
    ),
    (
        V16,
        "StartTransaction",
        {"connectorId": 1, "idTag": "04E91C5A123456", "meterStart": 123456, "timestamp": AT},
    ),
    (
        V16,
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 4711,
            "meterValue": [
                {
                    "timestamp": AT,
                    "sampledValue": [
                        {
                            "value": "12345.6",
                            "context": "Sample.Periodic",
                            "format": "Raw",
                            "measurand": "Energy.Active.Import.Register",
                            "location": "Outlet",
                            "unit": "Wh",
                        },
                        {"value": "7360", "measurand": "Power.Active.Import", "unit": "W"},
                        {"value": "32.1", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                        {"value": "230.2", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                        {"value": "67", "measurand": "SoC", "location": "EV", "unit": "Percent"},
                    ],
                }
            ],
        },
    ),
    (
        V16,
        "StopTransaction",
        {
            "transactionId": 4711,
            "idTag": "04E91C5A123456",
            "meterStop": 130000,
            "timestamp": AT,
            "reason": "Local",
        },
    ),
    (
        V16,
        "SecurityEventNotification",  # from the 1.6 security whitepaper; its schema is draft-06
        {"type": "SettingSystemTime", "timestamp": AT},
    ),
    (
        V201,
        "BootNotification",
        {
            "reason": "PowerUp",
            "chargingStation": {
                "model": "SingleSocketCharger",
                "vendorName": "VendorX",
                "serialNumber": "SN-000123",
                "firmwareVersion": "2.0.1-7",
                "modem": {"iccid": "8931440400012345678", "imsi": "204043212345678"},
            },
        },
    ),
    (V201, "Heartbeat", {}),
    (V201, "Authorize", {"idToken": {"idToken": "04E91C5A123456", "type": "ISO14443"}}),
    (
        V201,
        "StatusNotification",
        {"timestamp": AT, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
    ),
    (
        V201,
        "MeterValues",
        {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": AT,
                    "sampledValue": [
                        {
                            "value": 12345.6,
                            "context": "Sample.Periodic",
                            "measurand": "Energy.Active.Import.Register",
                            "location": "Outlet",
                            "unitOfMeasure": {"unit": "Wh"},
                        },
                        {"value": 7360, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "W"}},
                        {"value": 32.1, "measurand": "Current.Import", "phase": "L1"},
                    ],
                }
            ],
        },
    ),
    (
        V201,
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": AT,
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {
                "transactionId": "f3b3c7e0-5f0b-4a7e-9f57-4c1d2e3f4a5b",
                "chargingState": "Charging",
            },
            "idToken": {"idToken": "04E91C5A123456", "type": "ISO14443"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": AT,
                    "sampledValue": [
                        {
                            "value": 0.0,
                            "context": "Transaction.Begin",
                            "measurand": "Energy.Active.Import.Register",
                            "unitOfMeasure": {"unit": "Wh"},
                        }
                    ],
                }
            ],
            "customData": {"vendorId": "com.vendorx", "anything": [1, 2]},
        },
    ),
]


def _case_id(case: tuple[ProtocolVersion, str, JsonObject]) -> str:
    return f"{case[0].value}-{case[1]}"


@pytest.mark.parametrize("case", VALID_CALLS, ids=_case_id)
def test_realistic_calls_are_valid(case: tuple[ProtocolVersion, str, JsonObject]) -> None:
    version, action, payload = case
    call = parse_frame(orjson.dumps([2, "19223201", action, payload]), version)
    assert isinstance(call, Call)
    validate_call(version, call)


def test_supported_actions_are_those_with_both_schemas() -> None:
    actions_16 = supported_actions(V16)
    actions_201 = supported_actions(V201)
    assert len(actions_16) == 39  # 28 of OCPP 1.6 edition 2 and 11 of its security whitepaper
    assert len(actions_201) == 64
    assert {"BootNotification", "MeterValues", "StartTransaction", "SecurityEventNotification"} <= actions_16
    assert {"BootNotification", "MeterValues", "TransactionEvent", "RequestStartTransaction"} <= actions_201
    assert "TransactionEvent" not in actions_16
    assert "StartTransaction" not in actions_201
    compile_validators()  # idempotent
    assert supported_actions(V16) == actions_16


# -- unknown actions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "action"),
    [
        (V16, "TransactionEvent"),  # another version's action is not known to this one
        (V201, "StartTransaction"),
        (V16, "bootnotification"),  # actions are case-sensitive (OCPP 2.0.1 Part 4 §4.2.1 Table 5)
        (V201, "BootNotificationRequest"),  # the action is the name without "Request" (Part 4 §4.1.6)
        (V201, "BootNotification-Signed"),  # signed messages (Part 4 §7) are not supported
        (V16, ""),
    ],
)
def test_an_unknown_action_is_not_implemented(version: ProtocolVersion, action: str) -> None:
    # OCPP-J 1.6 §4.2.3 Table 7 / OCPP 2.0.1 Part 4 §4.3: "NotImplemented: Requested Action is not known by
    # receiver".
    with pytest.raises(FrameError) as caught:
        validate_call(version, Call("42", action, {}))
    assert caught.value.error_code is ErrorCode.NOT_IMPLEMENTED
    assert caught.value.message_id == "42"
    assert caught.value.answerable


# -- schema violations ---------------------------------------------------------------------------------------

BOOT_16: JsonObject = {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}
BOOT_201: JsonObject = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "VendorX"}}
METER_16: JsonObject = {"connectorId": 1, "meterValue": [{"timestamp": AT, "sampledValue": [{"value": "1"}]}]}
METER_201: JsonObject = {"evseId": 1, "meterValue": [{"timestamp": AT, "sampledValue": [{"value": 1}]}]}


def _with(payload: JsonObject, path: tuple[str | int, ...], value: Any) -> JsonObject:
    """A deep copy of `payload` with the value at `path` replaced (or, for `_DROP`, removed)."""
    changed = copy.deepcopy(payload)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


_DROP = object()

VIOLATIONS = [
    # (version, action, payload, expected code, JSON pointer, keyword)
    pytest.param(
        V16, "BootNotification", _with(BOOT_16, ("chargePointModel",), _DROP),
        "OccurenceConstraintViolation", "", "required", id="1.6 missing required",
    ),
    pytest.param(
        V201, "BootNotification", _with(BOOT_201, ("chargingStation", "model"), _DROP),
        "OccurrenceConstraintViolation", "/chargingStation", "required", id="2.0.1 missing required",
    ),
    pytest.param(
        V16, "MeterValues", _with(METER_16, ("meterValue", 0, "sampledValue"), []),
        "OccurenceConstraintViolation", "/meterValue/0/sampledValue", "minItems", id="1.6 empty list",
    ),
    pytest.param(
        V201, "MeterValues", _with(METER_201, ("meterValue",), []),
        "OccurrenceConstraintViolation", "/meterValue", "minItems", id="2.0.1 empty list",
    ),
    pytest.param(
        V16, "MeterValues", _with(METER_16, ("connectorId",), "1"),
        "TypeConstraintViolation", "/connectorId", "type", id="1.6 wrong type",
    ),
    pytest.param(
        V201, "MeterValues", _with(METER_201, ("meterValue", 0, "sampledValue", 0, "value"), "1"),
        "TypeConstraintViolation", "/meterValue/0/sampledValue/0/value", "type", id="2.0.1 wrong type",
    ),
    pytest.param(
        V16, "MeterValues", _with(METER_16, ("connectorId",), None),
        "TypeConstraintViolation", "/connectorId", "type", id="1.6 null for a field",
    ),
    pytest.param(
        V16, "StatusNotification", {"connectorId": 1, "errorCode": "Error", "status": "Faulted"},
        "PropertyConstraintViolation", "/errorCode", "enum", id="1.6 enum out of range",
    ),
    pytest.param(
        V201, "BootNotification", _with(BOOT_201, ("reason",), "Reboot"),
        "PropertyConstraintViolation", "/reason", "enum", id="2.0.1 enum out of range",
    ),
    pytest.param(
        V16, "BootNotification", _with(BOOT_16, ("chargePointModel",), "M" * 21),
        "PropertyConstraintViolation", "/chargePointModel", "maxLength", id="1.6 string too long",
    ),
    pytest.param(
        V201, "BootNotification", _with(BOOT_201, ("chargingStation", "model"), "M" * 21),
        "PropertyConstraintViolation", "/chargingStation/model", "maxLength", id="2.0.1 string too long",
    ),
    pytest.param(
        V201,
        "NotifyEVChargingNeeds",
        {
            "evseId": 1,
            "chargingNeeds": {
                "requestedEnergyTransfer": "DC",
                "dcChargingParameters": {"evMaxCurrent": 200, "evMaxVoltage": 800, "stateOfCharge": 101},
            },
        },
        "PropertyConstraintViolation", "/chargingNeeds/dcChargingParameters/stateOfCharge", "maximum",
        id="2.0.1 above maximum",
    ),
    pytest.param(
        V16, "BootNotification", _with(BOOT_16, ("colour",), "red"),
        "FormationViolation", "", "additionalProperties", id="1.6 additional property",
    ),
    pytest.param(
        V201, "BootNotification", _with(BOOT_201, ("chargingStation", "colour"), "red"),
        "FormatViolation", "/chargingStation", "additionalProperties", id="2.0.1 additional property",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("version", "action", "payload", "code", "path", "keyword"), VIOLATIONS)
def test_a_schema_violation_raises_its_versions_code(
    version: ProtocolVersion, action: str, payload: JsonObject, code: str, path: str, keyword: str
) -> None:
    with pytest.raises(FrameError) as caught:
        validate_call(version, Call("19223201", action, payload))
    error = caught.value
    assert (error.error_code, error.details) == (code, {"path": path, "keyword": keyword})
    assert error.error_code in error_codes(version)
    assert error.message_id == "19223201"
    assert error.message_type is MessageType.CALL
    assert error.answerable
    assert action in error.description


def test_a_huge_offending_value_is_not_copied_into_the_description() -> None:
    payload = {"chargePointVendor": ["x" * 10_000], "chargePointModel": "M"}
    with pytest.raises(FrameError) as caught:
        validate_call(V16, Call("1", "BootNotification", payload))
    assert len(caught.value.description) < 300


def test_a_value_nested_beyond_the_validators_reach_is_a_format_violation() -> None:
    # orjson reads up to 1024 levels; jsonschema-rs cannot hand back an offending value nested that deep.
    deep = b"[" * 1000 + b"]" * 1000
    call = parse_frame(b'[2,"1","DataTransfer",{"vendorId":"v","data":' + deep + b"}]", V16)
    assert isinstance(call, Call)
    with pytest.raises(FrameError) as caught:
        validate_call(V16, call)
    assert caught.value.error_code is ErrorCode.FORMATION_VIOLATION
    # ...while in 2.0.1, where `data` may be any JSON, the same value is simply valid.
    call = parse_frame(b'[2,"1","DataTransfer",{"vendorId":"v","data":' + deep + b"}]", V201)
    assert isinstance(call, Call)
    validate_call(V201, call)


# -- what the library's quirks accept, we accept -------------------------------------------------------------


def _charging_profile_16(limit: float) -> JsonObject:
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


@pytest.mark.parametrize("limit", [21.4, 16, 0.0, 6.6, 7.7, 32.1, 123456.7])
def test_one_decimal_limits_pass_multiple_of_a_tenth_without_decimal_parsing(limit: float) -> None:
    # The library parses SetChargingProfile with Decimal for this; jsonschema-rs gets it right on floats.
    validate_call(V16, Call("1", "SetChargingProfile", _charging_profile_16(limit)))


@pytest.mark.parametrize("limit", [4.11, 1.15, 0.30000000000000004])
def test_finer_limits_fail_multiple_of_a_tenth(limit: float) -> None:
    with pytest.raises(FrameError) as caught:
        validate_call(V16, Call("1", "SetChargingProfile", _charging_profile_16(limit)))
    assert caught.value.error_code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
    assert caught.value.details["keyword"] == "multipleOf"


@pytest.mark.parametrize("timestamp", ["2026-11-28T12:00:00", "2026-11-28 12:00:00Z", "yesterday"])
def test_formats_are_not_asserted_as_the_library_does_not(timestamp: str) -> None:
    validate_call(V16, Call("1", "StatusNotification", {**dict(VALID_CALLS[3][2]), "timestamp": timestamp}))


def test_each_schema_keeps_its_own_draft() -> None:
    # 2.0.1 schemas are draft-06, where 1.0 is an integer; 1.6's are draft-04, where it is not.
    validate_call(V201, Call("1", "MeterValues", _with(METER_201, ("evseId",), 1.0)))
    with pytest.raises(FrameError) as caught:
        validate_call(V16, Call("1", "MeterValues", _with(METER_16, ("connectorId",), 1.0)))
    assert caught.value.error_code is ErrorCode.TYPE_CONSTRAINT_VIOLATION


def _library_accepts(version: ProtocolVersion, action: str, payload: JsonObject) -> bool:
    """The `ocpp` library's own verdict, through the function its ChargePoint runs in a thread pool."""
    message = messages.Call("1", action, copy.deepcopy(payload))
    try:
        messages._validate_payload(message, version.value.removeprefix("ocpp"))
    except OCPPError:
        return False
    return True


def _ours_accepts(version: ProtocolVersion, action: str, payload: JsonObject) -> bool:
    try:
        validate_call(version, Call("1", action, payload))
    except FrameError:
        return False
    return True


AGREEMENT = [
    *((version, action, payload) for version, action, payload in VALID_CALLS),
    (V16, "SetChargingProfile", _charging_profile_16(21.4)),
    (V16, "SetChargingProfile", _charging_profile_16(4.11)),
    (V16, "StatusNotification", {**dict(VALID_CALLS[3][2]), "timestamp": "2026-11-28T12:00:00"}),
    *((version, action, payload) for version, action, payload, *_ in (p.values for p in VIOLATIONS)),
]


@pytest.mark.parametrize("case", AGREEMENT, ids=_case_id)
def test_we_accept_exactly_what_the_library_accepts(case: tuple[ProtocolVersion, str, JsonObject]) -> None:
    assert _ours_accepts(*case) is _library_accepts(*case)


# -- the library's own frames --------------------------------------------------------------------------------


def _library_payload(dataclass: Any) -> JsonObject:
    """A payload as the library's ChargePoint builds it from one of its dataclasses."""
    payload: JsonObject = remove_nones(snake_to_camel_case(serialize_as_dict(dataclass)))
    return payload


def test_the_librarys_example_frames_parse_and_validate() -> None:
    # The examples in the docstrings of `ocpp.messages.Call` and `ocpp.messages.CallResult`.
    call = parse_frame(
        '[2, "19223201", "BootNotification", '
        '{"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}]',
        V16,
    )
    assert isinstance(call, Call)
    validate_call(V16, call)
    result = parse_frame(
        '[3, "19223201", {"status":"Accepted", "currentTime":"2013-02-01T20:53:32.486Z", '
        '"heartbeatInterval":300}]',
        V16,
    )
    assert isinstance(result, CallResult)
    # That example is 1.6's own BootNotification.conf, whose interval field is `interval`, not
    # `heartbeatInterval` (the 1.6 OCPP-J spec's example has the same slip): its response schema refuses it.
    with pytest.raises(FrameError) as caught:
        validate_response(V16, "BootNotification", result.payload, result.message_id)
    assert caught.value.message_type is MessageType.CALL_RESULT
    assert not caught.value.answerable


@pytest.mark.parametrize(
    ("version", "request_"),
    [
        (V16, call_16.BootNotification(charge_point_model="M", charge_point_vendor="VendorX")),
        (
            V16,
            call_16.RemoteStartTransaction(
                id_tag="04E91C5A123456",
                connector_id=1,
                charging_profile={
                    "chargingProfileId": 1,
                    "stackLevel": 0,
                    "chargingProfilePurpose": enums_16.ChargingProfilePurposeType.tx_profile,
                    "chargingProfileKind": enums_16.ChargingProfileKindType.relative,
                    "chargingSchedule": {
                        "chargingRateUnit": enums_16.ChargingRateUnitType.amps,
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
                    },
                },
            ),
        ),
        (V16, call_16.RemoteStopTransaction(transaction_id=4711)),
        (V16, call_16.Reset(type=enums_16.ResetType.soft)),
        (
            V201,
            call_201.BootNotification(
                charging_station=datatypes_201.ChargingStationType(model="M", vendor_name="VendorX"),
                reason=enums_201.BootReasonEnumType.power_up,
            ),
        ),
        (
            V201,
            call_201.RequestStartTransaction(
                id_token=datatypes_201.IdTokenType(
                    id_token="04E91C5A123456", type=enums_201.IdTokenEnumType.iso14443
                ),
                remote_start_id=7,
                evse_id=1,
            ),
        ),
        (V201, call_201.RequestStopTransaction(transaction_id="f3b3c7e0-5f0b-4a7e-9f57-4c1d2e3f4a5b")),
    ],
    ids=lambda value: type(value).__name__ if dataclasses.is_dataclass(value) else str(value),
)
def test_calls_the_library_sends_are_valid(version: ProtocolVersion, request_: Any) -> None:
    raw = messages.Call("abc-1", type(request_).__name__, _library_payload(request_)).to_json()
    call = parse_frame(raw, version)
    assert isinstance(call, Call)
    validate_call(version, call)


@pytest.mark.parametrize(
    ("version", "action", "response"),
    [
        (
            V16,
            "BootNotification",
            result_16.BootNotification(
                current_time=AT, interval=300, status=enums_16.RegistrationStatus.accepted
            ),
        ),
        (V16, "Heartbeat", result_16.Heartbeat(current_time=AT)),
        (
            V16,
            "StartTransaction",
            result_16.StartTransaction(
                transaction_id=4711,
                id_tag_info=datatypes_16.IdTagInfo(status=enums_16.AuthorizationStatus.accepted),
            ),
        ),
        (V16, "MeterValues", result_16.MeterValues()),
        (V16, "StopTransaction", result_16.StopTransaction()),
        (
            V201,
            "BootNotification",
            result_201.BootNotification(
                current_time=AT, interval=300, status=enums_201.RegistrationStatusEnumType.accepted
            ),
        ),
        (V201, "TransactionEvent", result_201.TransactionEvent(total_cost=12.34)),
        (V201, "StatusNotification", result_201.StatusNotification()),
    ],
)
def test_responses_built_from_the_librarys_dataclasses_are_valid(
    version: ProtocolVersion, action: str, response: Any
) -> None:
    validate_response(version, action, _library_payload(response))


@pytest.mark.parametrize(
    ("version", "action", "payload", "code"),
    [
        (V16, "BootNotification", {"currentTime": AT, "interval": 300}, "OccurenceConstraintViolation"),
        (V201, "Heartbeat", {"currentTime": 1764331200}, "TypeConstraintViolation"),
        (V201, "RequestStartTransaction", {"status": "Maybe"}, "PropertyConstraintViolation"),
        (V16, "NoSuchAction", {}, "NotImplemented"),
    ],
)  # fmt: skip
def test_an_invalid_response_is_reported_but_never_answered(
    version: ProtocolVersion, action: str, payload: JsonObject, code: str
) -> None:
    with pytest.raises(FrameError) as caught:
        validate_response(version, action, payload, "abc-1")
    error = caught.value
    assert (error.error_code, error.message_id, error.message_type) == (
        code,
        "abc-1",
        MessageType.CALL_RESULT,
    )
    assert not error.answerable
