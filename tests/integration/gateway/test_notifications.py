"""Notifications (firmware and log uploads, security and device events, device reports) become Charger events.

Each is committed before the CALLRESULT, so the events are read right after `call` returns, while the charger
is still connected. 2.0.1 tests carry the official CSMS test case id (Part 6) where one exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from ocpp.exceptions import GenericError
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms.domain import Charger, charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, Repository
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, now

V16 = "ocpp1.6"
V201 = "ocpp2.0.1"


def _iso(offset_seconds: float = 0) -> str:
    return (now() + timedelta(seconds=offset_seconds)).isoformat()


async def _reported(env: GatewayEnv, charge_point_id: str, topic: str) -> list[dict[str, Any]]:
    """The data of the charger's events of `topic`, in order."""
    events = await env.store.read_stream(charger_id_for(charge_point_id))
    return [event.data for event in events if event.topic == topic]


async def _rebuilt(env: GatewayEnv, charge_point_id: str) -> Charger:
    """The charger rebuilt from its stored events, not the cached instance the gateway may be using."""
    return await Repository(env.store, EventCodec(EVENT_TYPES)).get(charger_id_for(charge_point_id), Charger)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


# OCPP 1.6


async def test_firmware_status_notifications_16(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    statuses = ["Downloading", "Downloaded", "Installing", "Installed"]
    async with connect(gateway_env.url, charge_point_id, password, V16) as charger:
        answers = [await charger.call(call16.FirmwareStatusNotification(status=s)) for s in statuses]
        reported = await _reported(gateway_env, charge_point_id, "Charger.FirmwareStatusReported")
        replayed = await charger.call(call16.FirmwareStatusNotification(status="Installed"))
        after_replay = await _reported(gateway_env, charge_point_id, "Charger.FirmwareStatusReported")

    assert answers == [result16.FirmwareStatusNotification()] * 4
    assert replayed == result16.FirmwareStatusNotification()
    assert [(data["status"], data["request_id"]) for data in reported] == [(s, None) for s in statuses]
    assert after_replay == reported
    charger_state = await _rebuilt(gateway_env, charge_point_id)
    assert charger_state.firmware_status == "Installed"


async def test_diagnostics_status_notifications_16(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password, V16) as charger:
        uploading = await charger.call(call16.DiagnosticsStatusNotification(status="Uploading"))
        first = await _reported(gateway_env, charge_point_id, "Charger.DiagnosticsStatusReported")
        await charger.call(call16.DiagnosticsStatusNotification(status="Uploading"))  # a resend
        uploaded = await charger.call(call16.DiagnosticsStatusNotification(status="Uploaded"))
        reported = await _reported(gateway_env, charge_point_id, "Charger.DiagnosticsStatusReported")

    assert uploading == uploaded == result16.DiagnosticsStatusNotification()
    assert [data["status"] for data in first] == ["Uploading"]
    assert [(data["status"], data["request_id"]) for data in reported] == [
        ("Uploading", None),
        ("Uploaded", None),
    ]


# OCPP 2.0.1


async def test_TC_L_01_CSMS_secure_firmware_update_installation_successful(gateway_env: GatewayEnv) -> None:
    """Steps 3-18: the charger's progress reports, with the reboot into the new firmware between them.

    (Step 1, the CSMS's UpdateFirmwareRequest, is not sent by this gateway yet; the charger uses requestId 1.)
    """
    charge_point_id, password = await gateway_env.register_charger()
    before_reboot = ["Downloading", "Downloaded", "SignatureVerified", "Installing", "InstallRebooting"]
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        answers = [
            await charger.call(call201.FirmwareStatusNotification(status=status, request_id=1))
            for status in before_reboot
        ]
        boot = await charger.call(
            call201.BootNotification(
                charging_station={"model": "Wallbox X", "vendor_name": "Acme", "firmware_version": "1.3.0"},
                reason="FirmwareUpdate",
            )
        )
        installed = await charger.call(call201.FirmwareStatusNotification(status="Installed", request_id=1))
        reported = await _reported(gateway_env, charge_point_id, "Charger.FirmwareStatusReported")
        topics = await gateway_env.topics(charge_point_id)
        await charger.call(call201.FirmwareStatusNotification(status="Installed", request_id=1))  # a resend
        after_resend = await _reported(gateway_env, charge_point_id, "Charger.FirmwareStatusReported")

    assert answers == [result201.FirmwareStatusNotification()] * 5
    assert boot.status == "Accepted"
    assert installed == result201.FirmwareStatusNotification()
    assert [(data["status"], data["request_id"]) for data in reported] == [
        *((status, 1) for status in before_reboot),
        ("Installed", 1),
    ]
    assert after_resend == reported
    assert topics[-3:] == [  # the reboot into the new firmware, between InstallRebooting and Installed
        "Charger.FirmwareStatusReported",
        "Charger.BootRecorded",
        "Charger.FirmwareStatusReported",
    ]


async def test_TC_N_25_CSMS_retrieve_log_diagnostics_log_success(gateway_env: GatewayEnv) -> None:
    """Steps 3-6: LogStatusNotification Uploading then Uploaded, with the GetLog request's id.

    (Step 1, the CSMS's GetLogRequest, is not sent by this gateway yet; the charger uses requestId 12.)
    """
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        uploading = await charger.call(call201.LogStatusNotification(status="Uploading", request_id=12))
        uploaded = await charger.call(call201.LogStatusNotification(status="Uploaded", request_id=12))
        reported = await _reported(gateway_env, charge_point_id, "Charger.DiagnosticsStatusReported")
        await charger.call(call201.LogStatusNotification(status="Uploaded", request_id=12))  # a resend
        after_resend = await _reported(gateway_env, charge_point_id, "Charger.DiagnosticsStatusReported")
        # Idle, sent on a TriggerMessage when no upload is going on, has no request id.
        await charger.call(call201.LogStatusNotification(status="Idle"))
        with_idle = await _reported(gateway_env, charge_point_id, "Charger.DiagnosticsStatusReported")

    assert uploading == uploaded == result201.LogStatusNotification()
    assert [(data["status"], data["request_id"]) for data in reported] == [
        ("Uploading", 12),
        ("Uploaded", 12),
    ]
    assert after_resend == reported
    assert (with_idle[-1]["status"], with_idle[-1]["request_id"]) == ("Idle", None)
    charger_state = await _rebuilt(gateway_env, charge_point_id)
    assert (charger_state.diagnostics_status, charger_state.firmware_status) == ("Idle", None)


async def test_security_event_notification_is_kept_as_reported(gateway_env: GatewayEnv) -> None:
    """A04 (Part 6 has no CSMS test case for it): every notification is recorded, a resend included."""
    charge_point_id, password = await gateway_env.register_charger()
    occurred = _iso(-30)
    tech_info = "t" * 255  # the schema's maximum, which the domain accepts as is
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        answer = await charger.call(
            call201.SecurityEventNotification(
                type="TamperDetectionActivated", timestamp=occurred, tech_info=tech_info
            )
        )
        reported = await _reported(gateway_env, charge_point_id, "Charger.SecurityEventReported")
        await charger.call(call201.SecurityEventNotification(type="ResetOrReboot", timestamp=occurred))
        both = await _reported(gateway_env, charge_point_id, "Charger.SecurityEventReported")

    assert answer == result201.SecurityEventNotification()
    [tamper] = reported
    assert (tamper["event_type"], tamper["tech_info"]) == ("TamperDetectionActivated", tech_info)
    assert _instant(tamper["occurred_at"]) == _instant(occurred)
    assert [(data["event_type"], data["tech_info"]) for data in both] == [
        ("TamperDetectionActivated", tech_info),
        ("ResetOrReboot", None),
    ]


def _event_data(event_id: int, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "timestamp": at,
        "trigger": "Delta",
        "actual_value": "true",
        "component": {"name": "ConnectorPlugRetentionLock"},
        "variable": {"name": "Problem"},
        "event_notification_type": "HardWiredNotification",
        **fields,
    }


async def test_TC_G_20_CSMS_connector_lock_failure(gateway_env: GatewayEnv) -> None:
    """NotifyEvent: Delta, ConnectorPlugRetentionLock.Problem = "true"; then a replay, and a clearing."""
    charge_point_id, password = await gateway_env.register_charger()
    problem_at = _iso(-60)
    cleared_at = _iso(-10)
    problem = _event_data(
        101,
        problem_at,
        component={"name": "ConnectorPlugRetentionLock", "evse": {"id": 1, "connector_id": 1}},
        tech_code="E42",
        tech_info="lock motor stalled",
    )
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        answer = await charger.call(call201.NotifyEvent(generated_at=_iso(), seq_no=0, event_data=[problem]))
        first = await _reported(gateway_env, charge_point_id, "Charger.DeviceEventsReported")
        replay = await charger.call(call201.NotifyEvent(generated_at=_iso(), seq_no=0, event_data=[problem]))
        after_replay = await _reported(gateway_env, charge_point_id, "Charger.DeviceEventsReported")
        cleared = _event_data(102, cleared_at, actual_value="false", cleared=True, cause=101)
        await charger.call(
            call201.NotifyEvent(generated_at=_iso(), seq_no=0, event_data=[problem, cleared], tbc=False)
        )
        reported = await _reported(gateway_env, charge_point_id, "Charger.DeviceEventsReported")

    assert answer == replay == result201.NotifyEvent()
    assert after_replay == first
    [[event]] = [data["events"] for data in first]
    occurred_at = event.pop("occurred_at")
    assert _instant(occurred_at) == _instant(problem_at)
    assert event == {
        "event_id": 101,
        "trigger": "Delta",
        "actual_value": "true",
        "cleared": False,
        "component": "ConnectorPlugRetentionLock",
        "component_instance": None,
        "component_evse_id": 1,
        "component_connector_id": 1,
        "variable": "Problem",
        "variable_instance": None,
        "notification_type": "HardWiredNotification",
        "cause": None,
        "variable_monitoring_id": None,
        "tech_code": "E42",
        "tech_info": "lock motor stalled",
        "transaction_id": None,
    }
    # The message repeating event 101 beside the new 102 records only 102.
    assert len(reported) == 2
    [clearing] = reported[1]["events"]
    assert (clearing["event_id"], clearing["cleared"], clearing["cause"], clearing["actual_value"]) == (
        102,
        True,
        101,
        "false",
    )


def _report_data(component: dict[str, Any], variable: str, *attributes: dict[str, Any]) -> dict[str, Any]:
    return {"component": component, "variable": {"name": variable}, "variable_attribute": list(attributes)}


async def test_TC_B_13_CSMS_full_inventory_arrives_in_parts(gateway_env: GatewayEnv) -> None:
    """Post scenario: "CSMS receives all NotifyReportRequest message for this requestId". Each part (seqNo) is
    one event, the last one (tbc false) complete; a resent part adds nothing.

    (Step 1, the CSMS's GetBaseReportRequest, is not sent by this gateway yet; the charger uses requestId 3.)
    """
    charge_point_id, password = await gateway_env.register_charger()
    part_0 = [
        _report_data(
            {"name": "OCPPCommCtrlr"},
            "HeartbeatInterval",
            {"value": "300"},  # type and mutability left to the schema's defaults
            {"type": "MaxSet", "value": "86400", "mutability": "ReadOnly"},
        ),
        _report_data({"name": "SecurityCtrlr"}, "BasicAuthPassword", {"mutability": "WriteOnly"}),
    ]
    part_1 = [
        _report_data(
            {"name": "Connector", "evse": {"id": 1, "connector_id": 1}},
            "AvailabilityState",
            {"type": "Actual", "value": "Available", "mutability": "ReadOnly"},
        )
    ]
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        first = await charger.call(
            call201.NotifyReport(request_id=3, generated_at=_iso(), seq_no=0, report_data=part_0, tbc=True)
        )
        last = await charger.call(
            call201.NotifyReport(request_id=3, generated_at=_iso(), seq_no=1, report_data=part_1)
        )
        reported = await _reported(gateway_env, charge_point_id, "Charger.DeviceReportReceived")
        await charger.call(
            call201.NotifyReport(request_id=3, generated_at=_iso(), seq_no=1, report_data=part_1)
        )
        after_resend = await _reported(gateway_env, charge_point_id, "Charger.DeviceReportReceived")

    assert first == last == result201.NotifyReport()
    assert after_resend == reported
    assert [(data["request_id"], data["seq_no"], data["complete"]) for data in reported] == [
        (3, 0, False),
        (3, 1, True),
    ]
    entries = [
        (e["component"], e["variable"], e["attribute_type"], e["value"], e["mutability"])
        for e in reported[0]["entries"]
    ]
    assert entries == [
        ("OCPPCommCtrlr", "HeartbeatInterval", "Actual", "300", "ReadWrite"),
        ("OCPPCommCtrlr", "HeartbeatInterval", "MaxSet", "86400", "ReadOnly"),
        ("SecurityCtrlr", "BasicAuthPassword", "Actual", None, "WriteOnly"),
    ]
    assert reported[1]["entries"] == [
        {
            "component": "Connector",
            "component_instance": None,
            "evse_id": 1,
            "connector_id": 1,
            "variable": "AvailabilityState",
            "variable_instance": None,
            "attribute_type": "Actual",
            "value": "Available",
            "mutability": "ReadOnly",
        }
    ]


async def test_an_empty_last_part_still_completes_the_report(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        await charger.call(call201.NotifyReport(request_id=4, generated_at=_iso(), seq_no=0))
        reported = await _reported(gateway_env, charge_point_id, "Charger.DeviceReportReceived")

    assert [(data["seq_no"], data["complete"], data["entries"]) for data in reported] == [(0, True, [])]


async def test_an_event_the_domain_refuses_is_not_acknowledged(gateway_env: GatewayEnv) -> None:
    """The schema lets a component's name be empty; a device model variable without a name is no fact, so the
    charger hears a CALLERROR and nothing is recorded (only what is committed is acknowledged)."""
    charge_point_id, password = await gateway_env.register_charger()
    nameless = _event_data(7, _iso(), component={"name": ""})
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        with pytest.raises(GenericError, match="component"):
            await charger.call(
                call201.NotifyEvent(generated_at=_iso(), seq_no=0, event_data=[nameless]), suppress=False
            )
        reported = await _reported(gateway_env, charge_point_id, "Charger.DeviceEventsReported")

    assert reported == []
