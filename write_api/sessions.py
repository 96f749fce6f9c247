"""Starting and stopping charging sessions from the app: decided on aggregates, carried out by the charger.

Start: the checks run on the Charger, Driver and Company aggregates (never a read model); the session is
requested and the connector held in one atomic commit, so two phones starting one connector get one session
and one conflict. Then the charger is asked, and the answer (accepted, refused, offline, silent) is recorded
before the caller hears it.

Both run while an API request is served (a task of its own), whose log lines they bind to the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from csms.directories import IdTokenDirectory
from csms.domain import (
    Charger,
    ChargingSession,
    Company,
    ConnectorUnavailable,
    Driver,
    IdToken,
    IdTokenType,
    InvalidValue,
    SessionConflict,
    SessionStatus,
    charger_id_for,
)
from csms.eventstore import AggregateNotFoundError, ConcurrencyError, Repository
from csms.observability.logging import bind_log_fields
from write_api.access import Actor, NotFound
from write_api.ocpp.commands import ChargerCommands, CommandOutcome, CommandStatus


class SessionError(Exception):
    """A start or stop that cannot be done; the subclass says why, the message says what."""


class ChargerOffline(SessionError):
    pass


class ChargerTimedOut(SessionError):
    pass


@dataclass(frozen=True, slots=True)
class SessionAnswer:
    session_id: UUID
    status: SessionStatus
    position: int | None = None  # log position of the last event this call committed (read-your-writes)
    charger_status: str | None = None


def app_token_for(driver_id: UUID) -> IdToken:
    """The token a remote start carries for a driver: 20 characters, so it fits a 1.6 idTag. It is one of
    the driver's id tokens, so when a charger reports the start (or asks to authorize it), the token leads
    back to the driver."""
    return IdToken(driver_id.hex[:20].upper(), IdTokenType.CENTRAL)


class SessionService:
    def __init__(
        self,
        repository: Repository,
        commands: ChargerCommands,
        tokens: IdTokenDirectory,
        clock: Callable[[], datetime],
        *,
        require_payment_method: bool = False,
        retries: int = 3,
    ) -> None:
        self._repository = repository
        self._commands = commands
        self._tokens = tokens
        self._clock = clock
        self._require_payment_method = require_payment_method
        self._retries = retries

    async def start(self, driver_id: UUID, charge_point_id: str, evse_id: int | None = None) -> SessionAnswer:
        """Request a session on `evse_id` (or the first free EVSE) and ask the charger to start it.

        Raises NotFound, ConnectorUnavailable / SessionConflict (409), ChargerOffline (503),
        ChargerTimedOut (504), PaymentMethodRequired (402), CompanySuspended.
        """
        bind_log_fields(charger_id=charge_point_id)
        session, charger, token, position = await self._request(driver_id, charge_point_id, evse_id)
        bind_log_fields(session_id=str(session.id))
        outcome = await self._commands.remote_start(
            charge_point_id,
            session.evse_id,
            token,
            remote_start_id=session.id.int % 2**31,
            protocol=charger.protocol,
        )
        return await self._record_answer(session.id, charge_point_id, outcome, position)

    async def stop(self, session_id: UUID, actor: Actor) -> SessionAnswer:
        """Ask the charger to end the session; idempotent. A session the charger has not started yet is
        cancelled here (its connector freed)."""
        bind_log_fields(session_id=str(session_id))
        # The session and its charger in one read; the charger's id is known once the session is cached.
        known = self._repository.peek(session_id, ChargingSession)
        current = await self._repository.read_ahead(
            (session_id, ChargingSession), *([(known.charger_id, Charger)] if known is not None else [])
        )
        try:
            session = await self._repository.get(
                session_id, ChargingSession, refresh=session_id not in current
            )
        except AggregateNotFoundError:
            raise NotFound(f"no session {session_id}") from None
        if not _may_stop(actor, session):
            raise NotFound(f"no session {session_id}")
        if session.status in (SessionStatus.REQUESTED, SessionStatus.ACCEPTED):
            position = await self._cancel(session_id, "stopped by the driver before the charger started")
            return SessionAnswer(session_id, SessionStatus.EXPIRED, position)
        if session.status is not SessionStatus.STARTED or session.transaction_id is None:
            return SessionAnswer(session_id, session.status)
        charger = await self._repository.get(
            session.charger_id, Charger, refresh=session.charger_id not in current
        )
        bind_log_fields(charger_id=charger.charge_point_id)
        outcome = await self._commands.remote_stop(
            charger.charge_point_id,
            session.transaction_id,
            protocol=charger.protocol if charger.is_connected else None,
        )
        _raise_unless_answered(outcome, charger.charge_point_id)
        # The rest of the session is the charger's (its stop, then the price): this process is done with it.
        self._repository.forget(session_id)
        return SessionAnswer(session_id, session.status, charger_status=outcome.charger_status)

    async def _request(
        self, driver_id: UUID, charge_point_id: str, evse_id: int | None
    ) -> tuple[ChargingSession, Charger, IdToken, int]:
        token = app_token_for(driver_id)
        for attempt in range(self._retries + 1):
            at = self._clock()
            charger, driver, company = await self._charger_driver_and_company(charge_point_id, driver_id)
            company.ensure_active()
            driver.ensure_may_charge(self._require_payment_method, at)
            if not charger.is_connected:
                raise ChargerOffline(f"charger {charge_point_id} is offline")
            evse = evse_id if evse_id is not None else _first_free_evse(charger)
            charger.ensure_can_start(evse, 1)
            session = ChargingSession.request(
                id=uuid.uuid4(),
                driver_id=driver_id,
                company_id=charger.company_id,
                station_id=charger.station_id,
                charger_id=charger.id,
                evse_id=evse,
                connector_id=1,
                id_token=token,
                at=at,
            )
            charger.assign_session(evse, 1, session.id, at)
            if driver.id_token(token.value) is None:
                driver.add_id_token(token, at)
            try:
                results = await self._repository.save(session, charger, driver)
            except ConcurrencyError:
                # Someone else moved the charger on (perhaps another start on this connector): decide again.
                if attempt == self._retries:
                    raise
                continue
            await self._tokens.claim(token.value, driver_id)  # a read only the first time (it remembers)
            return session, charger, token, max(r.position for r in results)
        raise AssertionError("unreachable")

    async def _record_answer(
        self, session_id: UUID, charge_point_id: str, outcome: CommandOutcome, position: int
    ) -> SessionAnswer:
        at = self._clock()
        if outcome.accepted:
            for attempt in range(self._retries + 1):
                # This process saved the session a moment ago: its cached copy is usually current. When the
                # charger's start got there first, the save conflicts and the retry reads the tail.
                session = await self._repository.get(session_id, ChargingSession, refresh=attempt > 0)
                session.accept(at)
                try:
                    results = await self._repository.save(session)
                except ConcurrencyError:
                    if attempt == self._retries:
                        raise
                    continue
                position = max([position, *(r.position for r in results)])
                return SessionAnswer(session_id, session.status, position, outcome.charger_status)
        if outcome.status is CommandStatus.TIMED_OUT:
            # The charger may still start it; until it does, the connector stays held. A charger that
            # starts late links to this session through the held connector.
            raise ChargerTimedOut(f"charger {charge_point_id} did not answer in time")
        reason = {
            CommandStatus.OFFLINE: "charger offline",
            CommandStatus.NOT_BOOTED: "charger not ready (boot not accepted yet)",
            CommandStatus.NOT_SUPPORTED: f"charger error: {outcome.detail}",
        }.get(outcome.status, f"refused by the charger ({outcome.charger_status})")
        position = await self._cancel(session_id, reason, reject=True)
        if outcome.status in (CommandStatus.OFFLINE, CommandStatus.NOT_BOOTED):
            raise ChargerOffline(f"charger {charge_point_id}: {reason}")
        return SessionAnswer(session_id, SessionStatus.REJECTED, position, outcome.charger_status)

    async def _cancel(self, session_id: UUID, reason: str, *, reject: bool = False) -> int:
        """Close a session the charger never started, and free its connector."""
        for attempt in range(self._retries + 1):
            at = self._clock()
            session = await self._repository.get(session_id, ChargingSession, refresh=True)
            charger = await self._repository.get(session.charger_id, Charger, refresh=True)
            if reject:
                session.reject(reason, at)
            else:
                session.expire(at)
            if session.status in (SessionStatus.REJECTED, SessionStatus.EXPIRED):
                charger.release_session(session.evse_id, session.connector_id, session.id, at)
            try:
                results = await self._repository.save(session, charger)
            except ConcurrencyError:
                if attempt == self._retries:
                    raise
                continue
            if not session.is_active:
                self._repository.forget(session_id)
            return max((r.position for r in results), default=0)
        raise AssertionError("unreachable")

    async def _charger_driver_and_company(
        self, charge_point_id: str, driver_id: UUID
    ) -> tuple[Charger, Driver, Company]:
        """All three at their latest versions, read in one round trip once the charger is cached (its
        company never changes); NotFound for an unknown or decommissioned charger."""
        try:
            charger_id = charger_id_for(charge_point_id)
        except InvalidValue:
            raise NotFound(f"no charger {charge_point_id}") from None
        known = self._repository.peek(charger_id, Charger)
        current = await self._repository.read_ahead(
            (charger_id, Charger),
            (driver_id, Driver),
            *([(known.company_id, Company)] if known is not None else []),
        )
        driver = await self._repository.get(driver_id, Driver, refresh=driver_id not in current)
        try:
            charger = await self._repository.get(charger_id, Charger, refresh=charger_id not in current)
        except AggregateNotFoundError:
            raise NotFound(f"no charger {charge_point_id}") from None
        if charger.decommissioned:
            raise NotFound(f"no charger {charge_point_id}")
        company = await self._repository.get(
            charger.company_id, Company, refresh=charger.company_id not in current
        )
        return charger, driver, company


def _may_stop(actor: Actor, session: ChargingSession) -> bool:
    return (
        actor.is_admin
        or (actor.role == "driver" and actor.driver_id is not None and session.driver_id == actor.driver_id)
        or (actor.role == "operator" and actor.company_id == session.company_id)
    )


def _first_free_evse(charger: Charger) -> int:
    for evse in charger.evses:
        try:
            charger.ensure_can_start(evse.evse_id, 1)
        except (ConnectorUnavailable, SessionConflict):
            continue
        return evse.evse_id
    raise ConnectorUnavailable(f"no connector of {charger.charge_point_id} is available")


def _raise_unless_answered(outcome: CommandOutcome, charge_point_id: str) -> None:
    if outcome.status in (CommandStatus.OFFLINE, CommandStatus.NOT_BOOTED):
        raise ChargerOffline(f"charger {charge_point_id} is offline")
    if outcome.status is CommandStatus.TIMED_OUT:
        raise ChargerTimedOut(f"charger {charge_point_id} did not answer in time")
