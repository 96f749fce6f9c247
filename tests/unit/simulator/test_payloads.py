"""Every message the simulated charger sends, and every answer it gives, is valid against the ocpp schemas."""

from __future__ import annotations

import random
from typing import Any

import pytest

from loadtests.simulator.charger import Charger, Registration
from loadtests.simulator.config import ChargerConfig, OcppVersion
from loadtests.simulator.fleet import protocol_for
from loadtests.simulator.frames import Payload, utc_timestamp
from loadtests.simulator.protocol import BootReason, CallError, Reading
from loadtests.simulator.session import Session, StopCause
from loadtests.simulator.stats import Stats
from tests.unit.simulator.schemas import assert_valid

VERSIONS: list[OcppVersion] = ["1.6", "2.0.1"]


def make_charger(version: OcppVersion, **config: Any) -> Charger:
    charger = Charger(
        "SIM-000001",
        config=ChargerConfig(version=version, connectors=2, **config),
        protocol=protocol_for(version),
        stats=Stats(),
        charges=True,
        rng=random.Random(7),
    )
    charger.registration = Registration.ACCEPTED
    return charger


def reading(energy: int = 1234, power: int = 7400) -> Reading:
    return Reading(energy, power, utc_timestamp(1_700_000_000.25))


def start(charger: Charger, *, remote_start_id: int | None = None, connector: int = 1) -> Session:
    id_type = "Central" if remote_start_id is not None else "ISO14443"
    session = charger.start_session(connector, "TAG-1", id_type, remote_start_id)
    assert session is not None
    return session


def acknowledge_start(charger: Charger, status: str = "Accepted") -> None:
    """Answer the queued start as a 1.6 Central System would (2.0.1 needs no answer to go on)."""
    message = next(m for m in charger.outbox if m.action in ("StartTransaction", "TransactionEvent"))
    if message.action == "StartTransaction":
        charger.protocol.on_result(charger, message, {"transactionId": 42, "idTagInfo": {"status": status}})


def sent_payloads(charger: Charger) -> list[tuple[str, Payload]]:
    """The queued transaction-related messages as they would go out now."""
    out = []
    for message in charger.outbox:
        payload = charger.protocol.prepare(message)
        assert payload is not None, f"{message.action} could not be sent"
        out.append((message.action, payload))
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("reason", list(BootReason))
def test_boot_notification(version: OcppVersion, reason: BootReason) -> None:
    charger = make_charger(version, vendor="A" * 60, model="M" * 60, firmware="F" * 80)
    assert_valid(version, "BootNotification", charger.protocol.boot_notification(charger, reason))


@pytest.mark.parametrize("version", VERSIONS)
def test_heartbeat_and_authorize(version: OcppVersion) -> None:
    protocol = protocol_for(version)
    assert_valid(version, "Heartbeat", protocol.heartbeat())
    assert_valid(version, "Authorize", protocol.authorize("T" * 40))


@pytest.mark.parametrize("version", VERSIONS)
def test_status_notification_in_every_state(version: OcppVersion) -> None:
    charger = make_charger(version)
    protocol = charger.protocol
    now = utc_timestamp(1_700_000_000)
    statuses = []

    def record() -> None:
        for connector in (1, 2):
            payload = protocol.status_notification(charger, connector, now)
            assert_valid(version, "StatusNotification", payload)
            statuses.append(payload.get("status") or payload.get("connectorStatus"))

    record()
    charger.set_availability(2, operative=False)
    start(charger)
    record()
    acknowledge_start(charger)
    record()
    expected = {
        "1.6": ["Available", "Available", "Preparing", "Unavailable", "Charging", "Unavailable"],
        "2.0.1": ["Available", "Available", "Occupied", "Unavailable", "Occupied", "Unavailable"],
    }
    assert statuses == expected[version]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("offline", [False, True])
@pytest.mark.parametrize("cause", list(StopCause))
@pytest.mark.parametrize("remote", [False, True])
def test_session_messages(version: OcppVersion, offline: bool, cause: StopCause, remote: bool) -> None:
    charger = make_charger(version)
    protocol = charger.protocol
    session = Session(
        connector=2,
        id_tag="A-LONG-ID-TAG-OF-MORE-THAN-TWENTY-CHARACTERS",
        id_type="Central" if remote else "ISO14443",
        local_id=protocol.new_transaction_id(),
        meter_start=1000,
        next_sample_at=0.0,
        ends_at=0.0,
        remote_start_id=7 if remote else None,
    )
    session.transaction_id = 42
    session.cause = cause
    messages = [
        protocol.session_started(session, reading(1000), offline),
        protocol.session_sampled(session, reading(1100), offline, False),
        protocol.session_sampled(session, reading(1200), offline, True),
        protocol.session_ended(session, reading(1300), offline),
    ]
    for action, payload in messages:
        if version == "1.6" and action != "StartTransaction":
            payload = {**payload, "transactionId": 42}  # what prepare() adds when sending
        assert_valid(version, action, payload)
    if version == "2.0.1":
        assert [p["seqNo"] for _, p in messages] == [0, 1, 2, 3]
        assert [p["eventType"] for _, p in messages] == ["Started", "Updated", "Updated", "Ended"]
        assert all(p.get("offline", False) is offline for _, p in messages)
        assert len({p["transactionInfo"]["transactionId"] for _, p in messages}) == 1
        assert ("remoteStartId" in messages[0][1]["transactionInfo"]) is remote


@pytest.mark.parametrize("version", VERSIONS)
def test_triggered_meter_values(version: OcppVersion) -> None:
    charger = make_charger(version)
    action, payload = charger.protocol.meter_values(charger, 1, charger.read_meter())
    assert_valid(version, action, payload)
    start(charger)
    acknowledge_start(charger)
    action, payload = charger.protocol.meter_values(charger, 1, charger.read_meter())
    assert_valid(version, action, payload)
    if version == "1.6":
        assert payload["transactionId"] == 42


@pytest.mark.parametrize("version", VERSIONS)
def test_a_charger_session_sends_valid_messages_with_rising_energy(version: OcppVersion) -> None:
    charger = make_charger(version, meter_interval=10.0, session_duration=35.0)
    session = start(charger)
    acknowledge_start(charger)
    t = session.next_sample_at
    while charger.session is not None:
        charger.tick(t)
        t += 5.0
    sent = sent_payloads(charger)
    for action, payload in sent:
        assert_valid(version, action, payload)
    actions = [action for action, _ in sent]
    if version == "1.6":
        assert actions == ["StartTransaction", "MeterValues", "MeterValues", "MeterValues", "StopTransaction"]
        energies = [sent[0][1]["meterStart"]]
        energies += [int(p["meterValue"][0]["sampledValue"][0]["value"]) for _, p in sent[1:-1]]
        energies.append(sent[-1][1]["meterStop"])
        assert all(p["transactionId"] == 42 for _, p in sent[1:])
    else:
        assert [p["eventType"] for _, p in sent] == ["Started", "Updated", "Updated", "Updated", "Ended"]
        assert [p["seqNo"] for _, p in sent] == [0, 1, 2, 3, 4]
        energies = [p["meterValue"][0]["sampledValue"][0]["value"] for _, p in sent]
    assert energies == sorted(energies)
    assert len(set(energies)) == len(energies), f"energy must rise at every reading: {energies}"


def test_a_1_6_message_of_a_start_never_acknowledged_cannot_be_sent() -> None:
    charger = make_charger("1.6", meter_interval=10.0)
    session = start(charger)
    charger.tick(session.next_sample_at)
    start_message, sample = list(charger.outbox)
    assert charger.protocol.prepare(start_message) is start_message.payload
    assert charger.protocol.prepare(sample) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_a_start_the_csms_does_not_accept_ends_the_session(version: OcppVersion) -> None:
    charger = make_charger(version)
    session = start(charger)
    message = charger.outbox.peek()
    assert message is not None
    result: Payload
    if version == "1.6":
        result = {"transactionId": 5, "idTagInfo": {"status": "Blocked"}}
    else:
        result = {"idTokenInfo": {"status": "Invalid"}}
    assert_valid(version, message.action, result, response=True)
    charger.protocol.on_result(charger, message, result)
    assert session.cause is StopCause.DEAUTHORIZED
    charger.tick(session.ends_at)
    assert charger.session is None


# ---------------------------------------------------------------------------------------------- CSMS calls

#: (action, request payload, state, expected status or None) per version. States: "idle", "charging" (a
#: session on connector 1, acknowledged), "pending" (BootNotification answered Pending).
CALLS_16: list[tuple[str, Payload, str, str | None]] = [
    ("RemoteStartTransaction", {"idTag": "REMOTE"}, "idle", "Accepted"),
    ("RemoteStartTransaction", {"idTag": "REMOTE", "connectorId": 2}, "idle", "Accepted"),
    ("RemoteStartTransaction", {"idTag": "REMOTE", "connectorId": 9}, "idle", "Rejected"),
    ("RemoteStartTransaction", {"idTag": "REMOTE"}, "charging", "Rejected"),
    ("RemoteStartTransaction", {"idTag": "REMOTE"}, "pending", "Rejected"),
    ("RemoteStopTransaction", {"transactionId": 42}, "charging", "Accepted"),
    ("RemoteStopTransaction", {"transactionId": 43}, "charging", "Rejected"),
    ("RemoteStopTransaction", {"transactionId": 42}, "idle", "Rejected"),
    ("Reset", {"type": "Hard"}, "charging", "Accepted"),
    ("Reset", {"type": "Soft"}, "idle", "Accepted"),
    ("UnlockConnector", {"connectorId": 1}, "charging", "Unlocked"),
    ("UnlockConnector", {"connectorId": 2}, "idle", "Unlocked"),
    ("UnlockConnector", {"connectorId": 3}, "idle", "NotSupported"),
    ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}, "idle", "Accepted"),
    ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, "charging", "Scheduled"),
    ("ChangeAvailability", {"connectorId": 2, "type": "Operative"}, "charging", "Accepted"),
    ("ChangeAvailability", {"connectorId": 5, "type": "Operative"}, "idle", "Rejected"),
    ("TriggerMessage", {"requestedMessage": "BootNotification"}, "pending", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, "idle", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 2}, "idle", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "StatusNotification", "connectorId": 7}, "idle", "Rejected"),
    ("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1}, "charging", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"}, "idle", "NotImplemented"),
    ("GetConfiguration", {}, "idle", None),
    ("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]}, "idle", None),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "120"}, "idle", "Accepted"),
    ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "soon"}, "idle", "Rejected"),
    ("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "4"}, "idle", "Rejected"),
    ("ChangeConfiguration", {"key": "LocalAuthorizeOffline", "value": "false"}, "idle", "Accepted"),
    ("ChangeConfiguration", {"key": "NoSuchKey", "value": "1"}, "idle", "NotSupported"),
    ("ClearCache", {}, "idle", "Accepted"),
]

_VARIABLE = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
CALLS_201: list[tuple[str, Payload, str, str | None]] = [
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "R", "type": "Central"}, "remoteStartId": 1},
        "idle",
        "Accepted",
    ),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "R", "type": "eMAID"}, "remoteStartId": 2, "evseId": 2},
        "idle",
        "Accepted",
    ),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "R", "type": "Central"}, "remoteStartId": 3},
        "charging",
        "Rejected",
    ),
    (
        "RequestStartTransaction",
        {"idToken": {"idToken": "R", "type": "Central"}, "remoteStartId": 4},
        "pending",
        "Rejected",
    ),
    ("RequestStopTransaction", {"transactionId": "TX"}, "charging", "Accepted"),
    ("RequestStopTransaction", {"transactionId": "other"}, "charging", "Rejected"),
    ("Reset", {"type": "Immediate"}, "charging", "Accepted"),
    ("Reset", {"type": "OnIdle"}, "charging", "Scheduled"),
    ("Reset", {"type": "OnIdle"}, "idle", "Accepted"),
    ("Reset", {"type": "Immediate", "evseId": 1}, "idle", "Rejected"),
    ("UnlockConnector", {"evseId": 1, "connectorId": 1}, "charging", "OngoingAuthorizedTransaction"),
    ("UnlockConnector", {"evseId": 2, "connectorId": 1}, "charging", "Unlocked"),
    ("UnlockConnector", {"evseId": 3, "connectorId": 1}, "idle", "UnknownConnector"),
    ("ChangeAvailability", {"operationalStatus": "Inoperative"}, "idle", "Accepted"),
    ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}}, "charging", "Scheduled"),
    (
        "ChangeAvailability",
        {"operationalStatus": "Operative", "evse": {"id": 2, "connectorId": 1}},
        "idle",
        "Accepted",
    ),
    ("ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 9}}, "idle", "Rejected"),
    ("TriggerMessage", {"requestedMessage": "BootNotification"}, "pending", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "BootNotification"}, "idle", "Rejected"),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}, "idle", "Accepted"),
    (
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
        "idle",
        "Accepted",
    ),
    ("TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}}, "charging", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "TransactionEvent"}, "charging", "Accepted"),
    ("TriggerMessage", {"requestedMessage": "TransactionEvent", "evse": {"id": 2}}, "charging", "Rejected"),
    ("TriggerMessage", {"requestedMessage": "TransactionEvent"}, "idle", "Rejected"),
    ("TriggerMessage", {"requestedMessage": "LogStatusNotification"}, "idle", "NotImplemented"),
    (
        "GetVariables",
        {
            "getVariableData": [
                _VARIABLE,
                {**_VARIABLE, "attributeType": "Target"},
                {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"}},
                {"component": {"name": "chargingstation"}, "variable": {"name": "availabilitystate"}},
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "NoSuchVariable"}},
                {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "HeartbeatInterval"}},
            ]
        },
        "charging",
        None,
    ),
    (
        "SetVariables",
        {
            "setVariableData": [
                {**_VARIABLE, "attributeValue": "120"},
                {**_VARIABLE, "attributeValue": "0"},
                {**_VARIABLE, "attributeValue": "120", "attributeType": "MaxSet"},
                {"component": {"name": "EVSE"}, "variable": {"name": "Count"}, "attributeValue": "3"},
                {
                    "component": {"name": "AuthCtrlr"},
                    "variable": {"name": "LocalAuthorizeOffline"},
                    "attributeValue": "false",
                },
                {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}, "attributeValue": "1"},
            ]
        },
        "idle",
        None,
    ),
]


def _charger_in(version: OcppVersion, state: str) -> Charger:
    charger = make_charger(version)
    if state == "pending":
        charger.registration = Registration.PENDING
    elif state == "charging":
        session = start(charger)
        session.local_id = "TX"
        acknowledge_start(charger)
    return charger


def _answer(version: OcppVersion, action: str, request: Payload, state: str) -> tuple[Charger, Payload]:
    assert_valid(version, action, request)  # the test's own input must be a valid request
    charger = _charger_in(version, state)
    result, effect = charger.protocol.handle(charger, action, request)
    assert_valid(version, action, result, response=True)
    if effect is not None:
        effect()
    return charger, result


@pytest.mark.parametrize(("action", "request_payload", "state", "status"), CALLS_16)
def test_answers_to_the_central_system_16(
    action: str, request_payload: Payload, state: str, status: str | None
) -> None:
    _, result = _answer("1.6", action, request_payload, state)
    if status is not None:
        assert result["status"] == status


@pytest.mark.parametrize(("action", "request_payload", "state", "status"), CALLS_201)
def test_answers_to_the_csms_201(
    action: str, request_payload: Payload, state: str, status: str | None
) -> None:
    _, result = _answer("2.0.1", action, request_payload, state)
    if status is not None:
        assert result["status"] == status


def test_get_configuration_reports_unknown_keys_and_values() -> None:
    _, result = _answer("1.6", "GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]}, "idle")
    assert result["unknownKey"] == ["NoSuchKey"]
    assert result["configurationKey"] == [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]


def test_change_configuration_changes_the_simulated_intervals() -> None:
    charger, _ = _answer(
        "1.6", "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "15"}, "idle"
    )
    assert charger.meter_interval == 15.0
    result, _ = charger.protocol.handle(charger, "GetConfiguration", {"key": ["MeterValueSampleInterval"]})
    assert result["configurationKey"][0]["value"] == "15"


def test_get_and_set_variables_statuses() -> None:
    _, got = _answer("2.0.1", *CALLS_201[-2][:3])
    assert [r["attributeStatus"] for r in got["getVariableResult"]] == [
        "Accepted",
        "NotSupportedAttributeType",
        "Accepted",
        "Accepted",
        "UnknownVariable",
        "UnknownComponent",
    ]
    assert got["getVariableResult"][3]["attributeValue"] == "Occupied"
    charger, done = _answer("2.0.1", *CALLS_201[-1][:3])
    assert [r["attributeStatus"] for r in done["setVariableResult"]] == [
        "Accepted",
        "Rejected",
        "NotSupportedAttributeType",
        "Rejected",
        "Accepted",
        "UnknownComponent",
    ]
    assert charger.heartbeat_interval == 120.0
    assert charger.setting("LocalAuthorizeOffline") == "false"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_remote_start_starts_a_session_after_the_answer(version: OcppVersion) -> None:
    request: Payload
    if version == "1.6":
        request = {"idTag": "REMOTE", "connectorId": 2}
        action = "RemoteStartTransaction"
    else:
        request = {"idToken": {"idToken": "REMOTE", "type": "Central"}, "remoteStartId": 9, "evseId": 2}
        action = "RequestStartTransaction"
    charger = make_charger(version)
    _, effect = charger.protocol.handle(charger, action, request)
    assert charger.session is None, "the transaction starts only once the answer is out"
    assert effect is not None
    effect()
    assert charger.session is not None
    assert charger.session.connector == 2
    (message,) = list(charger.outbox)
    assert_valid(version, message.action, message.payload)
    if version == "2.0.1":
        assert message.payload["triggerReason"] == "RemoteStart"
        assert message.payload["transactionInfo"]["remoteStartId"] == 9


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_and_unsupported_actions_are_call_errors(version: OcppVersion) -> None:
    charger = make_charger(version)
    with pytest.raises(CallError) as unknown:
        charger.protocol.handle(charger, "MakeCoffee", {})
    assert unknown.value.code == "NotImplemented"
    with pytest.raises(CallError) as unsupported:
        charger.protocol.handle(charger, "DataTransfer", {"vendorId": "x"})
    assert unsupported.value.code == "NotSupported"


@pytest.mark.parametrize("version", VERSIONS)
def test_a_scheduled_unavailability_applies_when_the_session_ends(version: OcppVersion) -> None:
    charger = make_charger(version)
    session = start(charger)
    assert charger.availability_change(1, operative=False) == "Scheduled"
    charger.set_availability(1, operative=False)
    assert charger.is_operative(1)
    charger.end_session(StopCause.LOCAL)
    charger.tick(session.ends_at)
    assert not charger.is_operative(1)
    assert charger.is_operative(2)
