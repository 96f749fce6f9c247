"""OCPP 2.0.1 charger-initiated actions (use cases A, B, C, E, G, J, L, N) mapped to `ChargerReports`."""

from __future__ import annotations

from typing import Any

from csms.domain import (
    ConnectorStatus,
    DeviceEvent,
    IdToken,
    IdTokenType,
    InvalidValue,
    MeterReading,
    ReportEntry,
    StopReason,
)
from write_api.charger_reports import TokenVerdict, TransactionStart
from write_api.ocpp.handlers.context import ChargerContext, Handlers, Payload, boot_response, now_iso
from write_api.ocpp.meter_values import parse_timestamp, readings_from_201

_TOKEN_TYPES = {
    "Central": IdTokenType.CENTRAL,
    "eMAID": IdTokenType.EMAID,
    "ISO14443": IdTokenType.ISO14443,
    "ISO15693": IdTokenType.ISO15693,
    "KeyCode": IdTokenType.KEY_CODE,
    "Local": IdTokenType.LOCAL,
    "MacAddress": IdTokenType.MAC_ADDRESS,
    "NoAuthorization": IdTokenType.NO_AUTHORIZATION,
}


def _id_token(value: Any) -> IdToken | None:
    if not isinstance(value, dict) or value.get("type") == "NoAuthorization":
        return None
    try:
        return IdToken(value["idToken"], _TOKEN_TYPES.get(value["type"], IdTokenType.RFID))
    except (InvalidValue, KeyError):
        return None


def _id_token_info(verdict: TokenVerdict) -> Payload:
    return {"status": verdict.authorization.value}


async def boot_notification(context: ChargerContext, payload: Payload) -> Payload:
    station = payload["chargingStation"]

    async def record() -> None:
        await context.reports.boot(
            context.charger_id,
            vendor=station["vendorName"],
            model=station["model"],
            serial_number=station.get("serialNumber"),
            firmware=station.get("firmwareVersion"),
        )

    return await boot_response(context, record)


async def heartbeat(context: ChargerContext, payload: Payload) -> Payload:
    return {"currentTime": now_iso(context)}


async def status_notification(context: ChargerContext, payload: Payload) -> Payload:
    await context.reports.status(
        context.charger_id,
        evse_id=payload["evseId"],
        connector_id=payload["connectorId"],
        status=ConnectorStatus(payload["connectorStatus"]),
        error_code=None,
        reported_at=parse_timestamp(payload["timestamp"]) or context.clock(),
    )
    return {}


async def authorize(context: ChargerContext, payload: Payload) -> Payload:
    token = _id_token(payload["idToken"])
    if token is None:
        return {"idTokenInfo": {"status": "Unknown"}}
    return {"idTokenInfo": _id_token_info(await context.reports.authorize(token))}


async def transaction_event(context: ChargerContext, payload: Payload) -> Payload:
    """E01-E07: Started, Updated and Ended events of one transaction, each with its seqNo.

    Duplicates (a retransmission, or a replay from the charger's offline queue) change nothing: a second Start
    or Stop is ignored by the session, and readings are kept in order of their own timestamps.
    """
    info = payload["transactionInfo"]
    transaction_id: str = info["transactionId"]
    event_type = payload["eventType"]
    readings = readings_from_201(payload.get("meterValue", ()))
    token = _id_token(payload.get("idToken"))
    at = parse_timestamp(payload["timestamp"]) or context.clock()
    verdict: TokenVerdict | None = None
    if event_type == "Started" or (
        event_type == "Ended" and not await context.reports.knows(context.charger_id, transaction_id)
    ):
        # An Ended whose Started never arrived (lost, or still queued behind it at the charger) starts the
        # session from what the Ended tells, so the energy it reports is not lost; a late Started then
        # changes nothing.
        evse = payload.get("evse") or {}
        started = await context.reports.start_201(
            context.charger_id,
            transaction_id,
            TransactionStart(
                evse_id=int(evse.get("id", 1)),
                connector_id=int(evse.get("connectorId", 1)),
                id_token=token,
                meter_start_wh=_first_energy(readings),
                started_at=readings[0].measured_at if readings and event_type == "Ended" else at,
            ),
        )
        verdict = started.verdict
        await context.reports.meter_values(context.charger_id, transaction_id, readings[1:])
    if event_type == "Updated":
        await context.reports.meter_values(context.charger_id, transaction_id, readings)
    elif event_type == "Ended":
        stopped_reason = info.get("stoppedReason", "Local")
        await context.reports.stop(
            context.charger_id,
            transaction_id,
            meter_stop_wh=_last_energy(readings),
            stopped_at=at,
            reason=StopReason(stopped_reason)
            if stopped_reason in StopReason._value2member_map_
            else StopReason.OTHER,
            readings=readings,
        )
    if token is None:
        return {}
    if verdict is None:
        verdict = await context.reports.authorize(token)
    return {"idTokenInfo": _id_token_info(verdict)}


def _first_energy(readings: tuple[MeterReading, ...]) -> int:
    return next((r.energy_wh for r in readings if r.energy_wh is not None), 0)


def _last_energy(readings: tuple[MeterReading, ...]) -> int:
    return next((r.energy_wh for r in reversed(readings) if r.energy_wh is not None), -1)


async def meter_values(context: ChargerContext, payload: Payload) -> Payload:
    # 2.0.1 MeterValues carry no transaction id: transaction readings travel in TransactionEvent (J02).
    return {}


async def data_transfer(context: ChargerContext, payload: Payload) -> Payload:
    return {"status": "UnknownVendorId"}


async def firmware_status_notification(context: ChargerContext, payload: Payload) -> Payload:
    """L01: the progress of the update an UpdateFirmware (`requestId`) asked for."""
    await context.reports.firmware_status(
        context.charger_id, payload["status"], _optional_int(payload.get("requestId"))
    )
    return {}


async def log_status_notification(context: ChargerContext, payload: Payload) -> Payload:
    """N01: the progress of the upload a GetLog (`requestId`) asked for."""
    await context.reports.diagnostics_status(
        context.charger_id, payload["status"], _optional_int(payload.get("requestId"))
    )
    return {}


async def security_event_notification(context: ChargerContext, payload: Payload) -> Payload:
    """A04: a security event the charger pushes (the critical ones of its security log)."""
    await context.reports.security_event(
        context.charger_id,
        event_type=payload["type"],
        occurred_at=parse_timestamp(payload["timestamp"]) or context.clock(),
        tech_info=payload.get("techInfo") or None,
    )
    return {}


async def notify_event(context: ChargerContext, payload: Payload) -> Payload:
    """N07: events of the device model's monitors. A long list comes in several messages (seqNo, tbc), each
    recorded as it arrives, since every event stands on its own."""
    events = tuple(_device_event(context, data) for data in payload["eventData"])
    await context.reports.device_events(context.charger_id, events)
    return {}


def _device_event(context: ChargerContext, data: Payload) -> DeviceEvent:
    component = data["component"]
    evse = component.get("evse") or {}
    variable = data["variable"]
    return DeviceEvent(
        event_id=int(data["eventId"]),
        occurred_at=parse_timestamp(data["timestamp"]) or context.clock(),
        trigger=data["trigger"],
        actual_value=data["actualValue"],
        cleared=data.get("cleared", False),
        component=component["name"],
        component_instance=component.get("instance") or None,
        component_evse_id=_optional_int(evse.get("id")),
        component_connector_id=_optional_int(evse.get("connectorId")),
        variable=variable["name"],
        variable_instance=variable.get("instance") or None,
        notification_type=data["eventNotificationType"],
        cause=_optional_int(data.get("cause")),
        variable_monitoring_id=_optional_int(data.get("variableMonitoringId")),
        tech_code=data.get("techCode") or None,
        tech_info=data.get("techInfo") or None,
        transaction_id=data.get("transactionId") or None,
    )


async def notify_report(context: ChargerContext, payload: Payload) -> Payload:
    """B07, B08: one part (seqNo) of the report a GetBaseReport or GetReport (`requestId`) asked for; `tbc`
    says more parts follow. Each attribute of each reported variable becomes one entry."""
    entries = tuple(
        _report_entry(data, attribute)
        for data in payload.get("reportData", ())
        for attribute in data["variableAttribute"]
    )
    await context.reports.device_report(
        context.charger_id,
        request_id=int(payload["requestId"]),
        seq_no=int(payload["seqNo"]),
        complete=not payload.get("tbc", False),
        entries=entries,
    )
    return {}


def _report_entry(data: Payload, attribute: Payload) -> ReportEntry:
    component = data["component"]
    evse = component.get("evse") or {}
    variable = data["variable"]
    return ReportEntry(
        component=component["name"],
        component_instance=component.get("instance") or None,
        evse_id=_optional_int(evse.get("id")),
        connector_id=_optional_int(evse.get("connectorId")),
        variable=variable["name"],
        variable_instance=variable.get("instance") or None,
        # The schema's defaults (AttributeEnumType, MutabilityEnumType) for an attribute that leaves them out.
        attribute_type=attribute.get("type", "Actual"),
        value=attribute.get("value"),
        mutability=attribute.get("mutability", "ReadWrite"),
    )


def _optional_int(value: Any) -> int | None:
    # The 2.0.1 schemas are draft-06, where 1.0 is a valid integer.
    return None if value is None else int(value)


HANDLERS: Handlers = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "TransactionEvent": transaction_event,
    "MeterValues": meter_values,
    "NotifyReport": notify_report,
    "NotifyEvent": notify_event,
    "SecurityEventNotification": security_event_notification,
    "FirmwareStatusNotification": firmware_status_notification,
    "LogStatusNotification": log_status_notification,
    "DataTransfer": data_transfer,
}
