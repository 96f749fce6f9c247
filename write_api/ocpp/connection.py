"""One charger's WebSocket: frames in, handler results out, and the CSMS's own calls to the charger.

The charger's CALLs are handled one at a time in arrival order (OCPP-J allows one outstanding CALL per side),
each answered only after its handler returned, which is after its events were committed. Anything wrong with a
frame is answered with the CALLERROR the spec prescribes and the connection stays open.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WebSocketError, WSCloseCode, WSMsgType, web

from csms.domain import DomainError
from csms.observability.logging import bind_log_fields, log_context
from write_api.ocpp.errors import ErrorCode, Fault, error_code
from write_api.ocpp.frames import (
    Call,
    CallError,
    CallResult,
    FrameError,
    call_error_for,
    parse_frame,
    serialize,
)
from write_api.ocpp.handlers.context import ChargerContext, Handlers
from write_api.ocpp.metrics import (
    MALFORMED,
    RECEIVED,
    SENT,
    UNKNOWN_ACTION,
    record_call,
    record_throttled,
)
from write_api.ocpp.outcome import CallOutcome, CallStatus
from write_api.ocpp.validation import validate_call
from write_api.ocpp.versions import ProtocolVersion

_log = logging.getLogger(__name__)

_ABNORMAL_CLOSURE = 1006  # RFC 6455 §7.4.1: closed without a close frame (aiohttp: ping not answered)

FrameObserver = Callable[[str, str], None]
"""Called with (direction "in" | "out", raw frame) for every frame: the message log hook."""


class RateLimiter:
    """A token bucket: a charger sending faster than `rate` messages per second is slowed down.

    Throttling happens by not reading its socket for a while, so only that charger waits (TCP back-pressure),
    never the node.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic()

    def delay(self) -> float:
        """Take one token; return how long to wait before the message may be handled (0 if none)."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


@dataclass(slots=True)
class _PendingCall:
    message_id: str
    action: str
    future: asyncio.Future[CallOutcome]


class ChargerConnection:
    """Serves one accepted, authenticated WebSocket until it closes."""

    def __init__(
        self,
        websocket: web.WebSocketResponse,
        context: ChargerContext,
        version: ProtocolVersion,
        handlers: Handlers,
        *,
        on_frame: FrameObserver,
        on_seen: Callable[[], None],
        rate_limiter: RateLimiter,
    ) -> None:
        self.websocket = websocket
        self.context = context
        self.version = version
        self._handlers = handlers
        self._on_frame = on_frame
        self._on_seen = on_seen
        self._rate_limiter = rate_limiter
        self._call_lock = asyncio.Lock()
        # Held while one of the charger's CALLs is handled and answered. The CSMS's own CALLs wait for it, so
        # a command prompted by a fact (a RemoteStop for a transaction just started) never overtakes the
        # CALLRESULT that tells the charger about that fact (here: its transactionId).
        self._answering = asyncio.Lock()
        self._pending: _PendingCall | None = None
        self._ids = itertools.count(1)
        self.close_reason = "closed by the charger"
        # Who ended the connection, for metrics: charger, replaced, shutdown, timeout, error, too_large, lost.
        self.close_cause = "charger"
        self._throttled = False  # said once per connection in the log, counted every time

    async def serve(self) -> None:
        """Read and answer frames until the socket closes."""
        async for message in self.websocket:
            if message.type is WSMsgType.TEXT:
                raw: str = message.data
            elif message.type is WSMsgType.BINARY:
                # OCPP-J uses text frames; a binary one is tried as UTF-8 JSON and answered like any other.
                raw = message.data.decode("utf-8", errors="replace")
            else:
                if message.type is WSMsgType.ERROR:
                    self._protocol_error(message.data)
                break
            delay = self._rate_limiter.delay()
            if delay > 0:
                self._throttle()
                await asyncio.sleep(delay)
            await self._receive(raw)
        if self.websocket.close_code is not None and self.close_reason == "closed by the charger":
            self.close_reason = f"closed with code {self.websocket.close_code}"
            if self.websocket.close_code == _ABNORMAL_CLOSURE:  # e.g. no pong within the ping interval
                self.close_cause = "timeout"
        self._fail_pending(CallOutcome.offline())

    def _protocol_error(self, error: object) -> None:
        # aiohttp has already closed the socket, with the error's code when the reader refused a frame (one
        # over max_msg_size: WebSocketError 1009, which `exception()` does not keep).
        self.close_reason = f"protocol error: {error}"
        too_large = isinstance(error, WebSocketError) and error.code == WSCloseCode.MESSAGE_TOO_BIG
        self.close_cause = "too_large" if too_large else "error"

    def _throttle(self) -> None:
        record_throttled(self.version)
        if not self._throttled:
            self._throttled = True
            _log.warning("charger throttled: it sends faster than its rate limit")

    async def _receive(self, raw: str) -> None:
        self._on_frame("in", raw)
        self._on_seen()
        try:
            frame = parse_frame(raw, self.version)
        except FrameError as error:
            if error.answerable:
                record_call(self.version, MALFORMED, RECEIVED, "error", None)
                await self._send(call_error_for(error))
            else:
                # A broken CALLRESULT / CALLERROR is never answered (OCPP-J: only CALLs get replies).
                _log.warning(
                    "unreadable reply from charger",
                    extra={"correlation_id": error.message_id, "error": str(error)},
                )
                if error.message_id and self._pending and self._pending.message_id == error.message_id:
                    self._settle(CallOutcome.call_error(str(error.error_code), error.description))
            return
        if isinstance(frame, Call):
            async with self._answering:
                await self._answer(frame)
        elif self._pending is not None and frame.message_id == self._pending.message_id:
            if isinstance(frame, CallResult):
                self._settle(CallOutcome.result(frame.payload))
            else:
                self._settle(CallOutcome.call_error(frame.error_code, frame.error_description))
        else:
            _log.info("reply to no pending call ignored", extra={"correlation_id": frame.message_id})

    async def _answer(self, call: Call) -> None:
        # Everything logged while the CALL is handled is about this message (the charger is bound for the
        # whole connection by the gateway); handlers add the session once they know it.
        with log_context(correlation_id=call.message_id):
            await self._handle(call)

    async def _handle(self, call: Call) -> None:
        began = time.perf_counter()
        handler = self._handlers.get(call.action)
        action = call.action if handler is not None else UNKNOWN_ACTION
        try:
            validate_call(self.version, call)
            if handler is None:
                raise FrameError(
                    error_code(self.version, Fault.UNSUPPORTED_ACTION),
                    f"{call.action} is not supported by this CSMS",
                    call.message_id,
                )
            payload = await handler(self.context, call.payload)
        except FrameError as error:
            answer: CallResult | CallError = call_error_for(error)
        except DomainError as error:
            answer = CallError(call.message_id, ErrorCode.GENERIC_ERROR, str(error)[:255], {})
        except Exception:
            # Not acknowledged, so the charger retries later: nothing it sent is lost.
            _log.exception("handler failed", extra={"action": call.action})
            answer = CallError(call.message_id, ErrorCode.INTERNAL_ERROR, "internal error", {})
        else:
            answer = CallResult(call.message_id, payload)
        await self._send(answer)
        result = "result" if isinstance(answer, CallResult) else "error"
        record_call(self.version, action, RECEIVED, result, time.perf_counter() - began)

    async def call(self, action: str, payload: dict[str, Any], within: float) -> CallOutcome:
        """Send a CALL to the charger and wait for its answer; one at a time per charger."""
        # The caller's task (a command from the API) is not the connection's: bind the charger here too.
        with log_context(charger_id=self.context.charge_point_id):
            return await self._call(action, payload, within)

    async def _call(self, action: str, payload: dict[str, Any], within: float) -> CallOutcome:
        if not self.context.booted:
            # No CSMS-initiated message before the charger's BootNotification was accepted (1.6 §4.2,
            # 2.0.1 B01.FR.xx): it would be rejected, or worse, acted on half-configured.
            return CallOutcome.not_booted()
        deadline = asyncio.get_running_loop().time() + within
        sent: float | None = None  # when the CALL went out: the latency is the charger's, not the queue's
        try:
            async with asyncio.timeout_at(deadline):
                async with self._call_lock:
                    if self.websocket.closed:
                        outcome = CallOutcome.offline()
                    else:
                        message_id = f"c{next(self._ids)}"
                        bind_log_fields(correlation_id=message_id)  # until `call` returns
                        future: asyncio.Future[CallOutcome] = asyncio.get_running_loop().create_future()
                        self._pending = _PendingCall(message_id, action, future)
                        try:
                            async with self._answering:
                                sent = time.perf_counter()
                                await self._send(Call(message_id, action, payload))
                            outcome = await future
                        finally:
                            self._pending = None
        except TimeoutError:
            outcome = CallOutcome.timed_out()
        answered = sent is not None and outcome.status in (CallStatus.RESULT, CallStatus.CALL_ERROR)
        seconds = time.perf_counter() - sent if answered and sent is not None else None
        record_call(self.version, action, SENT, outcome.status.value, seconds)
        if outcome.status in (CallStatus.TIMED_OUT, CallStatus.CALL_ERROR):
            _log.info(
                "call to charger failed",
                extra={"action": action, "outcome": outcome.status.value, "error_code": outcome.error_code},
            )
        return outcome

    def _settle(self, outcome: CallOutcome) -> None:
        if self._pending is not None and not self._pending.future.done():
            self._pending.future.set_result(outcome)

    def _fail_pending(self, outcome: CallOutcome) -> None:
        self._settle(outcome)

    async def _send(self, frame: Call | CallResult | CallError) -> None:
        raw = serialize(frame).decode()
        self._on_frame("out", raw)
        try:
            await self.websocket.send_str(raw)
        except ConnectionError:
            self.close_reason = "connection lost while sending"
            self.close_cause = "lost"

    async def close(self, code: int, reason: str, cause: str) -> None:
        self.close_reason = reason
        self.close_cause = cause
        await self.websocket.close(code=code, message=reason.encode()[:120])
