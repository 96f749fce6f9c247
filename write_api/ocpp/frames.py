"""OCPP-J RPC frames (CALL, CALLRESULT, CALLERROR): read off the wire, checked for shape, and written back.

Only the envelope is checked here; payloads are checked against their action's schema in `validation`.
Everything wrong with a frame surfaces as one exception, `FrameError`, that already knows the CALLERROR to
answer with, or that there must be no answer at all.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeAlias, assert_never

import orjson

from write_api.ocpp.errors import ErrorCode, Fault, error_code
from write_api.ocpp.versions import ProtocolVersion

JsonObject: TypeAlias = dict[str, Any]

UNKNOWN_MESSAGE_ID: Final = "-1"
"""The id a CALLERROR carries when the offending frame's id cannot be read (OCPP 2.0.1 Part 4 §4.2.3)."""

MAX_MESSAGE_ID_LENGTH: Final = 36
"""OCPP-J 1.6 §4.1.4 Table 3 and OCPP 2.0.1 Part 4 §4.1.4 Table 4: "to allow for GUIDs"."""

MAX_ERROR_DESCRIPTION_LENGTH: Final = 255
"""OCPP 2.0.1 Part 4 §4.2.3 Table 7: ErrorDescription is string[255]; 1.6 sets no limit, so we use it too."""


class MessageType(enum.IntEnum):
    """OCPP-J 1.6 §4.1.3 Table 2 and OCPP 2.0.1 Part 4 §4.1.3 Table 3."""

    CALL = 2
    CALL_RESULT = 3
    CALL_ERROR = 4

    @property
    def label(self) -> str:
        """The spec's name for it: CALL, CALLRESULT, CALLERROR."""
        return self.name.replace("_", "")


@dataclass(frozen=True, slots=True)
class Call:
    """A request: `[2, "<MessageId>", "<Action>", {<Payload>}]`. Treat the payload as read-only."""

    message_type: ClassVar[MessageType] = MessageType.CALL
    message_id: str
    action: str
    payload: JsonObject


@dataclass(frozen=True, slots=True)
class CallResult:
    """A response: `[3, "<MessageId>", {<Payload>}]`. Its action is that of the CALL with the same id."""

    message_type: ClassVar[MessageType] = MessageType.CALL_RESULT
    message_id: str
    payload: JsonObject


@dataclass(frozen=True, slots=True)
class CallError:
    """An error response: `[4, "<MessageId>", "<errorCode>", "<errorDescription>", {<errorDetails>}]`.

    `error_code` is a plain string when read from a peer, which may send codes outside the tables.
    """

    message_type: ClassVar[MessageType] = MessageType.CALL_ERROR
    message_id: str
    error_code: str
    error_description: str
    error_details: JsonObject


Frame: TypeAlias = Call | CallResult | CallError


class FrameError(Exception):
    """A frame, or a CALL's payload, that the spec says is wrong, with the CALLERROR code for it.

    `message_id` is the id to answer with: the frame's own when it could be read, `"-1"` otherwise.
    `message_type` is the frame's type when it could be read, None otherwise.
    """

    def __init__(
        self,
        error_code: ErrorCode,
        description: str,
        message_id: str = UNKNOWN_MESSAGE_ID,
        message_type: MessageType | None = None,
        details: JsonObject | None = None,
    ) -> None:
        super().__init__(error_code, description, message_id)
        self.error_code = error_code
        self.description = description
        self.message_id = message_id
        self.message_type = message_type
        self.details: JsonObject = {} if details is None else details

    @property
    def answerable(self) -> bool:
        """Whether the peer gets a CALLERROR for this.

        Never for a broken CALLRESULT or CALLERROR: a CALLERROR answers a received call (OCPP-J 1.6
        §4.2.3, OCPP 2.0.1 Part 4 §4.2.3), and answering an answer can make two peers trade errors forever.
        The gateway only logs those (and, when `message_id` is not "-1", may fail the pending call it
        answers). A frame whose type could not be read is answered, as OCPP 2.0.1 Part 4 §4.2.3 ("-1") and
        §4.4 require.
        """
        return (
            self.message_type is not MessageType.CALL_RESULT
            and self.message_type is not MessageType.CALL_ERROR
        )

    def __str__(self) -> str:
        return f"{self.error_code} (message id {self.message_id!r}): {self.description}"


def parse_frame(raw: str | bytes, version: ProtocolVersion) -> Frame:
    """The frame in `raw`, its envelope checked; raises `FrameError` with `version`'s code if it is wrong.

    A `null` payload (or error details) is read as `{}`: both specs allow it (OCPP-J 1.6 §4.2.1, OCPP 2.0.1
    Part 4 §4.1.5). The action is not checked against the version here: `validation.validate_call` does that.
    """
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        # The description is orjson's, which names a position but never echoes the input: a CALLERROR must not
        # carry the invalid JSON itself (OCPP 2.0.1 Part 4 §4.2.3).
        raise FrameError(error_code(version, Fault.INVALID_JSON), f"Not valid UTF-8 JSON: {error}") from None
    if type(frame) is not list or not frame:
        raise FrameError(
            error_code(version, Fault.INVALID_RPC), "Not a JSON array of the form [MessageTypeId, ...]"
        )

    message_id = frame[1] if len(frame) > 1 else None
    if type(message_id) is not str or len(message_id) > MAX_MESSAGE_ID_LENGTH:
        # An id we cannot echo verbatim is as good as unreadable: an over-long one would make our CALLERROR
        # invalid in turn.
        message_id = None
    reply_id = UNKNOWN_MESSAGE_ID if message_id is None else message_id

    type_id = frame[0]
    if type(type_id) is not int:  # `type() is`, not isinstance: true and 2.0 are not message types
        raise FrameError(error_code(version, Fault.INVALID_RPC), "MessageTypeId is not an integer", reply_id)
    if type_id == MessageType.CALL:
        message_type = MessageType.CALL
    elif type_id == MessageType.CALL_RESULT:
        message_type = MessageType.CALL_RESULT
    elif type_id == MessageType.CALL_ERROR:
        message_type = MessageType.CALL_ERROR
    else:
        raise FrameError(
            error_code(version, Fault.UNKNOWN_MESSAGE_TYPE),
            f"MessageTypeId {type_id} is not supported",
            reply_id,
        )

    if message_id is None:
        raise FrameError(
            error_code(version, Fault.INVALID_RPC),
            f"MessageId is not a string of at most {MAX_MESSAGE_ID_LENGTH} characters",
            UNKNOWN_MESSAGE_ID,
            message_type,
        )
    if message_type is MessageType.CALL:
        _expect_length(frame, 4, version, message_id, message_type)
        action = frame[2]
        if type(action) is not str:
            raise FrameError(
                error_code(version, Fault.INVALID_RPC), "Action is not a string", message_id, message_type
            )
        return Call(message_id, action, _object(frame[3], "Payload", version, message_id, message_type))
    if message_type is MessageType.CALL_RESULT:
        _expect_length(frame, 3, version, message_id, message_type)
        return CallResult(message_id, _object(frame[2], "Payload", version, message_id, message_type))
    _expect_length(frame, 5, version, message_id, message_type)
    code, description = frame[2], frame[3]
    if type(code) is not str or type(description) is not str:
        raise FrameError(
            error_code(version, Fault.INVALID_RPC),
            "ErrorCode and ErrorDescription are not strings",
            message_id,
            message_type,
        )
    return CallError(
        message_id, code, description, _object(frame[4], "ErrorDetails", version, message_id, message_type)
    )


def _expect_length(
    frame: list[Any], length: int, version: ProtocolVersion, message_id: str, message_type: MessageType
) -> None:
    if len(frame) != length:
        raise FrameError(
            error_code(version, Fault.INVALID_RPC),
            f"A {message_type.label} has {length} elements, not {len(frame)}",
            message_id,
            message_type,
        )


def _object(
    value: Any, name: str, version: ProtocolVersion, message_id: str, message_type: MessageType
) -> JsonObject:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    raise FrameError(
        error_code(version, Fault.INVALID_PAYLOAD), f"{name} is not a JSON object", message_id, message_type
    )


def serialize(frame: Frame) -> bytes:
    """The frame as compact UTF-8 JSON, ready for a WebSocket text message."""
    if isinstance(frame, Call):
        return orjson.dumps([MessageType.CALL.value, frame.message_id, frame.action, frame.payload])
    if isinstance(frame, CallResult):
        return orjson.dumps([MessageType.CALL_RESULT.value, frame.message_id, frame.payload])
    if isinstance(frame, CallError):
        return orjson.dumps(
            [
                MessageType.CALL_ERROR.value,
                frame.message_id,
                frame.error_code,
                frame.error_description,
                frame.error_details,
            ]
        )
    assert_never(frame)


def call_error_for(error: FrameError) -> CallError:
    """The CALLERROR that answers `error` (check `error.answerable` before sending it)."""
    return CallError(
        error.message_id, error.error_code, error.description[:MAX_ERROR_DESCRIPTION_LENGTH], error.details
    )
