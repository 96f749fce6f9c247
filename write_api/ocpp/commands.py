"""CSMS-initiated commands in protocol-neutral terms, sent in each charger's own OCPP version.

The write API asks for "start charging on EVSE 2 for this token" or "reset"; this module turns that into
1.6 RemoteStartTransaction / 2.0.1 RequestStartTransaction (and so on), sends it through the command router to
whichever gateway process holds the charger's socket, and reads the answer back into one typed outcome.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from csms.domain import Charger, IdToken, IdTokenType, InvalidValue, OcppVersion, charger_id_for
from csms.eventstore import AggregateNotFoundError, Repository
from write_api.ocpp.metrics import record_command
from write_api.ocpp.outcome import CallOutcome, CallStatus

# 2.0.1 IdTokenEnumType spellings of our token types.
_TOKEN_TYPE_201 = {
    IdTokenType.CENTRAL: "Central",
    IdTokenType.EMAID: "eMAID",
    IdTokenType.ISO14443: "ISO14443",
    IdTokenType.ISO15693: "ISO15693",
    IdTokenType.KEY_CODE: "KeyCode",
    IdTokenType.LOCAL: "Local",
    IdTokenType.MAC_ADDRESS: "MacAddress",
    IdTokenType.NO_AUTHORIZATION: "NoAuthorization",
    IdTokenType.RFID: "ISO14443",
    IdTokenType.APP: "Central",
}


class CommandStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # the charger will do it (or did)
    REJECTED = "rejected"  # the charger refused (its status says why)
    SCHEDULED = "scheduled"  # accepted, takes effect later (e.g. availability after a transaction)
    NOT_SUPPORTED = "not_supported"  # the charger answered with a CALLERROR (e.g. NotSupported)
    OFFLINE = "offline"  # not connected to any gateway
    NOT_BOOTED = "not_booted"  # connected, not yet accepted: no commands until it is
    TIMED_OUT = "timed_out"  # no answer in time: the charger may or may not have acted


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    status: CommandStatus
    charger_status: str | None = None  # the charger's own status value, e.g. "Rejected", "Unlocked"
    payload: Mapping[str, Any] | None = None
    detail: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in (CommandStatus.ACCEPTED, CommandStatus.SCHEDULED)


class Sender(Protocol):
    """What sends a CALL to a charger wherever it is connected (the command router)."""

    async def send(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 - the router's own signature: a deadline that travels with the request
    ) -> CallOutcome: ...


ProtocolOf = Callable[[str], Awaitable[OcppVersion | None]]
"""Which OCPP version a charger speaks (None when unknown, e.g. it never connected)."""

_ACCEPTING = {
    "Accepted": CommandStatus.ACCEPTED,
    "Scheduled": CommandStatus.SCHEDULED,
    "Unlocked": CommandStatus.ACCEPTED,
}


def protocol_from_repository(repository: Repository) -> ProtocolOf:
    """The version a charger connected with, read from its aggregate (None while it is disconnected)."""

    async def protocol_of(charge_point_id: str) -> OcppVersion | None:
        try:
            charger = await repository.get(charger_id_for(charge_point_id), Charger, refresh=True)
        except (AggregateNotFoundError, InvalidValue):
            return None
        return charger.protocol if charger.is_connected else None

    return protocol_of


class ChargerCommands:
    """The commands operators and the session flow send to chargers."""

    def __init__(self, sender: Sender, protocol_of: ProtocolOf, timeout_seconds: float = 30.0) -> None:
        self._sender = sender
        self._protocol_of = protocol_of
        self._timeout = timeout_seconds

    async def remote_start(
        self,
        charge_point_id: str,
        evse_id: int,
        id_token: IdToken,
        remote_start_id: int,
        *,
        protocol: OcppVersion | None = None,
    ) -> CommandOutcome:
        """Ask the charger to start a transaction for `id_token` on an EVSE (1.6: the connectorId).

        `protocol`: the version the charger is connected with, when the caller has just read it (saves
        reading the charger again)."""
        return await self._send(
            charge_point_id,
            protocol=protocol,
            v16=("RemoteStartTransaction", {"connectorId": evse_id, "idTag": id_token.value[:20]}),
            v201=(
                "RequestStartTransaction",
                {
                    "evseId": evse_id,
                    "remoteStartId": remote_start_id,
                    "idToken": {"idToken": id_token.value, "type": _TOKEN_TYPE_201[id_token.type]},
                },
            ),
        )

    async def remote_stop(
        self, charge_point_id: str, transaction_id: str, *, protocol: OcppVersion | None = None
    ) -> CommandOutcome:
        try:
            transaction_16 = int(transaction_id)
        except ValueError:
            transaction_16 = -1
        return await self._send(
            charge_point_id,
            protocol=protocol,
            v16=("RemoteStopTransaction", {"transactionId": transaction_16}),
            v201=("RequestStopTransaction", {"transactionId": transaction_id}),
        )

    async def reset(self, charge_point_id: str, *, hard: bool) -> CommandOutcome:
        """Hard: reboot now (2.0.1 Immediate). Soft: after ongoing transactions end (2.0.1 OnIdle)."""
        return await self._send(
            charge_point_id,
            v16=("Reset", {"type": "Hard" if hard else "Soft"}),
            v201=("Reset", {"type": "Immediate" if hard else "OnIdle"}),
        )

    async def unlock_connector(
        self, charge_point_id: str, evse_id: int, connector_id: int = 1
    ) -> CommandOutcome:
        return await self._send(
            charge_point_id,
            v16=("UnlockConnector", {"connectorId": evse_id}),
            v201=("UnlockConnector", {"evseId": evse_id, "connectorId": connector_id}),
        )

    async def change_availability(
        self, charge_point_id: str, *, operative: bool, evse_id: int | None = None
    ) -> CommandOutcome:
        """The whole charger (`evse_id` None) or one EVSE becomes (in)operative."""
        status_16 = "Operative" if operative else "Inoperative"
        payload_201: dict[str, Any] = {"operationalStatus": status_16}
        if evse_id is not None:
            payload_201["evse"] = {"id": evse_id}
        return await self._send(
            charge_point_id,
            v16=("ChangeAvailability", {"connectorId": evse_id or 0, "type": status_16}),
            v201=("ChangeAvailability", payload_201),
        )

    async def trigger_message(
        self, charge_point_id: str, message: str, evse_id: int | None = None
    ) -> CommandOutcome:
        """Ask for a message now: BootNotification, Heartbeat, StatusNotification, MeterValues, ..."""
        payload_16: dict[str, Any] = {"requestedMessage": message}
        payload_201: dict[str, Any] = {"requestedMessage": message}
        if evse_id is not None:
            payload_16["connectorId"] = evse_id
            payload_201["evse"] = {"id": evse_id}
        return await self._send(
            charge_point_id, v16=("TriggerMessage", payload_16), v201=("TriggerMessage", payload_201)
        )

    async def get_configuration(self, charge_point_id: str, keys: Sequence[str]) -> CommandOutcome:
        """1.6 GetConfiguration keys; 2.0.1 GetVariables of `Component.Variable` names
        (e.g. `OCPPCommCtrlr.HeartbeatInterval`)."""
        return await self._send(
            charge_point_id,
            v16=("GetConfiguration", {"key": list(keys)} if keys else {}),
            v201=("GetVariables", {"getVariableData": [_variable(name) for name in keys]}),
            always_accepted=True,
        )

    async def set_configuration(self, charge_point_id: str, key: str, value: str) -> CommandOutcome:
        return await self._send(
            charge_point_id,
            v16=("ChangeConfiguration", {"key": key, "value": value}),
            v201=("SetVariables", {"setVariableData": [{**_variable(key), "attributeValue": value}]}),
        )

    async def clear_cache(self, charge_point_id: str) -> CommandOutcome:
        return await self._send(charge_point_id, v16=("ClearCache", {}), v201=("ClearCache", {}))

    async def _send(
        self,
        charge_point_id: str,
        *,
        v16: tuple[str, dict[str, Any]],
        v201: tuple[str, dict[str, Any]],
        always_accepted: bool = False,
        protocol: OcppVersion | None = None,
    ) -> CommandOutcome:
        began = time.perf_counter()
        version = protocol or await self._protocol_of(charge_point_id)
        if version is None:
            record_command(v16[0], CommandStatus.OFFLINE.value, time.perf_counter() - began)
            return CommandOutcome(CommandStatus.OFFLINE)
        action, payload = v16 if version is OcppVersion.OCPP16 else v201
        outcome = _read(
            await self._sender.send(charge_point_id, action, payload, self._timeout), always_accepted
        )
        record_command(action, outcome.status.value, time.perf_counter() - began)
        return outcome


def _variable(name: str) -> dict[str, Any]:
    component, _, variable = name.rpartition(".")
    return {"component": {"name": component or name}, "variable": {"name": variable}}


def _read(outcome: CallOutcome, always_accepted: bool) -> CommandOutcome:
    if outcome.status is CallStatus.RESULT:
        payload = outcome.payload or {}
        charger_status = _charger_status(payload)
        if always_accepted:
            return CommandOutcome(CommandStatus.ACCEPTED, charger_status, payload)
        status = _ACCEPTING.get(charger_status or "", CommandStatus.REJECTED)
        return CommandOutcome(status, charger_status, payload)
    if outcome.status is CallStatus.CALL_ERROR:
        detail = f"{outcome.error_code}: {outcome.error_description}"
        return CommandOutcome(CommandStatus.NOT_SUPPORTED, detail=detail)
    mapped = {
        CallStatus.OFFLINE: CommandStatus.OFFLINE,
        CallStatus.TIMED_OUT: CommandStatus.TIMED_OUT,
        CallStatus.NOT_BOOTED: CommandStatus.NOT_BOOTED,
    }
    return CommandOutcome(mapped[outcome.status])


def _charger_status(payload: Mapping[str, Any]) -> str | None:
    status = payload.get("status")
    if isinstance(status, str):
        return status
    # 2.0.1 SetVariables answers per variable.
    results = payload.get("setVariableResult")
    if isinstance(results, list) and results and isinstance(results[0], dict):
        value = results[0].get("attributeStatus")
        return value if isinstance(value, str) else None
    return None
