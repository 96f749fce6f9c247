"""OCPP 1.6J charger-initiated actions (OCPP 1.6 edition 2, §4) mapped to `ChargerReports`.

1.6 has no EVSE level: connectorId N is EVSE N with its single connector 1, and connectorId 0 is the charge
point as a whole (§4.9).
"""

from __future__ import annotations

from typing import Any

from csms.domain import ConnectorStatus, IdToken, IdTokenType, InvalidValue, StopReason
from write_api.charger_reports import Authorization, TokenVerdict, TransactionStart
from write_api.ocpp.handlers.context import ChargerContext, Handlers, Payload, boot_response, now_iso
from write_api.ocpp.meter_values import parse_timestamp, readings_from_16

# 1.6 AuthorizationStatus has no "Unknown": an idTag we do not know is "Invalid" (§7.2).
_ID_TAG_STATUS = {
    Authorization.ACCEPTED: "Accepted",
    Authorization.BLOCKED: "Blocked",
    Authorization.UNKNOWN: "Invalid",
}


def _id_tag_info(verdict: TokenVerdict) -> Payload:
    return {"status": _ID_TAG_STATUS[verdict.authorization]}


def _id_token(id_tag: Any) -> IdToken | None:
    if not isinstance(id_tag, str):
        return None
    try:
        return IdToken(id_tag, IdTokenType.RFID)
    except InvalidValue:
        return None


async def boot_notification(context: ChargerContext, payload: Payload) -> Payload:
    async def record() -> None:
        await context.reports.boot(
            context.charger_id,
            vendor=payload["chargePointVendor"],
            model=payload["chargePointModel"],
            serial_number=payload.get("chargePointSerialNumber") or payload.get("chargeBoxSerialNumber"),
            firmware=payload.get("firmwareVersion"),
        )

    return await boot_response(context, record)


async def heartbeat(context: ChargerContext, payload: Payload) -> Payload:
    return {"currentTime": now_iso(context)}


async def status_notification(context: ChargerContext, payload: Payload) -> Payload:
    connector = payload["connectorId"]
    error_code = payload["errorCode"]
    # §4.9: the timestamp is optional; without it the report is as of now.
    reported_at = parse_timestamp(payload.get("timestamp")) or context.clock()
    await context.reports.status(
        context.charger_id,
        evse_id=connector,
        connector_id=1 if connector else 0,
        status=ConnectorStatus(payload["status"]),
        error_code=None if error_code == "NoError" else error_code,
        reported_at=reported_at,
    )
    return {}


async def authorize(context: ChargerContext, payload: Payload) -> Payload:
    token = _id_token(payload["idTag"])
    if token is None:
        return {"idTagInfo": {"status": "Invalid"}}
    return {"idTagInfo": _id_tag_info(await context.reports.authorize(token))}


async def start_transaction(context: ChargerContext, payload: Payload) -> Payload:
    started_at = parse_timestamp(payload["timestamp"]) or context.clock()
    started = await context.reports.start_16(
        context.charger_id,
        TransactionStart(
            evse_id=payload["connectorId"],
            connector_id=1,
            id_token=_id_token(payload["idTag"]),
            meter_start_wh=payload["meterStart"],
            started_at=started_at,
        ),
    )
    # §5.x: the transaction is recorded whatever the verdict; a charger told "Invalid" stops it itself.
    return {"transactionId": int(started.transaction_id), "idTagInfo": _id_tag_info(started.verdict)}


async def meter_values(context: ChargerContext, payload: Payload) -> Payload:
    transaction_id = payload.get("transactionId")
    await context.reports.meter_values(
        context.charger_id,
        None if transaction_id is None else str(transaction_id),
        readings_from_16(payload["meterValue"]),
    )
    return {}


async def stop_transaction(context: ChargerContext, payload: Payload) -> Payload:
    # Always acknowledged (never a CALLERROR): a Charge Point retries a StopTransaction it gets no
    # confirmation for (§4.10 "Transaction-related messages"), which would block its queue forever.
    stopped_at = parse_timestamp(payload["timestamp"]) or context.clock()
    reason = payload.get("reason", "Local")
    await context.reports.stop(
        context.charger_id,
        transaction_id=str(payload["transactionId"]),
        meter_stop_wh=payload["meterStop"],
        stopped_at=stopped_at,
        reason=StopReason(reason) if reason in StopReason._value2member_map_ else StopReason.OTHER,
        readings=readings_from_16(payload.get("transactionData", ())),
    )
    token = _id_token(payload.get("idTag"))
    if token is None:
        return {}
    return {"idTagInfo": _id_tag_info(await context.reports.authorize(token))}


async def data_transfer(context: ChargerContext, payload: Payload) -> Payload:
    # No vendor extensions are implemented; §4.3 answers UnknownVendorId for a vendorId we do not know.
    return {"status": "UnknownVendorId"}


async def diagnostics_status_notification(context: ChargerContext, payload: Payload) -> Payload:
    # §4.4: the progress of the upload a GetDiagnostics asked for; 1.6 does not number the requests.
    await context.reports.diagnostics_status(context.charger_id, payload["status"], request_id=None)
    return {}


async def firmware_status_notification(context: ChargerContext, payload: Payload) -> Payload:
    # §4.5: the progress of the update an UpdateFirmware asked for; 1.6 does not number the requests.
    await context.reports.firmware_status(context.charger_id, payload["status"], request_id=None)
    return {}


HANDLERS: Handlers = {
    "BootNotification": boot_notification,
    "Heartbeat": heartbeat,
    "StatusNotification": status_notification,
    "Authorize": authorize,
    "StartTransaction": start_transaction,
    "MeterValues": meter_values,
    "StopTransaction": stop_transaction,
    "DataTransfer": data_transfer,
    "DiagnosticsStatusNotification": diagnostics_status_notification,
    "FirmwareStatusNotification": firmware_status_notification,
}
