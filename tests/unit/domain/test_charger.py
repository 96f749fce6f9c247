"""Charger: registration, credentials, connectivity, connector status, start checks and reported data."""

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from csms.domain import (
    Availability,
    BootInfo,
    Charger,
    ChargerDecommissioned,
    ConnectorStatus,
    ConnectorUnavailable,
    DeviceEvent,
    InvalidValue,
    OcppVersion,
    ReportEntry,
    SessionConflict,
    UnknownConnector,
)
from csms.domain.charger import DEVICE_EVENT_MEMORY, DEVICE_REPORT_MEMORY
from tests.unit.domain.support import (
    CHARGER_ID,
    COMPANY_ID,
    OTHER_SESSION_ID,
    SESSION_ID,
    STATION_ID,
    at,
    given,
    history,
    new_events,
    topics,
    type2_evse,
)

CONNECTION_A = UUID("00000000-0000-4000-8000-00000000000a")
CONNECTION_B = UUID("00000000-0000-4000-8000-00000000000b")


def register(charge_point_id: str = "CP-AMS-0001") -> Charger:
    return Charger.register(
        id=CHARGER_ID,
        company_id=COMPANY_ID,
        station_id=STATION_ID,
        charge_point_id=charge_point_id,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        evses=(type2_evse(1), type2_evse(2)),
        at=at(),
    )


def registered() -> list[Any]:
    return history(register())


def connected_and_available() -> list[Any]:
    charger = register()
    charger.connected(OcppVersion.OCPP16, at(1), connection_id=CONNECTION_A)
    for evse_id in (1, 2):
        charger.report_connector_status(
            evse_id, 1, ConnectorStatus.AVAILABLE, None, reported_at=at(1), at=at(1)
        )
    return history(charger)


class TestRegistration:
    def test_register_records_identity_credentials_and_layout(self) -> None:
        charger = register()

        [registered_event] = new_events(charger)
        assert topics([registered_event]) == ["Charger.Registered"]
        assert registered_event.charge_point_id == "CP-AMS-0001"
        assert registered_event.evses == (type2_evse(1), type2_evse(2))
        assert not charger.is_connected

    @pytest.mark.parametrize("charge_point_id", ["", "x" * 49, "CP:1", "site/CP1", "CP 1"])
    def test_refuses_an_invalid_ocpp_identity(self, charge_point_id: str) -> None:
        with pytest.raises(InvalidValue, match="charge point id"):
            register(charge_point_id)

    def test_refuses_duplicate_evse_ids(self) -> None:
        with pytest.raises(InvalidValue, match="duplicate EVSE ids"):
            Charger.register(
                id=CHARGER_ID,
                company_id=COMPANY_ID,
                station_id=STATION_ID,
                charge_point_id="CP1",
                password_hash="hash",
                evses=(type2_evse(1), type2_evse(1)),
                at=at(),
            )

    def test_rotate_password_records_the_new_hash_once(self) -> None:
        charger = given(Charger, *registered())

        charger.rotate_password("new-hash", at(1))
        charger.rotate_password("new-hash", at(2))

        [rotated] = new_events(charger)
        assert topics([rotated]) == ["Charger.PasswordRotated"]
        assert rotated.password_hash == "new-hash"

    def test_configure_evses_replaces_the_layout(self) -> None:
        charger = given(Charger, *registered())

        charger.configure_evses((type2_evse(1),), at(1))

        assert topics(new_events(charger)) == ["Charger.EvsesConfigured"]
        assert charger.evse(2) is None

    def test_configure_evses_keeps_a_connector_holding_a_session(self) -> None:
        charger = given(Charger, *registered())
        charger.assign_session(2, 1, SESSION_ID, at(1))

        with pytest.raises(SessionConflict, match="held by session"):
            charger.configure_evses((type2_evse(1),), at(2))


class TestBootAndConnectivity:
    def test_record_boot_ignores_an_unchanged_reboot(self) -> None:
        charger = given(Charger, *registered())

        charger.record_boot("Alfen", "NG9", "ACE0001", "4.12.0", at(1))
        charger.record_boot("Alfen", "NG9", "ACE0001", "4.12.0", at(2))
        charger.record_boot("Alfen", "NG9", "ACE0001", "4.13.1", at(3))

        events = new_events(charger)
        assert topics(events) == ["Charger.BootRecorded", "Charger.BootRecorded"]
        assert charger.boot == BootInfo("Alfen", "NG9", "ACE0001", "4.13.1")

    def test_connect_and_disconnect(self) -> None:
        charger = given(Charger, *registered())

        charger.connected(OcppVersion.OCPP201, at(1), connection_id=CONNECTION_A)
        assert charger.is_connected
        assert charger.protocol is OcppVersion.OCPP201

        charger.disconnected(at(2), "closed by charger (1006)", connection_id=CONNECTION_A)

        events = new_events(charger)
        assert topics(events) == ["Charger.Connected", "Charger.Disconnected"]
        assert events[1].reason == "closed by charger (1006)"
        assert not charger.is_connected

    def test_a_late_disconnect_of_a_replaced_connection_is_ignored(self) -> None:
        charger = given(Charger, *registered())
        charger.connected(OcppVersion.OCPP16, at(1), connection_id=CONNECTION_A)
        charger.connected(OcppVersion.OCPP16, at(2), connection_id=CONNECTION_B)
        past = registered() + new_events(charger)
        charger = given(Charger, *past)

        charger.disconnected(at(3), "replaced", connection_id=CONNECTION_A)

        assert new_events(charger) == []
        assert charger.is_connected

    def test_a_successor_recorded_after_the_replaced_connections_disconnect_still_connects(self) -> None:
        # The successor authenticated at 2; the replaced connection's disconnect (at 3) got recorded first.
        charger = given(Charger, *registered())
        charger.connected(OcppVersion.OCPP16, at(1), connection_id=CONNECTION_A)
        charger.disconnected(at(3), "replaced", connection_id=CONNECTION_A)
        charger = given(Charger, *(registered() + new_events(charger)))

        charger.connected(OcppVersion.OCPP16, at(2), connection_id=CONNECTION_B)

        assert topics(new_events(charger)) == ["Charger.Connected"]
        assert charger.is_connected
        assert charger.connection_id == CONNECTION_B

    def test_a_connect_older_than_the_last_connect_is_ignored(self) -> None:
        charger = given(Charger, *registered())
        charger.connected(OcppVersion.OCPP16, at(2), connection_id=CONNECTION_B)
        charger = given(Charger, *(registered() + new_events(charger)))

        charger.connected(OcppVersion.OCPP16, at(1), connection_id=CONNECTION_A)

        assert new_events(charger) == []
        assert charger.connection_id == CONNECTION_B

    def test_a_disconnect_older_than_the_last_connect_is_ignored(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.disconnected(at(0.5), "stale")

        assert new_events(charger) == []

    def test_disconnecting_twice_records_once(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.disconnected(at(2), "gone")
        charger.disconnected(at(3), "gone")

        assert topics(new_events(charger)) == ["Charger.Disconnected"]

    def test_a_decommissioned_charger_may_not_connect(self) -> None:
        charger = given(Charger, *registered())
        charger.decommission(at(1))
        charger.decommission(at(2))
        assert topics(new_events(charger)) == ["Charger.Decommissioned"]

        with pytest.raises(ChargerDecommissioned):
            charger.connected(OcppVersion.OCPP16, at(3))


class TestConnectorStatus:
    def test_a_status_change_is_recorded_with_the_chargers_time(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.report_connector_status(
            1, 1, ConnectorStatus.FAULTED, "GroundFailure", reported_at=at(5), at=at(6)
        )

        [changed] = new_events(charger)
        assert topics([changed]) == ["Charger.ConnectorStatusChanged"]
        assert (changed.evse_id, changed.connector_id) == (1, 1)
        assert changed.status is ConnectorStatus.FAULTED
        assert changed.error_code == "GroundFailure"
        assert changed.reported_at == at(5)
        assert changed.timestamp == at(6)

    def test_an_identical_status_is_ignored(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, reported_at=at(5), at=at(5))

        assert new_events(charger) == []

    def test_a_report_older_than_the_stored_one_is_ignored(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.report_connector_status(1, 1, ConnectorStatus.CHARGING, None, reported_at=at(10), at=at(10))
        past = connected_and_available() + new_events(charger)
        charger = given(Charger, *past)

        # Replayed from the charger's offline queue: Preparing happened before Charging.
        charger.report_connector_status(1, 1, ConnectorStatus.PREPARING, None, reported_at=at(9), at=at(11))

        assert new_events(charger) == []
        state = charger.connector_state(1, 1)
        assert state is not None
        assert state.status is ConnectorStatus.CHARGING

    def test_the_charger_as_a_whole_reports_as_evse_0(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.report_connector_status(0, 0, ConnectorStatus.UNAVAILABLE, None, reported_at=at(2), at=at(2))

        assert topics(new_events(charger)) == ["Charger.ConnectorStatusChanged"]


class TestStartChecks:
    def test_an_available_connector_of_a_connected_charger_can_start(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.ensure_can_start(1, 1)

    def test_preparing_can_start(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.report_connector_status(1, 1, ConnectorStatus.PREPARING, None, reported_at=at(2), at=at(2))

        charger.ensure_can_start(1, 1)

    @pytest.mark.parametrize(
        "status",
        [ConnectorStatus.CHARGING, ConnectorStatus.FAULTED, ConnectorStatus.UNAVAILABLE],
    )
    def test_a_busy_or_broken_connector_cannot_start(self, status: ConnectorStatus) -> None:
        charger = given(Charger, *connected_and_available())
        charger.report_connector_status(1, 1, status, None, reported_at=at(2), at=at(2))

        with pytest.raises(ConnectorUnavailable, match=f"connector 1/1 of CP-AMS-0001 is {status}"):
            charger.ensure_can_start(1, 1)

    def test_a_connector_without_any_status_cannot_start(self) -> None:
        charger = given(Charger, *registered())
        charger.connected(OcppVersion.OCPP16, at(1))

        with pytest.raises(ConnectorUnavailable, match="is unknown"):
            charger.ensure_can_start(1, 1)

    def test_a_disconnected_charger_cannot_start(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.disconnected(at(2), "network lost")

        with pytest.raises(ConnectorUnavailable, match="not connected"):
            charger.ensure_can_start(1, 1)

    def test_an_inoperative_charger_cannot_start(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.change_availability(Availability.INOPERATIVE, at(2))

        assert topics(new_events(charger)) == ["Charger.AvailabilityChanged"]
        with pytest.raises(ConnectorUnavailable, match="inoperative"):
            charger.ensure_can_start(1, 1)

    def test_an_unknown_connector_is_refused(self) -> None:
        charger = given(Charger, *connected_and_available())

        with pytest.raises(UnknownConnector, match="no connector 2 on EVSE 1"):
            charger.ensure_can_start(1, 2)


class TestSessionsOnConnectors:
    def test_a_second_session_on_one_connector_conflicts(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.assign_session(1, 1, SESSION_ID, at(2))
        [assigned] = new_events(charger)
        assert topics([assigned]) == ["Charger.SessionAssigned"]
        assert assigned.session_id == SESSION_ID

        # The connector still reads Available until the charger starts: the hold decides.
        with pytest.raises(SessionConflict, match=str(SESSION_ID)):
            charger.ensure_can_start(1, 1)
        with pytest.raises(SessionConflict):
            charger.assign_session(1, 1, OTHER_SESSION_ID, at(3))
        charger.ensure_can_start(2, 1)

    def test_assigning_the_same_session_again_changes_nothing(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.assign_session(1, 1, SESSION_ID, at(2))
        new_events(charger)

        charger.assign_session(1, 1, SESSION_ID, at(3))

        assert new_events(charger) == []

    def test_release_frees_the_connector_once(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.assign_session(1, 1, SESSION_ID, at(2))

        charger.release_session(1, 1, SESSION_ID, at(3))
        charger.release_session(1, 1, SESSION_ID, at(4))
        charger.release_session(1, 1, OTHER_SESSION_ID, at(4))

        assert topics(new_events(charger)) == [
            "Charger.SessionAssigned",
            "Charger.SessionReleased",
        ]
        assert charger.active_session_id(1, 1) is None
        charger.ensure_can_start(1, 1)


def test_rebuilding_from_events_reproduces_the_state() -> None:
    charger = register()
    charger.record_boot("Alfen", "NG9", None, "4.12.0", at(1))
    charger.connected(OcppVersion.OCPP16, at(1), connection_id=CONNECTION_A)
    charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, reported_at=at(2), at=at(2))
    charger.assign_session(1, 1, SESSION_ID, at(3))
    charger.change_availability(Availability.INOPERATIVE, at(4))
    charger.disconnected(at(5) + timedelta(seconds=1), "bye")

    assert given(Charger, *history(charger)) == charger


class TestTransactionAnomalies:
    def test_an_anomaly_is_recorded_as_a_trace_and_changes_nothing_else(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.record_transaction_anomaly("4711", "StopTransaction for an unknown transaction", at(5))

        [anomaly] = new_events(charger)
        assert topics([anomaly]) == ["Charger.TransactionAnomalyRecorded"]
        assert (anomaly.transaction_id, anomaly.description) == (
            "4711",
            "StopTransaction for an unknown transaction",
        )
        assert charger.is_connected
        assert charger.active_session_id(1, 1) is None

    def test_an_anomaly_needs_a_transaction_id_and_a_description(self) -> None:
        charger = given(Charger, *connected_and_available())
        with pytest.raises(InvalidValue):
            charger.record_transaction_anomaly("", "no id", at(5))
        with pytest.raises(InvalidValue):
            charger.record_transaction_anomaly("1", "", at(5))


def device_event(
    event_id: int = 1,
    occurred: float = 5,
    actual_value: str = "Available",
    *,
    cleared: bool = False,
) -> DeviceEvent:
    return DeviceEvent(
        event_id=event_id,
        occurred_at=at(occurred),
        trigger="Delta",
        actual_value=actual_value,
        cleared=cleared,
        component="Connector",
        component_instance=None,
        component_evse_id=1,
        component_connector_id=1,
        variable="AvailabilityState",
        variable_instance=None,
        notification_type="HardWiredNotification",
        cause=None,
        variable_monitoring_id=None,
        tech_code=None,
        tech_info=None,
        transaction_id=None,
    )


def report_entry(variable: str = "HeartbeatInterval", value: str | None = "300") -> ReportEntry:
    return ReportEntry(
        component="OCPPCommCtrlr",
        component_instance=None,
        evse_id=None,
        connector_id=None,
        variable=variable,
        variable_instance=None,
        attribute_type="Actual",
        value=value,
        mutability="ReadWrite",
    )


class TestFirmwareAndDiagnostics:
    def test_firmware_progress_is_recorded_status_by_status(self) -> None:
        charger = given(Charger, *connected_and_available())

        for minute, status in enumerate(("Downloading", "Downloaded", "Installing", "Installed"), start=2):
            charger.record_firmware_status(status, 42, at(minute))

        events = new_events(charger)
        assert topics(events) == ["Charger.FirmwareStatusReported"] * 4
        assert [(e.status, e.request_id) for e in events] == [
            ("Downloading", 42),
            ("Downloaded", 42),
            ("Installing", 42),
            ("Installed", 42),
        ]
        assert (charger.firmware_status, charger.firmware_request_id) == ("Installed", 42)

    def test_a_repeated_firmware_status_of_the_same_request_is_ignored(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.record_firmware_status("Downloading", 42, at(2))
        past = connected_and_available() + new_events(charger)
        charger = given(Charger, *past)

        charger.record_firmware_status("Downloading", 42, at(3))

        assert new_events(charger) == []

    def test_the_same_status_of_another_request_is_recorded(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.record_firmware_status("Downloading", 42, at(2))
        charger.record_firmware_status("Downloading", 43, at(3))
        charger.record_firmware_status("Idle", None, at(4))

        events = new_events(charger)
        assert [(e.status, e.request_id) for e in events] == [
            ("Downloading", 42),
            ("Downloading", 43),
            ("Idle", None),
        ]

    def test_a_1_6_update_after_another_is_recorded_again(self) -> None:
        # 1.6 does not number the requests: only an immediate repeat is a replay.
        charger = given(Charger, *connected_and_available())
        for minute, status in enumerate(("Downloading", "Installed", "Downloading", "Installed"), start=2):
            charger.record_firmware_status(status, None, at(minute))

        assert len(new_events(charger)) == 4

    def test_diagnostics_progress_with_its_repeat_rule(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.record_diagnostics_status("Uploading", 7, at(2))
        charger.record_diagnostics_status("Uploading", 7, at(3))
        charger.record_diagnostics_status("Uploaded", 7, at(4))

        events = new_events(charger)
        assert topics(events) == ["Charger.DiagnosticsStatusReported"] * 2
        assert [(e.status, e.request_id, e.timestamp) for e in events] == [
            ("Uploading", 7, at(2)),
            ("Uploaded", 7, at(4)),
        ]
        assert (charger.diagnostics_status, charger.diagnostics_request_id) == ("Uploaded", 7)
        assert charger.firmware_status is None

    def test_a_status_is_required(self) -> None:
        charger = given(Charger, *connected_and_available())
        with pytest.raises(InvalidValue, match="status"):
            charger.record_firmware_status(" ", None, at(2))
        with pytest.raises(InvalidValue, match="request_id"):
            charger.record_diagnostics_status("Uploading", True, at(2))


class TestSecurityEvents:
    def test_a_security_event_is_recorded_with_the_chargers_time(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.record_security_event("TamperDetectionActivated", at(3), "lid opened", at(4))

        [reported] = new_events(charger)
        assert topics([reported]) == ["Charger.SecurityEventReported"]
        assert (reported.event_type, reported.occurred_at, reported.tech_info, reported.timestamp) == (
            "TamperDetectionActivated",
            at(3),
            "lid opened",
            at(4),
        )

    def test_every_notification_is_kept(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.record_security_event("InvalidMessages", at(3), None, at(4))
        charger.record_security_event("InvalidMessages", at(3), None, at(5))

        assert topics(new_events(charger)) == ["Charger.SecurityEventReported"] * 2

    def test_lengths_are_those_of_the_schema(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.record_security_event("x" * 50, at(3), "y" * 255, at(4))
        with pytest.raises(InvalidValue, match="event_type"):
            charger.record_security_event("x" * 51, at(3), None, at(4))
        with pytest.raises(InvalidValue, match="tech_info"):
            charger.record_security_event("ResetOrReboot", at(3), "y" * 256, at(4))
        with pytest.raises(InvalidValue, match="occurred_at"):
            charger.record_security_event("ResetOrReboot", at(3).replace(tzinfo=None), None, at(4))


class TestDeviceEvents:
    def test_events_are_recorded_as_reported(self) -> None:
        charger = given(Charger, *connected_and_available())
        events = (device_event(1), device_event(2, actual_value="", cleared=True))

        charger.record_device_events(events, at(6))

        [reported] = new_events(charger)
        assert topics([reported]) == ["Charger.DeviceEventsReported"]
        assert reported.events == events
        assert reported.timestamp == at(6)

    def test_a_replayed_event_is_dropped(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.record_device_events((device_event(1), device_event(2)), at(6))
        past = connected_and_available() + new_events(charger)
        charger = given(Charger, *past)

        charger.record_device_events((device_event(1), device_event(2)), at(7))
        assert new_events(charger) == []

        # Partly new: only the new one; an id reused at another time is another event.
        charger.record_device_events((device_event(2), device_event(3), device_event(1, occurred=9)), at(8))
        [reported] = new_events(charger)
        assert [e.key for e in reported.events] == [(3, at(5)), (1, at(9))]

    def test_a_duplicate_within_one_message_is_recorded_once(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.record_device_events((device_event(1), device_event(1)), at(6))

        [reported] = new_events(charger)
        assert reported.events == (device_event(1),)

    def test_the_memory_of_reported_events_is_bounded(self) -> None:
        charger = given(Charger, *connected_and_available())
        batch = tuple(device_event(n) for n in range(DEVICE_EVENT_MEMORY))
        charger.record_device_events(batch, at(6))
        charger.record_device_events((device_event(DEVICE_EVENT_MEMORY),), at(7))
        new_events(charger)

        # Event 0 has been forgotten, so it counts as new again; event 1 is still remembered.
        charger.record_device_events((device_event(0), device_event(1)), at(8))

        [reported] = new_events(charger)
        assert reported.events == (device_event(0),)

    def test_an_empty_or_invalid_list_records_nothing(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.record_device_events((), at(6))
        assert new_events(charger) == []
        with pytest.raises(InvalidValue, match="tuple"):
            charger.record_device_events([device_event(1)], at(6))  # type: ignore[arg-type]

    def test_a_device_event_is_validated(self) -> None:
        with pytest.raises(InvalidValue, match="actual_value"):
            device_event(actual_value="x" * 2501)
        with pytest.raises(InvalidValue, match="occurred_at"):
            DeviceEvent(**{**vars(device_event()), "occurred_at": at(1).replace(tzinfo=None)})
        with pytest.raises(InvalidValue, match="component"):
            DeviceEvent(**{**vars(device_event()), "component": ""})
        with pytest.raises(InvalidValue, match="connector needs its EVSE"):
            DeviceEvent(**{**vars(device_event()), "component_evse_id": None})
        with pytest.raises(InvalidValue, match="transaction_id"):
            DeviceEvent(**{**vars(device_event()), "transaction_id": "t" * 37})


class TestDeviceReports:
    def test_each_part_of_a_report_is_one_event(self) -> None:
        charger = given(Charger, *connected_and_available())

        charger.record_device_report(7, 0, False, (report_entry(),), at(2))
        charger.record_device_report(7, 1, True, (report_entry("OfflineThreshold", "60"),), at(3))

        events = new_events(charger)
        assert topics(events) == ["Charger.DeviceReportReceived"] * 2
        assert [(e.request_id, e.seq_no, e.complete) for e in events] == [(7, 0, False), (7, 1, True)]
        assert events[1].entries == (report_entry("OfflineThreshold", "60"),)

    def test_a_repeated_part_is_ignored(self) -> None:
        charger = given(Charger, *connected_and_available())
        charger.record_device_report(7, 0, False, (report_entry(),), at(2))
        past = connected_and_available() + new_events(charger)
        charger = given(Charger, *past)

        charger.record_device_report(7, 0, False, (report_entry(),), at(3))
        assert new_events(charger) == []

        charger.record_device_report(8, 0, True, (), at(4))
        [other_request] = new_events(charger)
        assert (other_request.request_id, other_request.seq_no, other_request.entries) == (8, 0, ())

    def test_the_memory_of_report_parts_is_bounded(self) -> None:
        charger = given(Charger, *connected_and_available())
        for seq_no in range(DEVICE_REPORT_MEMORY + 1):
            charger.record_device_report(7, seq_no, False, (), at(2))
        new_events(charger)

        # Part 0 has been forgotten, so it counts as new again; the last part is still remembered.
        charger.record_device_report(7, DEVICE_REPORT_MEMORY, False, (), at(3))
        charger.record_device_report(7, 0, False, (), at(3))

        assert [e.seq_no for e in new_events(charger)] == [0]

    def test_a_write_only_attribute_has_no_value_and_an_empty_one_is_kept(self) -> None:
        assert report_entry(value=None).value is None
        assert report_entry(value="").value == ""
        with pytest.raises(InvalidValue, match="value"):
            report_entry(value="v" * 2501)
        with pytest.raises(InvalidValue, match="variable"):
            report_entry(variable=" ")


def test_rebuilding_from_reported_device_data_reproduces_the_state() -> None:
    charger = register()
    charger.record_firmware_status("Downloading", 42, at(1))
    charger.record_diagnostics_status("Uploaded", 7, at(2))
    charger.record_security_event("ResetOrReboot", at(2), None, at(3))
    charger.record_device_events(tuple(device_event(n) for n in range(DEVICE_EVENT_MEMORY)), at(4))
    charger.record_device_events((device_event(1), device_event(5000), device_event(5001)), at(5))
    charger.record_device_report(7, 0, False, (report_entry(),), at(6))
    charger.record_device_report(7, 1, True, (report_entry(value=None),), at(7))

    rebuilt = given(Charger, *history(charger))

    assert rebuilt == charger
    assert rebuilt.firmware_status == "Downloading"
    # The rebuilt memory is the same, bounded one: 5001 and 2 are remembered, 0 was forgotten.
    rebuilt.record_device_events((device_event(5001), device_event(2), device_event(0)), at(8))
    rebuilt.record_device_report(7, 1, True, (), at(8))
    [reported] = new_events(rebuilt)
    assert reported.events == (device_event(0),)
