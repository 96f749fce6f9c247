"""OCPP 1.6J for the simulated charger: payloads of what it sends, answers to the Central System's calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ocpp.v16.enums import Action

from loadtests.simulator import variables
from loadtests.simulator.protocol import BootReason, CallError, Effect, Reading, Trigger
from loadtests.simulator.session import Session, StopCause
from loadtests.simulator.variables import Variable

if TYPE_CHECKING:
    from loadtests.simulator.charger import Charger
    from loadtests.simulator.frames import Payload
    from loadtests.simulator.offline_queue import QueuedMessage

_KNOWN_ACTIONS: Final = frozenset(action.value for action in Action)

_STOP_REASONS: Final = {
    StopCause.LOCAL: "Local",
    StopCause.REMOTE: "Remote",
    StopCause.HARD_RESET: "HardReset",
    StopCause.SOFT_RESET: "SoftReset",
    StopCause.UNLOCK: "UnlockCommand",
    StopCause.DEAUTHORIZED: "DeAuthorized",
}

_TRIGGERS: Final = {
    "BootNotification": Trigger.BOOT,
    "Heartbeat": Trigger.HEARTBEAT,
    "StatusNotification": Trigger.STATUS,
    "MeterValues": Trigger.METER_VALUES,
}

#: Configuration keys (1.6 section 9), by name. Those the simulation acts upon read and write charger state.
CONFIGURATION: Final = {
    v.name: v
    for v in (
        variables.heartbeat_interval("HeartbeatInterval"),
        variables.meter_interval("MeterValueSampleInterval"),
        variables.connector_count("NumberOfConnectors"),
        Variable("MeterValuesSampledData", default="Energy.Active.Import.Register,Power.Active.Import"),
        Variable("StopTxnSampledData", default="Energy.Active.Import.Register"),
        Variable("ConnectionTimeOut", "int", default="60"),
        Variable("AuthorizeRemoteTxRequests", "bool", default="false"),
        Variable("LocalAuthorizeOffline", "bool", default="true"),
        Variable("AllowOfflineTxForUnknownId", "bool", default="true"),
        Variable("TransactionMessageAttempts", "int", default="3"),
        Variable("TransactionMessageRetryInterval", "int", default="10"),
        Variable("SupportedFeatureProfiles", readonly=True, default="Core,RemoteTrigger"),
        Variable("GetConfigurationMaxKeys", "int", readonly=True, default="50"),
    )
}


def _sampled_value(value: int, context: str, measurand: str, unit: str) -> Payload:
    return {
        "value": str(value),
        "context": context,
        "measurand": measurand,
        "location": "Outlet",
        "unit": unit,
    }


def _meter_value(reading: Reading, context: str, with_power: bool = True) -> Payload:
    sampled = [_sampled_value(reading.energy_wh, context, "Energy.Active.Import.Register", "Wh")]
    if with_power:
        sampled.append(_sampled_value(reading.power_w, context, "Power.Active.Import", "W"))
    return {"timestamp": reading.timestamp, "sampledValue": sampled}


class Protocol16:
    """Stateless; one instance serves every 1.6 charger of a fleet."""

    version = "1.6"
    subprotocol = "ocpp1.6"
    format_violation = "FormationViolation"  # sic: OCPP-J 1.6 spells it so
    local_id_type = "ISO14443"

    def __init__(self) -> None:
        self._handlers: dict[str, Callable[[Charger, Payload], tuple[Payload, Effect | None]]] = {
            "RemoteStartTransaction": self._remote_start,
            "RemoteStopTransaction": self._remote_stop,
            "Reset": self._reset,
            "UnlockConnector": self._unlock,
            "ChangeAvailability": self._change_availability,
            "TriggerMessage": self._trigger,
            "GetConfiguration": self._get_configuration,
            "ChangeConfiguration": self._change_configuration,
            "ClearCache": self._clear_cache,
        }

    # ------------------------------------------------------------------ what the charger sends

    def new_transaction_id(self) -> str:
        return ""  # 1.6: the Central System assigns the id, in StartTransaction.conf

    def boot_notification(self, charger: Charger, reason: BootReason) -> Payload:
        config = charger.config
        return {
            "chargePointVendor": config.vendor[:20],
            "chargePointModel": config.model[:20],
            "chargePointSerialNumber": charger.id[-25:],
            "firmwareVersion": config.firmware[:50],
        }

    def heartbeat(self) -> Payload:
        return {}

    def status_notification(self, charger: Charger, connector: int, timestamp: str) -> Payload:
        session = charger.session
        if session is not None and session.connector == connector:
            # Preparing until the Central System has acknowledged the start, then Charging.
            status = "Preparing" if session.transaction_id is None else "Charging"
        elif not charger.is_operative(connector):
            status = "Unavailable"
        else:
            status = "Available"
        return {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": timestamp}

    def authorize(self, id_tag: str) -> Payload:
        return {"idTag": id_tag[:20]}

    def authorized(self, result: Payload) -> bool:
        return bool(result.get("idTagInfo", {}).get("status") == "Accepted")

    def meter_values(self, charger: Charger, connector: int, reading: Reading) -> tuple[str, Payload]:
        payload: Payload = {"connectorId": connector, "meterValue": [_meter_value(reading, "Trigger")]}
        session = charger.session
        if session is not None and session.connector == connector and session.transaction_id is not None:
            payload["transactionId"] = session.transaction_id
        return "MeterValues", payload

    def session_started(self, session: Session, reading: Reading, offline: bool) -> tuple[str, Payload]:
        return "StartTransaction", {
            "connectorId": session.connector,
            "idTag": session.id_tag[:20],
            "meterStart": reading.energy_wh,
            "timestamp": reading.timestamp,
        }

    def session_sampled(
        self, session: Session, reading: Reading, offline: bool, triggered: bool
    ) -> tuple[str, Payload]:
        # transactionId is added when sent (prepare): a start queued offline has no id yet.
        context = "Trigger" if triggered else "Sample.Periodic"
        return "MeterValues", {
            "connectorId": session.connector,
            "meterValue": [_meter_value(reading, context)],
        }

    def session_ended(self, session: Session, reading: Reading, offline: bool) -> tuple[str, Payload]:
        payload: Payload = {
            "meterStop": reading.energy_wh,
            "timestamp": reading.timestamp,
            "reason": _STOP_REASONS[session.cause],
            "transactionData": [_meter_value(reading, "Transaction.End", with_power=False)],
        }
        if session.cause is StopCause.LOCAL:
            payload["idTag"] = session.id_tag[:20]
        return "StopTransaction", payload

    def prepare(self, message: QueuedMessage) -> Payload | None:
        session = message.session
        if message.action == "StartTransaction" or session is None:
            return message.payload
        if session.transaction_id is None:
            return None  # its StartTransaction was never acknowledged: nothing to attach this to
        return {**message.payload, "transactionId": session.transaction_id}

    def on_result(self, charger: Charger, message: QueuedMessage, result: Payload) -> None:
        session = message.session
        if message.action != "StartTransaction" or session is None:
            return
        session.transaction_id = int(result["transactionId"])
        if charger.session is session:
            charger.mark_status(session.connector)  # Preparing → Charging
            if result.get("idTagInfo", {}).get("status") != "Accepted":
                charger.end_session(StopCause.DEAUTHORIZED, session)

    # ------------------------------------------------------------------ what the Central System asks

    def handle(self, charger: Charger, action: str, payload: Payload) -> tuple[Payload, Effect | None]:
        handler = self._handlers.get(action)
        if handler is None:
            if action in _KNOWN_ACTIONS:
                raise CallError("NotSupported", f"{action} is not supported by this charge point")
            raise CallError("NotImplemented", f"unknown action {action}")
        return handler(charger, payload)

    @staticmethod
    def _status(status: str, effect: Effect | None = None) -> tuple[Payload, Effect | None]:
        return {"status": status}, effect

    def _remote_start(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        id_tag = str(payload["idTag"])
        connector = int(payload.get("connectorId", 1))
        if not charger.can_start(connector):
            return self._status("Rejected")

        def start() -> None:
            charger.start_session(connector, id_tag, "Central")

        return self._status("Accepted", start)

    def _remote_stop(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        session = charger.session
        if session is None or session.transaction_id != payload["transactionId"]:
            return self._status("Rejected")

        def stop() -> None:
            charger.end_session(StopCause.REMOTE, session)

        return self._status("Accepted", stop)

    def _reset(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        cause = StopCause.HARD_RESET if payload["type"] == "Hard" else StopCause.SOFT_RESET
        return self._status("Accepted", lambda: charger.reset(cause))

    def _unlock(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        connector = int(payload["connectorId"])
        if not charger.has_connector(connector):
            return self._status("NotSupported")
        session = charger.session
        if session is not None and session.connector == connector:
            # 1.6 5.18: unlocking a connector with a transaction on it stops the transaction first.

            def stop() -> None:
                charger.end_session(StopCause.UNLOCK, session)

            return self._status("Unlocked", stop)
        return self._status("Unlocked")

    def _change_availability(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        connector = int(payload["connectorId"])
        operative = {"Operative": True, "Inoperative": False}[payload["type"]]
        status = charger.availability_change(connector, operative)
        if status == "Rejected":
            return self._status(status)
        return self._status(status, lambda: charger.set_availability(connector, operative))

    def _trigger(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        what = _TRIGGERS.get(payload["requestedMessage"])
        connector = int(payload.get("connectorId", 0))
        if what is None:
            return self._status("NotImplemented")
        if connector and not charger.has_connector(connector):
            return self._status("Rejected")
        return self._status("Accepted", lambda: charger.trigger(what, connector))

    def _get_configuration(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        keys = payload.get("key") or list(CONFIGURATION)
        known: list[Payload] = []
        unknown: list[str] = []
        for key in keys:
            variable = CONFIGURATION.get(key)
            if variable is None:
                unknown.append(key)
            else:
                known.append({"key": key, "readonly": variable.readonly, "value": variable.read(charger)})
        result: Payload = {"configurationKey": known}
        if unknown:
            result["unknownKey"] = unknown
        return result, None

    def _change_configuration(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        variable = CONFIGURATION.get(payload["key"])
        if variable is None:
            return self._status("NotSupported")
        return self._status("Accepted" if variable.write(charger, str(payload["value"])) else "Rejected")

    def _clear_cache(self, charger: Charger, payload: Payload) -> tuple[Payload, Effect | None]:
        return self._status("Accepted")
