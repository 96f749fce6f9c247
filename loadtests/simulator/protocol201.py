"""OCPP 2.0.1 for the simulated charger: payloads of what it sends and answers to the CSMS's calls.

Each connector of the simulated charger is an EVSE of its own with one connector: connector n is EVSE n,
connector 1.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ocpp.v201.enums import Action

from loadtests.simulator import variables
from loadtests.simulator.charger import Registration
from loadtests.simulator.protocol import BootReason, CallError, Effect, Reading, Trigger
from loadtests.simulator.session import Session, StopCause
from loadtests.simulator.variables import Variable

if TYPE_CHECKING:
    from loadtests.simulator.charger import Charger
    from loadtests.simulator.frames import Payload
    from loadtests.simulator.offline_queue import QueuedMessage

_KNOWN_ACTIONS: Final = frozenset(action.value for action in Action)

#: (triggerReason, stoppedReason) of the Ended event, by cause.
_ENDINGS: Final = {
    StopCause.LOCAL: ("StopAuthorized", "Local"),
    StopCause.REMOTE: ("RemoteStop", "Remote"),
    StopCause.HARD_RESET: ("ResetCommand", "ImmediateReset"),
    StopCause.SOFT_RESET: ("ResetCommand", "ImmediateReset"),
    StopCause.UNLOCK: ("UnlockCommand", "Other"),
    StopCause.DEAUTHORIZED: ("Deauthorized", "DeAuthorized"),
}

_TRIGGERS: Final = {
    "BootNotification": Trigger.BOOT,
    "Heartbeat": Trigger.HEARTBEAT,
    "StatusNotification": Trigger.STATUS,
    "MeterValues": Trigger.METER_VALUES,
    "TransactionEvent": Trigger.TRANSACTION_EVENT,
}


def _availability(charger: Charger) -> str:
    if charger.session is not None:
        return "Occupied"
    return "Available" if charger.is_operative(1) else "Unavailable"


#: Device-model variables (2.0.1 part 2, referenced components and variables), by lower-cased
#: (component, variable): names are case-insensitive.
VARIABLES: Final = {
    (component.lower(), v.name.lower()): (component, v)
    for component, v in (
        ("OCPPCommCtrlr", variables.heartbeat_interval("HeartbeatInterval")),
        ("OCPPCommCtrlr", Variable("OfflineThreshold", "int", default="60")),
        ("OCPPCommCtrlr", Variable("MessageAttempts", "int", default="3", readonly=True)),
        ("SampledDataCtrlr", variables.meter_interval("TxUpdatedInterval")),
        (
            "SampledDataCtrlr",
            Variable("TxUpdatedMeasurands", default="Energy.Active.Import.Register,Power.Active.Import"),
        ),
        ("SampledDataCtrlr", Variable("TxEndedMeasurands", default="Energy.Active.Import.Register")),
        ("AuthCtrlr", Variable("AuthorizeRemoteStart", "bool", default="false")),
        ("AuthCtrlr", Variable("LocalAuthorizeOffline", "bool", default="true")),
        ("TxCtrlr", Variable("EVConnectionTimeOut", "int", default="60")),
        ("ChargingStation", Variable("AvailabilityState", readonly=True, get=_availability)),
        ("EVSE", variables.connector_count("Count")),
    )
}
_COMPONENTS: Final = frozenset(component for component, _ in VARIABLES)


def _meter_value(reading: Reading, context: str, with_power: bool = True) -> Payload:
    sampled: list[Payload] = [
        {
            "value": reading.energy_wh,
            "context": context,
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unitOfMeasure": {"unit": "Wh"},
        }
    ]
    if with_power:
        sampled.append(
            {
                "value": reading.power_w,
                "context": context,
                "measurand": "Power.Active.Import",
                "location": "Outlet",
                "unitOfMeasure": {"unit": "W"},
            }
        )
    return {"timestamp": reading.timestamp, "sampledValue": sampled}


def _transaction_event(
    session: Session, event_type: str, trigger: str, reading: Reading, meter_value: Payload, offline: bool
) -> Payload:
    payload: Payload = {
        "eventType": event_type,
        "timestamp": reading.timestamp,
        "triggerReason": trigger,
        "seqNo": session.next_seq_no(),
        "transactionInfo": {"transactionId": session.local_id, "chargingState": "Charging"},
        "meterValue": [meter_value],
    }
    if offline:
        payload["offline"] = True  # E04: the event happened while the station was offline
    return payload


class Protocol201:
    """Stateless; one instance serves every 2.0.1 charger of a fleet."""

    version = "2.0.1"
    subprotocol = "ocpp2.0.1"
    format_violation = "FormatViolation"
    local_id_type = "ISO14443"

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Charger, Payload], tuple[Payload, Effect | None]]] = {
            "RequestStartTransaction": self._request_start,
            "RequestStopTransaction": self._request_stop,
            "Reset": self._reset,
            "UnlockConnector": self._unlock,
            "ChangeAvailability": self._change_availability,
            "TriggerMessage": self._trigger,
            "GetVariables": self._get_variables,
            "SetVariables": self._set_variables,
        }

    # ------------------------------------------------------------------ what the charger sends

    def new_transaction_id(self) -> str:
        return str(uuid.uuid4())

    def boot_notification(self, charger: Charger, reason: BootReason) -> Payload:
        config = charger.config
        return {
            "reason": reason.value,
            "chargingStation": {
                "model": config.model[:20],
                "vendorName": config.vendor[:50],
                "serialNumber": charger.id[-25:],
                "firmwareVersion": config.firmware[:50],
            },
        }

    def heartbeat(self) -> Payload:
        return {}

    def status_notification(self, charger: Charger, connector: int, timestamp: str) -> Payload:
        session = charger.session
        if session is not None and session.connector == connector:
            status = "Occupied"
        elif not charger.is_operative(connector):
            status = "Unavailable"
        else:
            status = "Available"
        return {"timestamp": timestamp, "connectorStatus": status, "evseId": connector, "connectorId": 1}

    def authorize(self, id_tag: str) -> Payload:
        return {"idToken": {"idToken": id_tag[:36], "type": self.local_id_type}}

    def authorized(self, result: Payload) -> bool:
        return bool(result.get("idTokenInfo", {}).get("status") == "Accepted")

    def meter_values(self, charger: Charger, connector: int, reading: Reading) -> tuple[str, Payload]:
        return "MeterValues", {"evseId": connector, "meterValue": [_meter_value(reading, "Trigger")]}

    def session_started(self, session: Session, reading: Reading, offline: bool) -> tuple[str, Payload]:
        remote = session.remote_start_id is not None
        payload = _transaction_event(
            session,
            "Started",
            "RemoteStart" if remote else "Authorized",
            reading,
            _meter_value(reading, "Transaction.Begin", with_power=False),
            offline,
        )
        if remote:
            payload["transactionInfo"]["remoteStartId"] = session.remote_start_id
        payload["idToken"] = {"idToken": session.id_tag[:36], "type": session.id_type}
        payload["evse"] = {"id": session.connector, "connectorId": 1}
        return "TransactionEvent", payload

    def session_sampled(
        self, session: Session, reading: Reading, offline: bool, triggered: bool
    ) -> tuple[str, Payload]:
        if triggered:
            trigger, context = "Trigger", "Trigger"
        else:
            trigger, context = "MeterValuePeriodic", "Sample.Periodic"
        meter_value = _meter_value(reading, context)
        return "TransactionEvent", _transaction_event(
            session, "Updated", trigger, reading, meter_value, offline
        )

    def session_ended(self, session: Session, reading: Reading, offline: bool) -> tuple[str, Payload]:
        trigger, stopped_reason = _ENDINGS[session.cause]
        meter_value = _meter_value(reading, "Transaction.End", with_power=False)
        payload = _transaction_event(session, "Ended", trigger, reading, meter_value, offline)
        info = payload["transactionInfo"]
        info["chargingState"] = "EVConnected"
        info["stoppedReason"] = stopped_reason
        if session.cause is StopCause.LOCAL:
            payload["idToken"] = {"idToken": session.id_tag[:36], "type": session.id_type}
        return "TransactionEvent", payload

    def prepare(self, message: QueuedMessage) -> Payload | None:
        return message.payload  # the charger chose the transactionId: nothing to fill in

    def on_result(self, charger: Charger, message: QueuedMessage, result: Payload) -> None:
        session = message.session
        info = result.get("idTokenInfo")
        if session is None or not isinstance(info, dict) or message.payload.get("eventType") == "Ended":
            return
        if info.get("status") != "Accepted":
            charger.end_session(StopCause.DEAUTHORIZED, session)

    # ------------------------------------------------------------------ what the CSMS asks

    def handle(self, charger: Charger, action: str, payload: Payload) -> tuple[Payload, Effect | None]:
        handler = self._handlers.get(action)
        if handler is None:
            if action in _KNOWN_ACTIONS:
                raise CallError("NotSupported", f"{action} is not supported by this charging station")
            raise CallError("NotImplemented", f"unknown action {action}")
        return handler(charger, payload)

    @staticmethod
    def _status(status: str, effect: Effect | None = None) -> tuple[Payload, Effect | None]:
        return {"status": status}, effect

    def _request_start(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        token = payload["idToken"]
        id_token, id_type = str(token["idToken"]), str(token["type"])
        remote_start_id = int(payload["remoteStartId"])
        evse = int(payload.get("evseId", 1))
        if not charger.can_start(evse):
            return self._status("Rejected")

        def start() -> None:
            charger.start_session(evse, id_token, id_type, remote_start_id)

        return self._status("Accepted", start)

    def _request_stop(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        session = charger.session
        if session is None or session.local_id != payload["transactionId"]:
            return self._status("Rejected")

        def stop() -> None:
            charger.end_session(StopCause.REMOTE, session)

        return self._status("Accepted", stop)

    def _reset(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        if "evseId" in payload:
            return self._status("Rejected")  # resetting a single EVSE is not simulated
        if payload["type"] == "Immediate":
            return self._status("Accepted", lambda: charger.reset(StopCause.HARD_RESET))
        # OnIdle: reboot once the session (if any) is over.
        return self._status(
            "Scheduled" if charger.session is not None else "Accepted", lambda: charger.reset(None)
        )

    def _unlock(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        evse = int(payload["evseId"])
        if not charger.has_connector(evse) or payload["connectorId"] != 1:
            return self._status("UnknownConnector")
        session = charger.session
        if session is not None and session.connector == evse:
            return self._status("OngoingAuthorizedTransaction")
        return self._status("Unlocked")

    def _change_availability(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        operative = {"Operative": True, "Inoperative": False}[payload["operationalStatus"]]
        evse = payload.get("evse")
        connector = 0
        if evse is not None:
            connector = int(evse["id"])
            if evse.get("connectorId", 1) != 1:
                return self._status("Rejected")
        status = charger.availability_change(connector, operative)
        if status == "Rejected":
            return self._status(status)
        return self._status(status, lambda: charger.set_availability(connector, operative))

    def _trigger(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        requested = payload["requestedMessage"]
        what = _TRIGGERS.get(requested)
        if what is None:
            return self._status("NotImplemented")
        evse = payload.get("evse")
        connector = 0 if evse is None else int(evse["id"])
        if connector and not charger.has_connector(connector):
            return self._status("Rejected")
        if what is Trigger.BOOT and charger.registration is Registration.ACCEPTED:
            return self._status("Rejected")  # F06.FR.17: no triggered boot once accepted
        if what is Trigger.TRANSACTION_EVENT:
            session = charger.session
            if session is None or connector not in (0, session.connector):
                return self._status("Rejected")
        return self._status("Accepted", lambda: charger.trigger(what, connector))

    @staticmethod
    def _lookup(item: Payload) -> tuple[str, Variable | None, str | None]:
        """(component name, variable, error status) of a GetVariableData / SetVariableData item."""
        component = str(item["component"]["name"])
        entry = VARIABLES.get((component.lower(), str(item["variable"]["name"]).lower()))
        if entry is None:
            known = component.lower() in _COMPONENTS
            return component, None, "UnknownVariable" if known else "UnknownComponent"
        if item.get("attributeType", "Actual") != "Actual":
            return component, entry[1], "NotSupportedAttributeType"
        return component, entry[1], None

    def _get_variables(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        results: list[Payload] = []
        for item in payload["getVariableData"]:
            _, variable, error = self._lookup(item)
            result: Payload = {
                "attributeStatus": error or "Accepted",
                "component": item["component"],
                "variable": item["variable"],
            }
            if "attributeType" in item:
                result["attributeType"] = item["attributeType"]
            if error is None and variable is not None:
                result["attributeValue"] = variable.read(charger)
            results.append(result)
        return {"getVariableResult": results}, None

    def _set_variables(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        results: list[Payload] = []
        for item in payload["setVariableData"]:
            _, variable, error = self._lookup(item)
            if error is None and variable is not None:
                error = None if variable.write(charger, str(item["attributeValue"])) else "Rejected"
            result: Payload = {
                "attributeStatus": error or "Accepted",
                "component": item["component"],
                "variable": item["variable"],
            }
            if "attributeType" in item:
                result["attributeType"] = item["attributeType"]
            results.append(result)
        return {"setVariableResult": results}, None
