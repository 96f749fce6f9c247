"""Charger: registration, credentials, boot, connectivity, connector status and start checks."""

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
    InvalidValue,
    OcppVersion,
    SessionConflict,
    UnknownConnector,
)
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
