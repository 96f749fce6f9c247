"""The Charger aggregate: one OCPP charge point, its EVSEs and connectors, and what it last reported."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Self
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from csms.domain.errors import (
    ChargerDecommissioned,
    ConnectorUnavailable,
    InvalidValue,
    SessionConflict,
    UnknownConnector,
)
from csms.domain.validation import (
    require_aware,
    require_instance,
    require_int,
    require_optional_text,
    require_text,
)


class ConnectorStandard(StrEnum):
    """The plug or socket standard (OCPI ConnectorType values)."""

    CHADEMO = "CHADEMO"
    CHAOJI = "CHAOJI"
    DOMESTIC_A = "DOMESTIC_A"
    DOMESTIC_B = "DOMESTIC_B"
    DOMESTIC_C = "DOMESTIC_C"
    DOMESTIC_D = "DOMESTIC_D"
    DOMESTIC_E = "DOMESTIC_E"
    DOMESTIC_F = "DOMESTIC_F"
    DOMESTIC_G = "DOMESTIC_G"
    DOMESTIC_H = "DOMESTIC_H"
    DOMESTIC_I = "DOMESTIC_I"
    DOMESTIC_J = "DOMESTIC_J"
    DOMESTIC_K = "DOMESTIC_K"
    DOMESTIC_L = "DOMESTIC_L"
    DOMESTIC_M = "DOMESTIC_M"
    DOMESTIC_N = "DOMESTIC_N"
    DOMESTIC_O = "DOMESTIC_O"
    GBT_AC = "GBT_AC"
    GBT_DC = "GBT_DC"
    IEC_60309_2_SINGLE_16 = "IEC_60309_2_single_16"
    IEC_60309_2_THREE_16 = "IEC_60309_2_three_16"
    IEC_60309_2_THREE_32 = "IEC_60309_2_three_32"
    IEC_60309_2_THREE_64 = "IEC_60309_2_three_64"
    IEC_62196_T1 = "IEC_62196_T1"
    IEC_62196_T1_COMBO = "IEC_62196_T1_COMBO"
    IEC_62196_T2 = "IEC_62196_T2"
    IEC_62196_T2_COMBO = "IEC_62196_T2_COMBO"
    IEC_62196_T3A = "IEC_62196_T3A"
    IEC_62196_T3C = "IEC_62196_T3C"
    MCS = "MCS"
    NEMA_5_20 = "NEMA_5_20"
    NEMA_6_30 = "NEMA_6_30"
    NEMA_6_50 = "NEMA_6_50"
    NEMA_10_30 = "NEMA_10_30"
    NEMA_10_50 = "NEMA_10_50"
    NEMA_14_30 = "NEMA_14_30"
    NEMA_14_50 = "NEMA_14_50"
    PANTOGRAPH_BOTTOM_UP = "PANTOGRAPH_BOTTOM_UP"
    PANTOGRAPH_TOP_DOWN = "PANTOGRAPH_TOP_DOWN"
    SAE_J3400 = "SAE_J3400"
    TESLA_R = "TESLA_R"
    TESLA_S = "TESLA_S"


class ConnectorFormat(StrEnum):
    """OCPI ConnectorFormat: a socket (bring your own cable) or an attached cable."""

    SOCKET = "SOCKET"
    CABLE = "CABLE"


class PowerType(StrEnum):
    """OCPI PowerType."""

    AC_1_PHASE = "AC_1_PHASE"
    AC_2_PHASE = "AC_2_PHASE"
    AC_2_PHASE_SPLIT = "AC_2_PHASE_SPLIT"
    AC_3_PHASE = "AC_3_PHASE"
    DC = "DC"


class ConnectorStatus(StrEnum):
    """Connector status as OCPP reports it (1.6 ChargePointStatus, 2.0.1 ConnectorStatusEnumType)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"


# Preparing is the normal state between plugging in and authorising (OCPP 1.6 §4.9), so a
# remote start is expected to find the connector there as often as Available.
STARTABLE_STATUSES = frozenset({ConnectorStatus.AVAILABLE, ConnectorStatus.PREPARING})


class Availability(StrEnum):
    """Operator-set availability (OCPP ChangeAvailability)."""

    OPERATIVE = "Operative"
    INOPERATIVE = "Inoperative"


class OcppVersion(StrEnum):
    """The OCPP-J version negotiated as WebSocket subprotocol."""

    OCPP16 = "ocpp1.6"
    OCPP201 = "ocpp2.0.1"


@dataclass(frozen=True)
class Connector:
    """A plug or socket of an EVSE. `connector_id` counts from 1 within its EVSE."""

    connector_id: int
    standard: ConnectorStandard
    format: ConnectorFormat
    power_type: PowerType
    max_power_w: int

    def __post_init__(self) -> None:
        require_int(self.connector_id, "connector_id", minimum=1)
        require_instance(self.standard, ConnectorStandard, "standard")
        require_instance(self.format, ConnectorFormat, "format")
        require_instance(self.power_type, PowerType, "power_type")
        require_int(self.max_power_w, "max_power_w", minimum=1)


@dataclass(frozen=True)
class Evse:
    """An EVSE: the part of a charger that charges one vehicle at a time, with its connectors.

    OCPP 1.6 has no EVSE level: for a 1.6 charger `evse_id` is the 1.6 connectorId and the
    EVSE has a single connector with `connector_id` 1 (the gateway maps between the two).
    """

    evse_id: int
    connectors: tuple[Connector, ...]

    def __post_init__(self) -> None:
        require_int(self.evse_id, "evse_id", minimum=1)
        if not isinstance(self.connectors, tuple) or not self.connectors:
            raise InvalidValue(f"EVSE {self.evse_id} needs a tuple of at least one connector")
        for connector in self.connectors:
            require_instance(connector, Connector, "connector")
        ids = [connector.connector_id for connector in self.connectors]
        if len(set(ids)) != len(ids):
            raise InvalidValue(f"EVSE {self.evse_id} has duplicate connector ids: {ids}")

    def connector(self, connector_id: int) -> Connector | None:
        return next((c for c in self.connectors if c.connector_id == connector_id), None)


@dataclass(frozen=True)
class BootInfo:
    """What the charger says about itself in BootNotification."""

    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None


@dataclass(frozen=True)
class ConnectorState:
    """The last status a charger reported for a connector, and when the charger says it applied."""

    status: ConnectorStatus
    error_code: str | None
    reported_at: datetime


@dataclass(frozen=True)
class DeviceEvent:
    """One entry of an OCPP 2.0.1 NotifyEvent (N07): a monitored variable of a component reported a value.

    `component` and `variable` (with their instances and the component's EVSE and connector) say which
    variable of the device model it is; `trigger` is why it was sent (Alerting, Delta, Periodic),
    `notification_type` which kind of monitor sent it (HardWiredNotification, HardWiredMonitor,
    PreconfiguredMonitor, CustomMonitor), and `cleared` that a monitored situation returned to normal.
    `actual_value` may be empty: it is the variable's value, not a name.
    """

    event_id: int
    occurred_at: datetime
    trigger: str
    actual_value: str
    cleared: bool
    component: str
    component_instance: str | None
    component_evse_id: int | None
    component_connector_id: int | None
    variable: str
    variable_instance: str | None
    notification_type: str
    cause: int | None
    variable_monitoring_id: int | None
    tech_code: str | None
    tech_info: str | None
    transaction_id: str | None

    def __post_init__(self) -> None:
        # The bounds are the NotifyEventRequest schema's, so nothing a valid message carries is refused.
        require_int(self.event_id, "event_id")
        require_aware(self.occurred_at, "occurred_at")
        require_text(self.trigger, "trigger", max_length=50)
        _require_value(self.actual_value, "actual_value", max_length=2500)
        require_instance(self.cleared, bool, "cleared")
        _require_device_variable(
            self.component,
            self.component_instance,
            self.component_evse_id,
            self.component_connector_id,
            self.variable,
            self.variable_instance,
        )
        require_text(self.notification_type, "notification_type", max_length=50)
        _require_optional_int(self.cause, "cause")
        _require_optional_int(self.variable_monitoring_id, "variable_monitoring_id")
        require_optional_text(self.tech_code, "tech_code", max_length=50)
        require_optional_text(self.tech_info, "tech_info", max_length=500)
        require_optional_text(self.transaction_id, "transaction_id", max_length=36)

    @property
    def key(self) -> tuple[int, datetime]:
        """What names the event: the charger's event id and when it occurred (ids may be reused)."""
        return (self.event_id, self.occurred_at)


@dataclass(frozen=True)
class ReportEntry:
    """One attribute of one variable in an OCPP 2.0.1 NotifyReport (B07, B08): the device model as reported.

    `attribute_type` is Actual, Target, MinSet or MaxSet; `mutability` ReadOnly, WriteOnly or ReadWrite (the
    schema's defaults, Actual and ReadWrite, are filled in when the charger leaves them out). `value` is None
    only for a write-only attribute, and may be empty.
    """

    component: str
    component_instance: str | None
    evse_id: int | None
    connector_id: int | None
    variable: str
    variable_instance: str | None
    attribute_type: str
    value: str | None
    mutability: str

    def __post_init__(self) -> None:
        # The bounds are the NotifyReportRequest schema's, so nothing a valid message carries is refused.
        _require_device_variable(
            self.component,
            self.component_instance,
            self.evse_id,
            self.connector_id,
            self.variable,
            self.variable_instance,
        )
        require_text(self.attribute_type, "attribute_type", max_length=50)
        if self.value is not None:
            _require_value(self.value, "value", max_length=2500)
        require_text(self.mutability, "mutability", max_length=50)


# Chargers resend a NotifyEvent whose answer they did not get, and replay their queue after an outage. The
# last DEVICE_EVENT_MEMORY events reported (their id and time) are remembered to recognise those replays:
# more than a charger queues in practice, and bounded, so that a chatty charger's state does not grow forever.
DEVICE_EVENT_MEMORY = 128
# The same for the parts (request id, seqNo) of NotifyReports.
DEVICE_REPORT_MEMORY = 64


def require_charge_point_id(value: str) -> str:
    """Return `value` if it is a valid OCPP charge point identity.

    OCPP-J puts the identity as the last path segment of the WebSocket URL and uses it as the
    Basic-auth user name, which RFC 7617 forbids to contain ':'; OCPP limits it to 48
    characters. We accept printable ASCII without space, ':' or '/'.
    """
    if not isinstance(value, str) or not 1 <= len(value) <= 48:
        raise InvalidValue(f"charge point id must be 1..48 characters, got {value!r}")
    if not all("\x21" <= char <= "\x7e" and char not in ":/" for char in value):
        raise InvalidValue(f"charge point id must be printable ASCII without space, ':' or '/': {value!r}")
    return value


_CHARGER_NAMESPACE = UUID("5d0b7f6e-8e1c-4c53-9f0e-3f7a2f8b9c41")


def charger_id_for(charge_point_id: str) -> UUID:
    """The Charger aggregate's id, derived from its OCPP identity.

    A charger is found by the identity it connects with, without an index: its stream id is a
    name-based UUID of that identity. This also makes identities unique platform-wide, since a
    second registration of the same identity would append to an existing stream and conflict.
    """
    return uuid5(_CHARGER_NAMESPACE, require_charge_point_id(charge_point_id))


def _require_evses(evses: tuple[Evse, ...]) -> tuple[Evse, ...]:
    if not isinstance(evses, tuple):
        raise InvalidValue("evses must be a tuple")
    for evse in evses:
        require_instance(evse, Evse, "evse")
    ids = [evse.evse_id for evse in evses]
    if len(set(ids)) != len(ids):
        raise InvalidValue(f"duplicate EVSE ids: {ids}")
    return evses


class Charger(Aggregate):
    """A charge point at a station: its OCPP identity and credentials, layout, and live facts.

    Facts reported by the charger (boot, status, connectivity, firmware and log uploads,
    security and device events, device model reports) are recorded even when late: a report
    older than what is stored, or identical to it, is ignored rather than refused, because
    chargers replay queued messages after being offline.
    """

    @classmethod
    def register(
        cls,
        id: UUID,
        company_id: UUID,
        station_id: UUID,
        charge_point_id: str,
        password_hash: str,
        evses: tuple[Evse, ...],
        at: datetime,
    ) -> Self:
        return cls(
            id=id,
            company_id=company_id,
            station_id=station_id,
            charge_point_id=require_charge_point_id(charge_point_id),
            password_hash=_require_hash(password_hash),
            evses=_require_evses(evses),
            timestamp=require_aware(at, "at"),
        )

    @event("Registered")
    def __init__(
        self,
        id: UUID,
        company_id: UUID,
        station_id: UUID,
        charge_point_id: str,
        password_hash: str,
        evses: tuple[Evse, ...],
        timestamp: datetime,
    ) -> None:
        self.company_id = company_id
        self.station_id = station_id
        self.charge_point_id = charge_point_id
        self.password_hash = password_hash
        self.evses = evses
        self.boot: BootInfo | None = None
        self.is_connected = False
        self.protocol: OcppVersion | None = None
        self.connection_id: UUID | None = None
        self.connectivity_changed_at: datetime | None = None
        self.connected_at: datetime | None = None  # when the current (or last) connection was recorded
        self.availability = Availability.OPERATIVE
        self.decommissioned = False
        self._connector_states: dict[tuple[int, int], ConnectorState] = {}
        self._active_sessions: dict[tuple[int, int], UUID] = {}
        self.firmware_status: str | None = None
        self.firmware_request_id: int | None = None
        self.diagnostics_status: str | None = None
        self.diagnostics_request_id: int | None = None
        self._recent_device_events: tuple[tuple[int, datetime], ...] = ()
        self._recent_report_parts: tuple[tuple[int, int], ...] = ()

    # Queries

    def evse(self, evse_id: int) -> Evse | None:
        return next((evse for evse in self.evses if evse.evse_id == evse_id), None)

    def connector(self, evse_id: int, connector_id: int) -> Connector | None:
        evse = self.evse(evse_id)
        return None if evse is None else evse.connector(connector_id)

    def connector_state(self, evse_id: int, connector_id: int) -> ConnectorState | None:
        """The last reported state; (0, 0) is the charger as a whole (OCPP 1.6 connectorId 0)."""
        return self._connector_states.get((evse_id, connector_id))

    def active_session_id(self, evse_id: int, connector_id: int) -> UUID | None:
        return self._active_sessions.get((evse_id, connector_id))

    def ensure_can_start(self, evse_id: int, connector_id: int) -> None:
        """Raise unless a new session may start on this connector now.

        Checked on this aggregate, never on a read model: the connector exists, no other
        session holds it, the charger is connected and operative, and the connector last
        reported Available or Preparing.
        """
        if self.decommissioned:
            raise ChargerDecommissioned(f"charger {self.charge_point_id} is decommissioned")
        self._require_connector(evse_id, connector_id)
        holder = self.active_session_id(evse_id, connector_id)
        if holder is not None:
            raise SessionConflict(
                f"connector {evse_id}/{connector_id} of {self.charge_point_id} is held by session {holder}"
            )
        if not self.is_connected:
            raise ConnectorUnavailable(f"charger {self.charge_point_id} is not connected")
        if self.availability is Availability.INOPERATIVE:
            raise ConnectorUnavailable(f"charger {self.charge_point_id} is inoperative")
        state = self.connector_state(evse_id, connector_id)
        if state is None or state.status not in STARTABLE_STATUSES:
            status = "unknown" if state is None else state.status.value
            raise ConnectorUnavailable(
                f"connector {evse_id}/{connector_id} of {self.charge_point_id} is {status}"
            )

    # Administration

    def rotate_password(self, new_hash: str, at: datetime) -> None:
        """Replace the Basic-auth password hash (computed outside the domain; never the password)."""
        self._ensure_not_decommissioned()
        new_hash = _require_hash(new_hash)
        if new_hash != self.password_hash:
            self._password_rotated(password_hash=new_hash, timestamp=require_aware(at, "at"))

    def configure_evses(self, evses: tuple[Evse, ...], at: datetime) -> None:
        """Replace the EVSE layout; a connector holding a session cannot be removed."""
        self._ensure_not_decommissioned()
        _require_evses(evses)
        for (evse_id, connector_id), session_id in self._active_sessions.items():
            evse = next((e for e in evses if e.evse_id == evse_id), None)
            if evse is None or evse.connector(connector_id) is None:
                raise SessionConflict(f"connector {evse_id}/{connector_id} is held by session {session_id}")
        if evses != self.evses:
            self._evses_configured(evses=evses, timestamp=require_aware(at, "at"))

    def change_availability(self, availability: Availability, at: datetime) -> None:
        """Record an availability the charger accepted (OCPP ChangeAvailability)."""
        self._ensure_not_decommissioned()
        require_instance(availability, Availability, "availability")
        if availability is not self.availability:
            self._availability_changed(availability=availability, timestamp=require_aware(at, "at"))

    def decommission(self, at: datetime) -> None:
        """Retire the charger: it may no longer connect or start sessions."""
        if not self.decommissioned:
            self._decommissioned(timestamp=require_aware(at, "at"))

    # Facts reported through the gateway

    def record_boot(
        self,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str | None,
        at: datetime,
    ) -> None:
        """Record BootNotification details; a reboot with unchanged details adds nothing."""
        boot = BootInfo(
            vendor=require_text(vendor, "vendor", max_length=255),
            model=require_text(model, "model", max_length=255),
            serial_number=require_optional_text(serial_number, "serial_number", max_length=255),
            firmware_version=require_optional_text(firmware_version, "firmware_version", max_length=255),
        )
        if boot != self.boot:
            self._boot_recorded(boot=boot, timestamp=require_aware(at, "at"))

    def connected(self, protocol: OcppVersion, at: datetime, connection_id: UUID | None = None) -> None:
        """Record that the charger authenticated and connected.

        `connection_id` names the WebSocket connection so a late `disconnected` from a
        connection that was already replaced (possibly on another gateway node) is ignored.
        """
        if self.decommissioned:
            raise ChargerDecommissioned(f"charger {self.charge_point_id} is decommissioned")
        require_instance(protocol, OcppVersion, "protocol")
        require_aware(at, "at")
        # Only an older connection's news is stale. A replaced connection's disconnect may be recorded after
        # its successor authenticated but before the successor's connect was (two tasks racing): it carries
        # a later time, and must not make the live connection look stale.
        if self.connected_at is not None and at < self.connected_at:
            return
        if self.is_connected and connection_id is not None and connection_id == self.connection_id:
            return  # the same connection reported twice
        self._connected(protocol=protocol, connection_id=connection_id, timestamp=at)

    def disconnected(self, at: datetime, reason: str, connection_id: UUID | None = None) -> None:
        """Record that the charger's connection closed (ignored if already disconnected,
        stale, or about a connection that has since been replaced)."""
        require_aware(at, "at")
        reason = require_text(reason, "reason", max_length=500)
        if not self.is_connected or self._is_stale(at):
            return
        if connection_id is not None and connection_id != self.connection_id:
            return
        self._disconnected(reason=reason, connection_id=connection_id, timestamp=at)

    def report_connector_status(
        self,
        evse_id: int,
        connector_id: int,
        status: ConnectorStatus,
        error_code: str | None,
        reported_at: datetime,
        at: datetime,
    ) -> None:
        """Record a StatusNotification.

        `reported_at` is the charger's own timestamp of the status; a report older than the
        one stored for the connector is a late replay and is ignored, as is a repeat of the
        stored status. (0, 0) reports the charger as a whole (OCPP 1.6 connectorId 0).
        `error_code` is None when there is no error (the gateway maps 1.6 "NoError" to None).
        """
        require_int(evse_id, "evse_id", minimum=0)
        require_int(connector_id, "connector_id", minimum=0)
        require_instance(status, ConnectorStatus, "status")
        error_code = require_optional_text(error_code, "error_code", max_length=50)
        require_aware(reported_at, "reported_at")
        require_aware(at, "at")
        current = self.connector_state(evse_id, connector_id)
        if current is not None and (
            reported_at < current.reported_at or (status, error_code) == (current.status, current.error_code)
        ):
            return
        self._connector_status_changed(
            evse_id=evse_id,
            connector_id=connector_id,
            status=status,
            error_code=error_code,
            reported_at=reported_at,
            timestamp=at,
        )

    def record_firmware_status(self, status: str, request_id: int | None, at: datetime) -> None:
        """Record a FirmwareStatusNotification: the progress of a firmware update (1.6 §4.5, 2.0.1 L01).

        `request_id` is the 2.0.1 UpdateFirmware request's id (None in 1.6, and for an Idle sent on a
        TriggerMessage). The message has no timestamp, so the one replay that can be recognised is a repeat
        of the last report (same status for the same request), which is ignored; any other status is progress.
        """
        status = require_text(status, "status", max_length=50)
        _require_optional_int(request_id, "request_id")
        require_aware(at, "at")
        if (status, request_id) != (self.firmware_status, self.firmware_request_id):
            self._firmware_status_reported(status=status, request_id=request_id, timestamp=at)

    def record_diagnostics_status(self, status: str, request_id: int | None, at: datetime) -> None:
        """Record the progress of a diagnostics or log upload (1.6 DiagnosticsStatusNotification §4.4, 2.0.1
        LogStatusNotification N01); `request_id` is the 2.0.1 GetLog request's id. A repeat of the last
        report (same status for the same request) is ignored, as for firmware."""
        status = require_text(status, "status", max_length=50)
        _require_optional_int(request_id, "request_id")
        require_aware(at, "at")
        if (status, request_id) != (self.diagnostics_status, self.diagnostics_request_id):
            self._diagnostics_status_reported(status=status, request_id=request_id, timestamp=at)

    def record_security_event(
        self, event_type: str, occurred_at: datetime, tech_info: str | None, at: datetime
    ) -> None:
        """Record a SecurityEventNotification (2.0.1 A04): `event_type` as the charger names it (2.0.1 part 2,
        appendix 1, lists the standard ones), `occurred_at` the charger's time of it. Every notification is
        kept, a resent one included: two events of a type within the charger's clock resolution cannot be told
        from a replay, and a security trail had better hold a duplicate than lose an event."""
        event_type = require_text(event_type, "event_type", max_length=50)
        tech_info = require_optional_text(tech_info, "tech_info", max_length=255)
        self._security_event_reported(
            event_type=event_type,
            occurred_at=require_aware(occurred_at, "occurred_at"),
            tech_info=tech_info,
            timestamp=require_aware(at, "at"),
        )

    def record_device_events(self, events: tuple[DeviceEvent, ...], at: datetime) -> None:
        """Record the events of a NotifyEvent (2.0.1 N07), minus replays.

        An event with the id and time of one already reported (among the last DEVICE_EVENT_MEMORY, or earlier
        in the same message) is a replay and is dropped; nothing is recorded when nothing is left.
        """
        if not isinstance(events, tuple):
            raise InvalidValue("events must be a tuple")
        for device_event in events:
            require_instance(device_event, DeviceEvent, "event")
        require_aware(at, "at")
        seen = set(self._recent_device_events)
        fresh = []
        for device_event in events:
            if device_event.key not in seen:
                seen.add(device_event.key)
                fresh.append(device_event)
        if fresh:
            self._device_events_reported(events=tuple(fresh), timestamp=at)

    def record_device_report(
        self, request_id: int, seq_no: int, complete: bool, entries: tuple[ReportEntry, ...], at: datetime
    ) -> None:
        """Record one part of a NotifyReport (2.0.1 B07, B08), the answer to a GetBaseReport or GetReport.

        A report may come in several parts, numbered by `seq_no` from 0; `complete` is true on the last one
        (the charger's tbc is false). A part already recorded, the same (request_id, seq_no) among the last
        DEVICE_REPORT_MEMORY parts, is a replay and is ignored.
        """
        require_int(request_id, "request_id")
        require_int(seq_no, "seq_no")
        require_instance(complete, bool, "complete")
        if not isinstance(entries, tuple):
            raise InvalidValue("entries must be a tuple")
        for entry in entries:
            require_instance(entry, ReportEntry, "entry")
        require_aware(at, "at")
        if (request_id, seq_no) not in self._recent_report_parts:
            self._device_report_received(
                request_id=request_id, seq_no=seq_no, complete=complete, entries=entries, timestamp=at
            )

    # Sessions holding connectors

    def assign_session(self, evse_id: int, connector_id: int, session_id: UUID, at: datetime) -> None:
        """Let a session hold a connector, so a second start on it conflicts."""
        self._ensure_not_decommissioned()
        self._require_connector(evse_id, connector_id)
        holder = self.active_session_id(evse_id, connector_id)
        if holder == session_id:
            return
        if holder is not None:
            raise SessionConflict(
                f"connector {evse_id}/{connector_id} of {self.charge_point_id} is held by session {holder}"
            )
        self._session_assigned(
            evse_id=evse_id,
            connector_id=connector_id,
            session_id=session_id,
            timestamp=require_aware(at, "at"),
        )

    def release_session(self, evse_id: int, connector_id: int, session_id: UUID, at: datetime) -> None:
        """Free the connector if `session_id` holds it (ignored otherwise: releases replay)."""
        require_aware(at, "at")
        if self.active_session_id(evse_id, connector_id) == session_id:
            self._session_released(
                evse_id=evse_id, connector_id=connector_id, session_id=session_id, timestamp=at
            )

    # Anomalies

    def record_transaction_anomaly(self, transaction_id: str, description: str, at: datetime) -> None:
        """Record that the charger reported something about a transaction that does not add up (a Stop for
        a transaction never started, or one already ended with different figures). The report itself was
        acknowledged, because chargers retry refused transaction messages forever; this keeps the trace."""
        transaction_id = require_text(transaction_id, "transaction_id", max_length=64)
        description = require_text(description, "description", max_length=500)
        self._transaction_anomaly_recorded(
            transaction_id=transaction_id, description=description, timestamp=require_aware(at, "at")
        )

    def _require_connector(self, evse_id: int, connector_id: int) -> Connector:
        connector = self.connector(evse_id, connector_id)
        if connector is None:
            raise UnknownConnector(
                f"charger {self.charge_point_id} has no connector {connector_id} on EVSE {evse_id}"
            )
        return connector

    def _ensure_not_decommissioned(self) -> None:
        if self.decommissioned:
            raise ChargerDecommissioned(f"charger {self.charge_point_id} is decommissioned")

    def _is_stale(self, at: datetime) -> bool:
        return self.connectivity_changed_at is not None and at < self.connectivity_changed_at

    # Events

    @event("PasswordRotated")
    def _password_rotated(self, password_hash: str, timestamp: datetime) -> None:
        self.password_hash = password_hash

    @event("EvsesConfigured")
    def _evses_configured(self, evses: tuple[Evse, ...], timestamp: datetime) -> None:
        self.evses = evses

    @event("AvailabilityChanged")
    def _availability_changed(self, availability: Availability, timestamp: datetime) -> None:
        self.availability = availability

    @event("Decommissioned")
    def _decommissioned(self, timestamp: datetime) -> None:
        self.decommissioned = True

    @event("BootRecorded")
    def _boot_recorded(self, boot: BootInfo, timestamp: datetime) -> None:
        self.boot = boot

    @event("Connected")
    def _connected(self, protocol: OcppVersion, connection_id: UUID | None, timestamp: datetime) -> None:
        self.is_connected = True
        self.protocol = protocol
        self.connection_id = connection_id
        self.connectivity_changed_at = timestamp
        self.connected_at = timestamp

    @event("Disconnected")
    def _disconnected(self, reason: str, connection_id: UUID | None, timestamp: datetime) -> None:
        self.is_connected = False
        self.connection_id = None
        self.connectivity_changed_at = timestamp

    @event("ConnectorStatusChanged")
    def _connector_status_changed(
        self,
        evse_id: int,
        connector_id: int,
        status: ConnectorStatus,
        error_code: str | None,
        reported_at: datetime,
        timestamp: datetime,
    ) -> None:
        self._connector_states[(evse_id, connector_id)] = ConnectorState(
            status=status, error_code=error_code, reported_at=reported_at
        )

    @event("TransactionAnomalyRecorded")
    def _transaction_anomaly_recorded(
        self, transaction_id: str, description: str, timestamp: datetime
    ) -> None:
        pass  # a trace for operators; it changes nothing the charger's commands depend on

    @event("SessionAssigned")
    def _session_assigned(
        self, evse_id: int, connector_id: int, session_id: UUID, timestamp: datetime
    ) -> None:
        self._active_sessions[(evse_id, connector_id)] = session_id

    @event("SessionReleased")
    def _session_released(
        self, evse_id: int, connector_id: int, session_id: UUID, timestamp: datetime
    ) -> None:
        self._active_sessions.pop((evse_id, connector_id), None)

    @event("FirmwareStatusReported")
    def _firmware_status_reported(self, status: str, request_id: int | None, timestamp: datetime) -> None:
        self.firmware_status = status
        self.firmware_request_id = request_id

    @event("DiagnosticsStatusReported")
    def _diagnostics_status_reported(self, status: str, request_id: int | None, timestamp: datetime) -> None:
        self.diagnostics_status = status
        self.diagnostics_request_id = request_id

    @event("SecurityEventReported")
    def _security_event_reported(
        self, event_type: str, occurred_at: datetime, tech_info: str | None, timestamp: datetime
    ) -> None:
        pass  # a trace for operators; it changes nothing the charger's commands depend on

    @event("DeviceEventsReported")
    def _device_events_reported(self, events: tuple[DeviceEvent, ...], timestamp: datetime) -> None:
        remembered = self._recent_device_events + tuple(device_event.key for device_event in events)
        self._recent_device_events = remembered[-DEVICE_EVENT_MEMORY:]

    @event("DeviceReportReceived")
    def _device_report_received(
        self,
        request_id: int,
        seq_no: int,
        complete: bool,
        entries: tuple[ReportEntry, ...],
        timestamp: datetime,
    ) -> None:
        remembered = (*self._recent_report_parts, (request_id, seq_no))
        self._recent_report_parts = remembered[-DEVICE_REPORT_MEMORY:]


def _require_hash(value: str) -> str:
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > 1024:
        raise InvalidValue("password_hash must be a non-empty opaque string")
    return value


def _require_value(value: str, name: str, *, max_length: int) -> str:
    """A variable's value: any string up to `max_length` characters, the empty one included, kept verbatim."""
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string, got {type(value).__name__}")
    if len(value) > max_length:
        raise InvalidValue(f"{name} must be at most {max_length} characters, got {len(value)}")
    return value


def _require_optional_int(value: int | None, name: str) -> int | None:
    return None if value is None else require_int(value, name)


def _require_device_variable(
    component: str,
    component_instance: str | None,
    evse_id: int | None,
    connector_id: int | None,
    variable: str,
    variable_instance: str | None,
) -> None:
    """A variable of the 2.0.1 device model: component and variable names and instances (at most 50
    characters each), and the component's EVSE and connector (a connector only on an EVSE)."""
    require_text(component, "component", max_length=50)
    require_optional_text(component_instance, "component_instance", max_length=50)
    _require_optional_int(evse_id, "evse_id")
    _require_optional_int(connector_id, "connector_id")
    if connector_id is not None and evse_id is None:
        raise InvalidValue("a component's connector needs its EVSE")
    require_text(variable, "variable", max_length=50)
    require_optional_text(variable_instance, "variable_instance", max_length=50)
