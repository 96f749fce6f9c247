"""One simulated charger: connection with back-off, boot, statuses, heartbeats, sessions and the CSMS's calls.

A charger runs as two tasks. The connection task connects (randomised exponential back-off), then
reads frames: CALLRESULT / CALLERROR resolve the one CALL in flight, CALLs from the CSMS are answered on
the spot by the protocol's handlers. The driver task sends every CALL, one at a time as OCPP-J requires,
and advances the simulated sessions on its own timers, online or not: while offline their messages wait
in the offline queue and are replayed in order, with their original timestamps, after the reconnect.
The driver sleeps on one future that the connection task resolves ("pokes") when something changes:
an idle charger costs one timer and no polling.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import math
import random
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

import aiohttp
import orjson

from loadtests.simulator import frames
from loadtests.simulator.offline_queue import OfflineQueue, QueuedMessage
from loadtests.simulator.protocol import BootReason, CallError, Reading, Trigger
from loadtests.simulator.session import Session, StopCause

if TYPE_CHECKING:
    from loadtests.simulator.config import ChargerConfig
    from loadtests.simulator.frames import Payload
    from loadtests.simulator.protocol import Effect, OcppProtocol
    from loadtests.simulator.stats import Stats

_WS_TIMEOUT: Final = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)

# Outcomes of a CALL, as the driver sees them.
_RESULT: Final = frames.CALLRESULT
_ERROR: Final = frames.CALLERROR
_TIMEOUT: Final = -1
_LOST: Final = 0

#: After a CALL could not be written (the connection is going), the driver waits this long for the reader.
_LOST_SEND_PAUSE: Final = 0.1


class Registration(enum.Enum):
    """Where the charger stands with the CSMS since its last (re)boot."""

    NONE = "none"  # booted, BootNotification not yet answered
    PENDING = "Pending"
    REJECTED = "Rejected"
    ACCEPTED = "Accepted"


def basic_authorization(user: str, password: str) -> str:
    """The Authorization header of HTTP Basic auth (RFC 7617), which OCPP security profiles 1 and 2 use."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _expire(future: asyncio.Future[tuple[int, Any]]) -> None:
    if not future.done():
        future.set_result((_TIMEOUT, None))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Charger:
    """A charge point with `config.connectors` connectors, at most one session at a time."""

    __slots__ = (
        "_attempt",
        "_authorizing",
        "_boot_at",
        "_boot_reason",
        "_booted_once",
        "_charges",
        "_config",
        "_dirty",
        "_endpoint",
        "_heartbeat_at",
        "_hung_up",
        "_inoperative",
        "_last_meter_at",
        "_loop",
        "_next_start_at",
        "_next_uid",
        "_password",
        "_pending",
        "_pending_id",
        "_pending_inoperative",
        "_protocol",
        "_reboot_pending",
        "_rng",
        "_settings",
        "_stats",
        "_stopping",
        "_triggered",
        "_wake",
        "_ws",
        "heartbeat_interval",
        "id",
        "meter_interval",
        "outbox",
        "register_wh",
        "registration",
        "session",
    )

    def __init__(
        self,
        charger_id: str,
        *,
        config: ChargerConfig,
        protocol: OcppProtocol,
        stats: Stats,
        password: str | None = None,
        charges: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.id = charger_id
        self._config = config
        self._protocol = protocol
        self._stats = stats
        self._password = password
        #: Whether this charger runs sessions by itself (the fleet's charging share); all run remote ones.
        self._charges = charges
        self._rng = rng or random.Random()
        self.registration = Registration.NONE
        self.session: Session | None = None
        self.outbox = OfflineQueue(config.offline_queue_limit)
        self.heartbeat_interval = config.heartbeat or config.default_heartbeat
        self.meter_interval = config.meter_interval
        #: The energy meter's register in Wh; it only ever rises.
        self.register_wh = self._rng.randrange(1_000_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._wake: asyncio.Future[None] | None = None
        self._pending: asyncio.Future[tuple[int, Any]] | None = None
        self._pending_id = ""
        self._next_uid = 0
        self._attempt = 0
        #: Index into config.urls of the endpoint to connect to next.
        self._endpoint = 0
        #: The charger closed its connection itself (a reboot): it comes back to the same endpoint.
        self._hung_up = False
        self._stopping = False
        self._booted_once = False
        self._boot_reason = BootReason.POWER_UP
        self._boot_at = 0.0
        self._heartbeat_at = math.inf
        self._next_start_at = math.inf
        self._last_meter_at = 0.0
        self._authorizing = False
        self._reboot_pending = False
        self._triggered = Trigger.NONE
        # Per-connector bit masks (bit n for connector n): status to (re)send, out of service, going out of
        # service once the session on it ends.
        self._dirty = 0
        self._inoperative = 0
        self._pending_inoperative = 0
        self._settings: dict[str, str] | None = None

    # ------------------------------------------------------------------ state the protocols read and change

    @property
    def connectors(self) -> int:
        return self._config.connectors

    @property
    def config(self) -> ChargerConfig:
        return self._config

    @property
    def protocol(self) -> OcppProtocol:
        return self._protocol

    @property
    def charges(self) -> bool:
        """Whether this charger runs sessions by itself (it is in the fleet's charging share)."""
        return self._charges

    @property
    def online(self) -> bool:
        return self._ws is not None

    @property
    def rebooting(self) -> bool:
        return self._reboot_pending

    def setting(self, key: str) -> str | None:
        """A configuration value set by the CSMS that the simulation does not otherwise act upon."""
        return None if self._settings is None else self._settings.get(key)

    def set_setting(self, key: str, value: str) -> None:
        if self._settings is None:
            self._settings = {}
        self._settings[key] = value

    def has_connector(self, connector: int) -> bool:
        return 1 <= connector <= self._config.connectors

    def is_operative(self, connector: int) -> bool:
        return not self._inoperative & (1 << connector)

    def can_start(self, connector: int) -> bool:
        return (
            self.session is None
            and self.has_connector(connector)
            and self.is_operative(connector)
            and self.registration is Registration.ACCEPTED
            and not self._reboot_pending
        )

    def availability_change(self, connector: int, operative: bool) -> str:
        """The answer to ChangeAvailability for `connector` (0: whole charger), in both versions' words."""
        if connector != 0 and not self.has_connector(connector):
            return "Rejected"
        session = self.session
        if not operative and session is not None and connector in (0, session.connector):
            return "Scheduled"
        return "Accepted"

    def set_availability(self, connector: int, operative: bool) -> None:
        mask = self._all_connectors() if connector == 0 else 1 << connector
        if operative:
            self._inoperative &= ~mask
            self._pending_inoperative &= ~mask
        else:
            busy = 0 if self.session is None else 1 << self.session.connector
            self._inoperative |= mask & ~busy
            self._pending_inoperative |= mask & busy
        self._dirty |= mask
        self._poke()

    def mark_status(self, connector: int = 0) -> None:
        """Have the status of `connector` (0: every connector) sent again."""
        self._dirty |= self._all_connectors() if connector == 0 else 1 << connector
        self._poke()

    def trigger(self, what: Trigger, connector: int = 0) -> None:
        if what is Trigger.STATUS:
            self._dirty |= self._all_connectors() if connector == 0 else 1 << connector
        self._triggered |= what
        self._poke()

    def read_meter(self) -> Reading:
        """The register now (advanced by the power flowing since the last reading) and the power."""
        self._advance_meter(self._now())
        return self._reading()

    def start_session(
        self, connector: int, id_tag: str, id_type: str, remote_start_id: int | None = None
    ) -> Session | None:
        """Begin a transaction on `connector` and queue its start message; None when the connector is busy."""
        if self.session is not None or not self.has_connector(connector):
            return None
        now = self._now()
        self._last_meter_at = now
        session = Session(
            connector=connector,
            id_tag=id_tag,
            id_type=id_type,
            local_id=self._protocol.new_transaction_id(),
            meter_start=self.register_wh,
            next_sample_at=now + self.meter_interval,
            ends_at=now + self._config.session_duration,
            remote_start_id=remote_start_id,
        )
        self.session = session
        self._authorizing = False
        self._stats.sessions_started += 1
        offline = self._ws is None
        action, payload = self._protocol.session_started(session, self._reading(), offline)
        self._enqueue(action, payload, session, offline, droppable=False)
        self._dirty |= 1 << connector
        self._poke()
        return session

    def end_session(self, cause: StopCause, session: Session | None = None) -> bool:
        """Have the current session (or `session`, if still current) end now, for `cause`."""
        current = self.session
        if current is None or (session is not None and session is not current):
            return False
        current.cause = cause
        current.ends_at = self._now()
        self._poke()
        return True

    def reset(self, cause: StopCause | None) -> None:
        """Reboot: end the session for `cause` first, or (cause None) wait until it ends by itself."""
        self._reboot_pending = True
        if cause is not None:
            self.end_session(cause)
        self._poke()

    # ------------------------------------------------------------------ life cycle

    async def run(self, http: aiohttp.ClientSession) -> None:
        """Connect and simulate until stop() or cancellation; the caller owns `http`, shared by the fleet."""
        self._loop = asyncio.get_running_loop()
        connection = self._loop.create_task(self._connect_loop(http), name=f"charger {self.id} connection")
        try:
            await self._drive()
        finally:
            connection.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connection

    def stop(self) -> None:
        """Stop now: a CALL in flight is abandoned, and run() closes the connection and returns."""
        self._stopping = True
        pending = self._pending
        if pending is not None and not pending.done():
            pending.set_result((_LOST, None))
        self._poke()

    # ------------------------------------------------------------------ connection task

    def _backoff(self) -> float:
        cfg = self._config
        doublings = min(self._attempt - 1, cfg.reconnect_repeat)
        return float(cfg.reconnect_min * (1 << doublings) + self._rng.uniform(0.0, cfg.reconnect_range))

    async def _connect_loop(self, http: aiohttp.ClientSession) -> None:
        cfg = self._config
        protocol = self._protocol
        path = quote(self.id, safe="")
        urls = [f"{base.rstrip('/')}/{path}" for base in cfg.urls]
        headers = (
            None
            if self._password is None
            else {"Authorization": basic_authorization(self.id, self._password)}
        )
        stats = self._stats
        while not self._stopping:
            if self._attempt:
                await asyncio.sleep(self._backoff())
            url = urls[self._endpoint % len(urls)]
            try:
                ws = await http.ws_connect(
                    url,
                    protocols=(protocol.subprotocol,),
                    headers=headers,
                    heartbeat=cfg.ws_ping,
                    timeout=_WS_TIMEOUT,
                    compress=0,
                )
            except aiohttp.WSServerHandshakeError as exc:
                stats.connect_failures[f"HTTP {exc.status}"] += 1
                self._attempt += 1
                self._endpoint += 1
                continue
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                stats.connect_failures[type(exc).__name__] += 1
                self._attempt += 1
                self._endpoint += 1
                continue
            if ws.protocol != protocol.subprotocol:
                # OCPP-J: a server that does not agree on the subprotocol is not talking OCPP with us.
                stats.connect_failures["no subprotocol"] += 1
                await ws.close()
                self._attempt += 1
                self._endpoint += 1
                continue
            try:
                self._connected(ws, url)
                await self._read(ws)
            finally:
                self._disconnected()
                if not ws.closed:
                    await ws.close()
            self._attempt += 1
            if self._hung_up:
                self._hung_up = False
            else:  # closed by the CSMS ("going away") or lost: its node may be gone, try the next one
                self._endpoint += 1

    def _connected(self, ws: aiohttp.ClientWebSocketResponse, url: str) -> None:
        self._ws = ws
        self._stats.connects += 1
        self._stats.connected += 1
        if self.registration is Registration.ACCEPTED:
            if self._config.boot_on_reconnect:
                self._stats.accepted -= 1
                self.registration = Registration.NONE
                self._boot_at = 0.0
            else:
                # Not a reboot: no BootNotification (1.6 4.2), but tell the CSMS where every connector stands.
                self._dirty = self._all_connectors()
        self._observe("connected", "", url)
        self._poke()

    def _disconnected(self) -> None:
        self._ws = None
        self._stats.disconnects += 1
        self._stats.connected -= 1
        pending = self._pending
        if pending is not None and not pending.done():
            pending.set_result((_LOST, None))
        self._observe("disconnected", "", None)
        self._poke()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        stats = self._stats
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                if message.type is aiohttp.WSMsgType.ERROR:
                    break
                stats.errors["non-text frame"] += 1
                continue
            try:
                frame = orjson.loads(message.data)
                kind = frame[0]
            except (orjson.JSONDecodeError, TypeError, IndexError, KeyError):
                stats.errors["malformed frame"] += 1
                continue
            if kind == frames.CALL and len(frame) >= 4:
                if self._pending is not None and self._pending.done():
                    # The answer to our own CALL came just before: let the driver task take it in (say, the
                    # transactionId from StartTransaction.conf) before acting on the CSMS's request, as a
                    # charger handling its messages in order would.
                    await asyncio.sleep(0)
                await self._answer(ws, frame[1], frame[2], frame[3])
            elif kind in (frames.CALLRESULT, frames.CALLERROR) and len(frame) >= 3:
                pending = self._pending
                if pending is not None and frame[1] == self._pending_id and not pending.done():
                    pending.set_result((kind, frame[2] if kind == frames.CALLRESULT else frame[2:4]))
                elif not self._stopping:  # when stopping, the answer to the abandoned CALL may still come
                    stats.errors["unexpected response"] += 1
            else:
                stats.errors["malformed frame"] += 1

    async def _answer(
        self, ws: aiohttp.ClientWebSocketResponse, unique_id: Any, action: Any, payload: Any
    ) -> None:
        if self.registration is Registration.REJECTED:
            return  # OCPP 1.6 4.2: while Rejected the charge point does not answer the CSMS
        uid = str(unique_id)
        effect: Effect | None = None
        protocol = self._protocol
        try:
            if not isinstance(action, str) or not isinstance(payload, dict):
                raise CallError(protocol.format_violation, "action must be a string and payload an object")
            result, effect = protocol.handle(self, action, payload)
            data = frames.call_result(uid, result)
        except CallError as exc:
            self._stats.errors[f"answered CALLERROR {exc.code} ({action})"] += 1
            data = frames.call_error(uid, exc.code, exc.description)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._stats.errors[f"answered CALLERROR {protocol.format_violation} ({action})"] += 1
            data = frames.call_error(uid, protocol.format_violation, f"cannot read the payload: {exc!r}")
        self._stats.csms_calls[str(action)] += 1
        try:
            await ws.send_frame(data, aiohttp.WSMsgType.TEXT)
        except (aiohttp.ClientError, ConnectionError):
            return
        self._observe("csms_call", str(action), payload)
        if effect is not None:
            effect()
        self._poke()

    # ------------------------------------------------------------------ driver task

    def _now(self) -> float:
        loop = self._loop
        return time.monotonic() if loop is None else loop.time()

    def _poke(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _sleep_until(self, deadline: float) -> None:
        loop = self._loop
        assert loop is not None
        wake = self._wake = loop.create_future()
        timer = None if deadline == math.inf else loop.call_at(deadline, _wake, wake)
        try:
            await wake
        finally:
            if timer is not None:
                timer.cancel()
            self._wake = None

    async def _drive(self) -> None:
        loop = self._loop
        assert loop is not None
        while not self._stopping:
            now = loop.time()
            self.tick(now)
            ws = self._ws
            if ws is None:
                deadline = math.inf
            else:
                deadline = await self._step(ws, now)
                if deadline == 0.0:
                    continue  # sent something: look again before sleeping
            deadline = min(deadline, self._session_deadline())
            if deadline > loop.time():
                await self._sleep_until(deadline)

    def tick(self, now: float) -> None:
        """Advance the simulated session to `now`: start, sample, end; queue what each step says."""
        session = self.session
        if session is None:
            if self._wants_session() and now >= self._next_start_at:
                if self._ws is None:
                    # Offline: start on local authorisation (LocalAuthorizeOffline), as field chargers do.
                    self.start_session(1, self.id_tag, self._protocol.local_id_type)
                else:
                    self._authorizing = True
            return
        if now >= session.ends_at:
            self._finish(session, now)
        elif now >= session.next_sample_at:
            self._advance_meter(now)
            offline = self._ws is None
            action, payload = self._protocol.session_sampled(session, self._reading(), offline, False)
            self._enqueue(action, payload, session, offline, droppable=True)
            interval = self.meter_interval
            session.next_sample_at += interval
            if session.next_sample_at <= now:  # fell behind (a stalled loop): do not burst to catch up
                session.next_sample_at = now + interval

    @property
    def id_tag(self) -> str:
        return self._config.id_tag or self.id[-20:]

    def _session_deadline(self) -> float:
        session = self.session
        if session is not None:
            return min(session.next_sample_at, session.ends_at)
        return self._next_start_at if self._wants_session() else math.inf

    def _wants_session(self) -> bool:
        """Whether this charger of the charging share starts its next session when the time comes."""
        return (
            self.session is None
            and self._charges
            and self._booted_once
            and not self._authorizing
            and not self._reboot_pending
            and self.is_operative(1)
            and (self._ws is None or self.registration is Registration.ACCEPTED)
        )

    def _finish(self, session: Session, now: float) -> None:
        self._advance_meter(now)
        offline = self._ws is None
        action, payload = self._protocol.session_ended(session, self._reading(), offline)
        self._enqueue(action, payload, session, offline, droppable=False)
        self.session = None
        self._stats.sessions_ended += 1
        bit = 1 << session.connector
        if self._pending_inoperative & bit:
            self._pending_inoperative &= ~bit
            self._inoperative |= bit
        self._dirty |= bit
        self._next_start_at = now + self._config.idle_duration

    def _advance_meter(self, now: float) -> None:
        if self.session is not None:
            elapsed = now - self._last_meter_at
            if elapsed > 0:
                # At least one Wh per reading, so that consecutive readings of a session always rise.
                self.register_wh += max(1, round(self._config.power_w * elapsed / 3600.0))
        self._last_meter_at = now

    def _reading(self) -> Reading:
        power = 0
        if self.session is not None:
            power = round(self._config.power_w * self._rng.uniform(0.95, 1.0))
        return Reading(self.register_wh, power, frames.utc_timestamp(time.time()))

    def _enqueue(
        self, action: str, payload: Payload, session: Session | None, offline: bool, droppable: bool
    ) -> None:
        if self.outbox.push(QueuedMessage(action, payload, session, offline), droppable=droppable):
            if offline:
                self._stats.queued_offline += 1
            self._observe("queued", action, payload)
        else:
            self._stats.dropped += 1
            self._stats.errors[f"offline queue full: dropped {action}"] += 1

    def _all_connectors(self) -> int:
        return ((1 << (self._config.connectors + 1)) - 1) & ~1

    async def _step(self, ws: aiohttp.ClientWebSocketResponse, now: float) -> float:
        """Send the most urgent CALL that is due and return 0.0, or return when the next one will be due."""
        registration = self.registration
        triggered = self._triggered
        if registration is not Registration.ACCEPTED:
            if registration is Registration.REJECTED and now < self._boot_at:
                return self._boot_at  # OCPP 1.6 4.2: no message at all until the retry interval has passed
            if triggered & Trigger.BOOT or now >= self._boot_at:
                self._triggered &= ~Trigger.BOOT
                await self._boot(ws)
                return 0.0
            if registration is Registration.PENDING and triggered:
                # While Pending only what the CSMS triggers may be sent.
                await self._send_triggered(ws)
                return 0.0
            return self._boot_at
        if self._reboot_pending and self.session is None and not len(self.outbox):
            await self._reboot(ws)
            return 0.0
        if triggered:
            await self._send_triggered(ws)
            return 0.0
        if self._dirty:
            await self._send_status(ws)
            return 0.0
        if self._authorizing:
            await self._authorize(ws)
            return 0.0
        head = self.outbox.peek()
        next_due = math.inf
        if head is not None:
            if head.not_before <= now:
                await self._send_queued(ws, head)
                return 0.0
            next_due = head.not_before
        if now >= self._heartbeat_at:
            await self._heartbeat(ws)
            return 0.0
        return min(next_due, self._heartbeat_at)

    async def _call(
        self, ws: aiohttp.ClientWebSocketResponse, action: str, payload: Payload
    ) -> tuple[int, Any]:
        """Send one CALL and await its answer.

        Returns (_RESULT, payload), (_ERROR, [code, description]), (_TIMEOUT, None) or (_LOST, None).
        """
        loop = self._loop
        assert loop is not None
        stats = self._stats.action(action)
        self._next_uid += 1
        uid = self._pending_id = str(self._next_uid)
        future: asyncio.Future[tuple[int, Any]] = loop.create_future()
        self._pending = future
        # Latency on the performance counter: uvloop's loop.time() ticks in whole milliseconds.
        sent_at = time.perf_counter()
        timer = loop.call_later(self._config.response_timeout, _expire, future)
        stats.sent += 1
        self._observe("sent", action, payload)
        try:
            try:
                await ws.send_frame(frames.call(uid, action, payload), aiohttp.WSMsgType.TEXT)
            except (aiohttp.ClientError, ConnectionError):
                future.set_result((_LOST, None))
                # The connection is going and its reader has not seen it yet. Coming straight back (the
                # failed write never yields) would have the driver send again at once, forever, and starve
                # every other charger on the loop, their pongs included: wait for the reader a moment.
                await asyncio.sleep(_LOST_SEND_PAUSE)
            outcome, body = await future
        finally:
            timer.cancel()
            self._pending = None
        if outcome == _RESULT:
            stats.results += 1
            stats.latency.record(time.perf_counter() - sent_at)
            self._attempt = 0
            if not isinstance(body, dict):
                self._stats.errors[f"malformed CALLRESULT ({action})"] += 1
                return _ERROR, ["FormatViolation", "payload is not an object"]
            self._observe("result", action, body)
        elif outcome == _ERROR:
            stats.errors += 1
            self._stats.errors[f"CALLERROR {body[0] if body else '?'} ({action})"] += 1
            self._observe("error", action, body)
        elif outcome == _TIMEOUT:
            stats.timeouts += 1
            self._stats.errors[f"timeout ({action})"] += 1
            self._observe("error", action, None)
        else:
            stats.lost += 1
        return outcome, body

    async def _boot(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        cfg = self._config
        payload = self._protocol.boot_notification(self, self._boot_reason)
        outcome, result = await self._call(ws, "BootNotification", payload)
        now = self._now()
        if outcome == _LOST:
            return
        if outcome != _RESULT:
            self._boot_at = now + cfg.boot_retry
            return
        status = result.get("status")
        interval = result.get("interval")
        interval = float(interval) if isinstance(interval, int | float) and interval > 0 else 0.0
        self._stats.boots[str(status)] += 1
        if status == Registration.ACCEPTED.value:
            if self.registration is not Registration.ACCEPTED:
                self._stats.accepted += 1
            self.registration = Registration.ACCEPTED
            self.heartbeat_interval = cfg.heartbeat or interval or cfg.default_heartbeat
            self._heartbeat_at = now + self.heartbeat_interval
            self._dirty = self._all_connectors()
            self._boot_reason = BootReason.POWER_UP
            if not self._booted_once:
                self._booted_once = True
                # Spread the fleet's first sessions over one idle period rather than start them all at once.
                self._next_start_at = now + self._rng.uniform(0.0, cfg.idle_duration)
        elif self.registration is not Registration.ACCEPTED:
            # Pending or Rejected: the interval is the least wait before the next BootNotification (1.6 4.2).
            self.registration = Registration.PENDING if status == "Pending" else Registration.REJECTED
            self._boot_at = now + (interval or cfg.boot_retry)

    async def _heartbeat(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        outcome, _ = await self._call(ws, "Heartbeat", self._protocol.heartbeat())
        if outcome != _LOST:
            self._heartbeat_at = self._now() + self.heartbeat_interval

    async def _send_status(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        dirty = self._dirty
        connector = (dirty & -dirty).bit_length() - 1  # the lowest connector whose status is to be sent
        self._dirty = dirty & ~(1 << connector)
        payload = self._protocol.status_notification(self, connector, frames.utc_timestamp(time.time()))
        outcome, _ = await self._call(ws, "StatusNotification", payload)
        if outcome == _LOST:
            self._dirty |= 1 << connector

    async def _send_triggered(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        triggered = self._triggered
        if triggered & Trigger.BOOT:
            self._triggered &= ~Trigger.BOOT
            self._boot_reason = BootReason.TRIGGERED
            await self._boot(ws)
        elif triggered & Trigger.HEARTBEAT:
            self._triggered &= ~Trigger.HEARTBEAT
            await self._heartbeat(ws)
        elif triggered & Trigger.STATUS:
            if self._dirty:
                await self._send_status(ws)
            if not self._dirty:
                self._triggered &= ~Trigger.STATUS
        elif triggered & Trigger.METER_VALUES:
            self._triggered &= ~Trigger.METER_VALUES
            connector = self.session.connector if self.session is not None else 1
            action, payload = self._protocol.meter_values(self, connector, self.read_meter())
            await self._call(ws, action, payload)
        elif triggered & Trigger.TRANSACTION_EVENT:
            self._triggered &= ~Trigger.TRANSACTION_EVENT
            session = self.session
            if session is not None:
                action, payload = self._protocol.session_sampled(session, self.read_meter(), False, True)
                self._enqueue(action, payload, session, False, droppable=False)

    async def _authorize(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        outcome, result = await self._call(ws, "Authorize", self._protocol.authorize(self.id_tag))
        self._authorizing = False
        now = self._now()
        if outcome == _RESULT and self._protocol.authorized(result) and self.can_start(1):
            self.start_session(1, self.id_tag, self._protocol.local_id_type)
        elif outcome == _LOST:
            self._next_start_at = now  # try again, offline if need be
        else:
            self._next_start_at = now + self._config.idle_duration

    async def _send_queued(self, ws: aiohttp.ClientWebSocketResponse, message: QueuedMessage) -> None:
        protocol = self._protocol
        payload = protocol.prepare(message)
        if payload is None:
            self.outbox.pop()
            self._stats.dropped += 1
            self._stats.errors[f"unsendable {message.action} dropped"] += 1
            return
        outcome, result = await self._call(ws, message.action, payload)
        if outcome == _RESULT:
            self.outbox.pop()
            if message.offline:
                self._stats.replayed += 1
            protocol.on_result(self, message, result)
        elif outcome != _LOST:  # a failure to process it: retry a few times, then skip it (1.6 3.7.1)
            cfg = self._config
            if self.outbox.failed(self._now(), cfg.tx_attempts, cfg.tx_retry_interval):
                self._stats.dropped += 1
                self._stats.errors[f"gave up on {message.action}"] += 1

    async def _reboot(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Simulate the reboot a Reset asked for: drop the connection, come back and boot again."""
        self._reboot_pending = False
        self._stats.accepted -= 1
        self.registration = Registration.NONE
        self._boot_reason = BootReason.REMOTE_RESET
        self._boot_at = 0.0
        self._heartbeat_at = math.inf
        self._triggered = Trigger.NONE
        self._attempt = 0
        self._hung_up = True
        await ws.close()

    def _observe(self, event: str, action: str, payload: Any) -> None:
        observer = self._config.observer
        if observer is not None:
            observer(self.id, event, action, payload)

    def __repr__(self) -> str:
        return f"<Charger {self.id} {self._protocol.version} {self.registration.value} online={self.online}>"
