"""The CALLERROR codes each OCPP-J version defines, and which of them names each way a frame can be wrong.

The two versions spell some codes differently and split them differently, so code elsewhere names a `Fault`
(what is wrong) and `error_code` turns it into the code the peer's version expects.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from write_api.ocpp.versions import ProtocolVersion


class ErrorCode(enum.StrEnum):
    """Every CALLERROR code of OCPP-J 1.6 §4.2.3 Table 7 and OCPP 2.0.1 Part 4 §4.3 Table 8, spelled so."""

    # In both versions.
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"
    # 1.6 only. Both misspellings are the 1.6 specification's own, and 1.6 chargers compare them literally.
    FORMATION_VIOLATION = "FormationViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    # 2.0.1 only.
    FORMAT_VIOLATION = "FormatViolation"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"


class Fault(enum.Enum):
    """What is wrong with a frame, whatever the version."""

    INVALID_JSON = enum.auto()
    """Not UTF-8 JSON at all."""
    INVALID_RPC = enum.auto()
    """JSON, but not an OCPP-J frame: not an array, wrong length, unreadable message type or id."""
    UNKNOWN_MESSAGE_TYPE = enum.auto()
    """An integer message type other than 2, 3 and 4."""
    INVALID_PAYLOAD = enum.auto()
    """The payload is not an object, or has properties its schema does not define."""
    UNKNOWN_ACTION = enum.auto()
    """An action this version does not define."""
    UNSUPPORTED_ACTION = enum.auto()
    """An action this version defines but the receiver does not handle."""
    OCCURRENCE = enum.auto()
    """A required field is missing, or a list has too few or too many elements."""
    TYPE = enum.auto()
    """A field has the wrong JSON type."""
    PROPERTY = enum.auto()
    """A field has the right type but a value out of range: enum, length, minimum..."""


_COMMON = {
    # "NotImplemented: Requested Action is not known by receiver"; "NotSupported: Requested Action is
    # recognized but not supported by the receiver" (same words in both tables).
    Fault.UNKNOWN_ACTION: ErrorCode.NOT_IMPLEMENTED,
    Fault.UNSUPPORTED_ACTION: ErrorCode.NOT_SUPPORTED,
    Fault.TYPE: ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    Fault.PROPERTY: ErrorCode.PROPERTY_CONSTRAINT_VIOLATION,
}

_CODES: Mapping[ProtocolVersion, Mapping[Fault, ErrorCode]] = MappingProxyType(
    {
        # OCPP-J 1.6 §4.2.3 Table 7 has a single code for anything wrong with a frame's structure,
        # "FormationViolation: Payload for Action is syntactically incorrect or not conform the PDU structure
        # for Action", and no code for an unknown message type (§4.1.3 only says to ignore the payload).
        ProtocolVersion.OCPP16: MappingProxyType(
            {
                **_COMMON,
                Fault.INVALID_JSON: ErrorCode.FORMATION_VIOLATION,
                Fault.INVALID_RPC: ErrorCode.FORMATION_VIOLATION,
                Fault.UNKNOWN_MESSAGE_TYPE: ErrorCode.FORMATION_VIOLATION,
                Fault.INVALID_PAYLOAD: ErrorCode.FORMATION_VIOLATION,
                Fault.OCCURRENCE: ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
            }
        ),
        # OCPP 2.0.1 Part 4 §4.3 Table 8: "RpcFrameworkError: Content of the call is not a valid RPC Request,
        # for example: MessageId could not be read"; §4.4: an unknown message type SHALL be answered with
        # MessageTypeNotSupported.
        ProtocolVersion.OCPP201: MappingProxyType(
            {
                **_COMMON,
                Fault.INVALID_JSON: ErrorCode.FORMAT_VIOLATION,
                Fault.INVALID_RPC: ErrorCode.RPC_FRAMEWORK_ERROR,
                Fault.UNKNOWN_MESSAGE_TYPE: ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
                Fault.INVALID_PAYLOAD: ErrorCode.FORMAT_VIOLATION,
                Fault.OCCURRENCE: ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            }
        ),
    }
)

_VALID_CODES: Mapping[ProtocolVersion, frozenset[ErrorCode]] = MappingProxyType(
    {
        ProtocolVersion.OCPP16: frozenset(ErrorCode)
        - {
            ErrorCode.FORMAT_VIOLATION,
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
            ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
            ErrorCode.RPC_FRAMEWORK_ERROR,
        },
        ProtocolVersion.OCPP201: frozenset(ErrorCode)
        - {
            ErrorCode.FORMATION_VIOLATION,
            ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
        },
    }
)


def error_code(version: ProtocolVersion, fault: Fault) -> ErrorCode:
    """The code that names `fault` in `version`'s CALLERROR table."""
    return _CODES[version][fault]


def error_codes(version: ProtocolVersion) -> frozenset[ErrorCode]:
    """The codes a CALLERROR may carry in `version`."""
    return _VALID_CODES[version]
