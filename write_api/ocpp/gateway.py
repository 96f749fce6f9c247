"""The OCPP gateway: accepts chargers (authenticated before the WebSocket upgrade) and owns their connections.

Security profiles 1 and 2 (OCPP 1.6 security whitepaper §A00 / 2.0.1 A00): HTTP Basic auth with the charge
point id as user name, checked before the upgrade; an unknown id gets 404 (OCPP-J 1.6 §3.2), bad credentials
401. TLS (profile 2) is the server's concern (`CSMS_OCPP_TLS_CERT` / `_KEY`). A second connection for the same
charger replaces the first only once it has authenticated.

Drain (`close_all`, on SIGTERM once the listener is closed): no new charger is let in, each connected one is
closed with 1001 "going away" so it reconnects to another node at once, but never between a CALL and its
answer: a charger whose message is being handled gets its CALLRESULT first, so what it was told is stored is
stored, and what it was not told it sends again elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from csms.credentials import verify_charger_password
from csms.domain import InvalidValue, OcppVersion, charger_id_for
from csms.observability.logging import log_context
from write_api.charger_reports import ChargerReports
from write_api.ocpp.admission import BootAdmission
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.connection import ChargerConnection, RateLimiter
from write_api.ocpp.handlers import v16, v201
from write_api.ocpp.handlers.context import ChargerContext, Handler, Handlers, Payload
from write_api.ocpp.metrics import record_connected, record_disconnected, record_refused
from write_api.ocpp.outcome import CallOutcome
from write_api.ocpp.presence import Presence
from write_api.ocpp.versions import ProtocolVersion, choose_version

_log = logging.getLogger(__name__)

_HANDLERS: dict[ProtocolVersion, Handlers] = {
    ProtocolVersion.OCPP16: v16.HANDLERS,
    ProtocolVersion.OCPP201: v201.HANDLERS,
}
_DOMAIN_VERSION = {ProtocolVersion.OCPP16: OcppVersion.OCPP16, ProtocolVersion.OCPP201: OcppVersion.OCPP201}

# WebSocket close codes (RFC 6455 §7.4.1).
_GOING_AWAY = 1001
_PROTOCOL_ERROR = 1002
# Private-use code (RFC 6455 §7.4.2): this connection was replaced by a newer one for the same charger.
_REPLACED = 4000


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    heartbeat_interval_seconds: int = 300
    ping_interval_seconds: float = 60.0
    max_frame_bytes: int = 131_072
    rate_limit_per_second: float = 20.0
    rate_limit_burst: int = 100
    boots_per_second: float = 500.0
    boot_burst: int = 1000


FrameLog = Callable[[str, str, str], None]
"""(charge point id, direction, raw frame): where every frame in both directions is recorded."""


class Gateway:
    """Owns this process's charger connections and routes CSMS-initiated calls to them."""

    def __init__(
        self,
        reports: ChargerReports,
        config: GatewayConfig,
        clock: Callable[[], datetime],
        frame_log: FrameLog | None = None,
        presence: Presence | None = None,
    ) -> None:
        self._reports = reports
        self._config = config
        self._clock = clock
        self._frame_log = frame_log or (lambda _cp, _direction, _raw: None)
        self._presence = presence
        self.admission = BootAdmission(config.boots_per_second, config.boot_burst)
        self.router: CommandRouter | None = (
            None  # set by the runtime once the router (which calls back) exists
        )
        self.connections: dict[str, ChargerConnection] = {}
        self.connected_event = asyncio.Event()  # set whenever a charger finishes connecting (for tests)
        self._handlers_running = 0
        self._cleanups: set[asyncio.Future[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Set by `close_all`: from then on no charger is let in.
        self._draining = False
        # The CALL each connection is handling, keyed by id() of its context (one per connection, unhashable),
        # resolved once the handler returned; the connection then writes the answer before it yields, so a
        # drain that waits for this future sends its close frame after the CALLRESULT.
        self._answering: dict[int, asyncio.Future[None]] = {}
        self._handlers = {
            version: {action: self._tracked(handler) for action, handler in handlers.items()}
            for version, handlers in _HANDLERS.items()
        }

    async def endpoint(self, request: web.Request) -> web.StreamResponse:
        """`GET /ocpp/{charge_point_id}`: authenticate, negotiate the subprotocol, then serve the socket."""
        charge_point_id = request.match_info["charge_point_id"]
        if self._draining:  # accepted just before the listener closed: try another node
            record_refused("draining")
            return _problem(503, "this node is shutting down", headers={"Retry-After": "1"})
        try:
            charger_id = charger_id_for(charge_point_id)
        except InvalidValue:
            record_refused("unknown_charger")
            return _problem(404, f"unknown charge point {charge_point_id!r}")
        charger = await self._reports.charger(charger_id)
        if charger is None or charger.decommissioned:
            record_refused("unknown_charger")
            return _problem(404, f"unknown charge point {charge_point_id!r}")
        if not _authenticated(request, charge_point_id, charger.password_hash):
            record_refused("unauthenticated")
            return _problem(
                401,
                "missing or wrong credentials: use HTTP Basic auth with the charge point id as user name",
                headers={"WWW-Authenticate": 'Basic realm="OCPP", charset="UTF-8"'},
            )

        offered = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        version = choose_version(offered)
        websocket = web.WebSocketResponse(
            protocols=(version.value,) if version else (),
            heartbeat=self._config.ping_interval_seconds,
            max_msg_size=self._config.max_frame_bytes,
            compress=False,
        )
        try:
            await websocket.prepare(request)
        except ConnectionError:
            # The charger hung up while it was being checked (a slow upgrade on a busy node): nobody is left
            # to answer. aiohttp's own answer to this response fails quietly (it is not an error of ours).
            record_refused("gone")
            return _problem(400, "the charger closed the connection during the upgrade")
        if version is None:
            record_refused("no_subprotocol")
            # OCPP-J 1.6 §3.2 / 2.0.1 Part 4 §3.2: complete the handshake without a subprotocol, then close.
            await websocket.close(code=_PROTOCOL_ERROR, message=b"no supported OCPP subprotocol offered")
            return websocket
        if self._draining:
            # The drain began during the upgrade. Checked here, and the connection registered, with no await
            # in between, so a socket is either among those `close_all` closes or never served.
            record_refused("draining")
            await websocket.close(code=_GOING_AWAY, message=b"server shutting down")
            return websocket

        self._handlers_running += 1
        self._idle.clear()
        try:
            await self._serve(websocket, charge_point_id, charger_id, version, charger.boot is not None)
        finally:
            _release_connection(request, websocket)
            self._handlers_running -= 1
            if self._handlers_running == 0:
                self._idle.set()
        return websocket

    async def _serve(
        self,
        websocket: web.WebSocketResponse,
        charge_point_id: str,
        charger_id: uuid.UUID,
        version: ProtocolVersion,
        booted_before: bool,
    ) -> None:
        # Every line logged while the charger is connected is about it, its disconnect's cleanup included
        # (a task started inside inherits the binding).
        with log_context(charger_id=charge_point_id):
            await self._serve_connection(websocket, charge_point_id, charger_id, version, booted_before)

    async def _serve_connection(
        self,
        websocket: web.WebSocketResponse,
        charge_point_id: str,
        charger_id: uuid.UUID,
        version: ProtocolVersion,
        booted_before: bool,
    ) -> None:
        connection_id = uuid.uuid4()
        context = ChargerContext(
            charge_point_id=charge_point_id,
            charger_id=charger_id,
            reports=self._reports,
            clock=self._clock,
            heartbeat_interval=self._config.heartbeat_interval_seconds,
            admission=self.admission,
            # A charger reconnecting after a network outage does not boot again; one that never booted must.
            booted=booted_before,
        )
        connection = ChargerConnection(
            websocket,
            context,
            version,
            self._handlers[version],
            on_frame=lambda direction, raw: self._frame_log(charge_point_id, direction, raw),
            on_seen=self._seen_callback(charge_point_id),
            rate_limiter=RateLimiter(self._config.rate_limit_per_second, self._config.rate_limit_burst),
        )
        previous = self.connections.get(charge_point_id)
        self.connections[charge_point_id] = connection
        if previous is not None:
            await previous.close(_REPLACED, "replaced by a newer connection", "replaced")
        record_connected(version)
        try:
            await self._reports.connected(charger_id, _DOMAIN_VERSION[version], connection_id)
            await self._announce(charge_point_id, version, connection_id)
            self.connected_event.set()
            _log.info("charger connected", extra={"protocol": version.value})
            await connection.serve()
        finally:
            if self.connections.get(charge_point_id) is connection:
                del self.connections[charge_point_id]
            record_disconnected(version, connection.close_cause)
            # Shielded: recording the disconnect must survive the server cancelling this handler on shutdown,
            # and `close_all` waits for it before the process lets go of the event store.
            cleanup = asyncio.ensure_future(
                self._disconnected(charge_point_id, charger_id, connection_id, connection.close_reason)
            )
            self._cleanups.add(cleanup)
            cleanup.add_done_callback(self._cleanups.discard)
            await asyncio.shield(cleanup)

    def _seen_callback(self, charge_point_id: str) -> Callable[[], None]:
        presence = self._presence
        if presence is None:
            return lambda: None
        return lambda: presence.seen(charge_point_id, self._clock())

    async def _announce(
        self, charge_point_id: str, version: ProtocolVersion, connection_id: uuid.UUID
    ) -> None:
        """Presence and routing registry in Redis. Best effort: a Redis outage must not keep chargers out
        (their facts go to Postgres); presence catches up at the next flush, the registry at its refresh."""
        try:
            if self._presence is not None:
                await self._presence.connected(
                    charge_point_id, version.value, str(connection_id), self._clock()
                )
            if self.router is not None:
                await self.router.claim(charge_point_id)
        except RedisError as error:
            _log.warning(
                "could not announce a charger in Redis",
                extra={"charger_id": charge_point_id, "error": str(error)},
            )

    async def _disconnected(
        self, charge_point_id: str, charger_id: uuid.UUID, connection_id: uuid.UUID, reason: str
    ) -> None:
        # Logged here, in the shielded cleanup, so that a handler cancelled at shutdown still says so.
        _log.info("charger disconnected", extra={"reason": reason})
        try:
            await self._reports.disconnected(charger_id, connection_id, reason[:500] or "closed")
        except Exception:
            _log.exception("could not record a disconnect", extra={"charger_id": charge_point_id})
        try:
            if self._presence is not None:
                await self._presence.disconnected(charge_point_id, str(connection_id), self._clock())
            if self.router is not None and charge_point_id not in self.connections:
                await self.router.release(charge_point_id)
        except RedisError as error:
            _log.warning(
                "could not withdraw a charger from Redis",
                extra={"charger_id": charge_point_id, "error": str(error)},
            )

    async def call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], within: float
    ) -> CallOutcome:
        """Send a CALL to a charger connected to this process (offline if it is not)."""
        connection = self.connections.get(charge_point_id)
        if connection is None:
            return CallOutcome.offline()
        return await connection.call(action, payload, within)

    async def close_all(self, reason: str = "server shutting down", drain_seconds: float = 10.0) -> None:
        """Drain: let no charger in any more and close every connection with 1001 "going away", so each
        reconnects (to another node) at once, a connection whose CALL is being handled only once its answer
        is written; then wait until every connection has ended and recorded its disconnect. Answers get up
        to `drain_seconds`, and so do the disconnect records."""
        self._draining = True
        deadline = asyncio.get_running_loop().time() + drain_seconds
        await asyncio.gather(
            *(self._going_away(c, reason, deadline) for c in list(self.connections.values())),
            return_exceptions=True,
        )
        try:
            async with asyncio.timeout_at(deadline):
                await self._idle.wait()
        except TimeoutError:
            _log.warning("chargers still draining at shutdown", extra={"connections": self._handlers_running})
        if self._cleanups:
            await asyncio.wait(list(self._cleanups), timeout=drain_seconds)

    async def _going_away(self, connection: ChargerConnection, reason: str, deadline: float) -> None:
        key = id(connection.context)
        try:
            async with asyncio.timeout_at(deadline):
                # A loop, not one wait: a charger that sent its next CALL without waiting for the answer to
                # the last (OCPP-J forbids it, some do it) has that one handled at once.
                while (answering := self._answering.get(key)) is not None:
                    await asyncio.shield(answering)
        except TimeoutError:
            _log.warning(
                "closing a charger whose message is still being handled",
                extra={"charger_id": connection.context.charge_point_id},
            )
        await connection.close(_GOING_AWAY, reason, "shutdown")

    def _tracked(self, handler: Handler) -> Handler:
        """`handler`, with the CALL it handles known to the drain for as long as it runs."""

        async def handle(context: ChargerContext, payload: Payload) -> Payload:
            key = id(context)
            answered = asyncio.get_running_loop().create_future()
            self._answering[key] = answered
            try:
                return await handler(context, payload)
            finally:
                del self._answering[key]
                answered.set_result(None)

        return handle


def _authenticated(request: web.Request, charge_point_id: str, password_hash: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    username, separator, password = decoded.partition(":")
    # A00.FR.204: the user name SHALL be the charge point identity.
    return (
        bool(separator) and username == charge_point_id and verify_charger_password(password, password_hash)
    )


def _release_connection(request: web.Request, websocket: web.WebSocketResponse) -> None:
    """Break the reference cycles aiohttp (3.14) leaves around a connection that has ended, so that reference
    counting frees its transport, request and buffers at once.

    The collector would find these cycles, but the gateway freezes long-lived objects out of its reach
    (`csms.observability.gc_pauses`): every connection older than a freeze would stay for good. Measured
    with 300 chargers dropping off (`csms simulate` killed): 16,652 objects in cycles before, none of a
    connection's after. The cycles:
    - the error that ended the connection (`exception()`, typically writing the close frame to a transport
      that is already gone) keeps a traceback whose frames hold the websocket;
    - the request's protocol keeps the websocket's data-received callback after the connection is lost;
    - a connection lost without a close frame can leave the ping timer scheduled, and the websocket holds it.
    The last two are private to aiohttp; tests/integration/gateway/test_robustness.py fails if a new version
    leaves a reset or hung-up connection alive again.
    """
    error = websocket.exception()
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__
    request.protocol._data_received_cb = None
    websocket._cancel_heartbeat()


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": status, "detail": detail}, status=status, headers=headers)


def create_gateway_app(gateway: Gateway) -> web.Application:
    """The aiohttp application serving `ws(s)://host:port/ocpp/{charge_point_id}`."""
    app = web.Application()
    app.router.add_get("/ocpp/{charge_point_id}", gateway.endpoint)

    async def close_chargers(_app: web.Application) -> None:
        await gateway.close_all()

    app.on_shutdown.append(close_chargers)
    return app
