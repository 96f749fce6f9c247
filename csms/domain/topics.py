"""The registry of stable event topics: the names events are stored under, and their versions.

A topic never changes once released, whatever the Python class is called later; the schema
version says which upcasters (csms.domain.upcasters) bring stored JSON up to date.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from eventsourcing.domain import Aggregate

from csms.domain.charger import Charger
from csms.domain.charging_session import ChargingSession
from csms.domain.company import Company
from csms.domain.driver import Driver
from csms.domain.payment_notification import PaymentNotification
from csms.domain.station import Station
from csms.domain.tariff import Tariff
from csms.domain.upcasters import Upcaster, station_created_v1_to_v2

__all__ = [
    "AGGREGATES",
    "EVENT_TYPES",
    "EVENT_TYPES_BY_CLASS",
    "EVENT_TYPES_BY_TOPIC",
    "EventType",
    "Upcaster",
    "event_classes",
    "topic_of",
]


@dataclass(frozen=True)
class EventType:
    """One stored event type: its topic, its class, and how to upcast older stored versions."""

    topic: str  # e.g. "ChargingSession.Started": never changes once released
    cls: type[Any]  # the class the @event decorator created, e.g. ChargingSession.Started
    version: int = 1  # current schema version of the stored JSON
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)  # from_version -> fn

    def __post_init__(self) -> None:
        missing = [v for v in range(1, self.version) if v not in self.upcasters]
        if missing:
            raise ValueError(f"{self.topic} v{self.version} has no upcaster from v{missing}")

    def upcast(self, data: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Bring stored JSON data at `from_version` up to the current version."""
        if not 1 <= from_version <= self.version:
            raise ValueError(f"{self.topic} has no version {from_version}")
        for version in range(from_version, self.version):
            data = self.upcasters[version](data)
        return data


def _event(aggregate: type[Any], name: str) -> type[Any]:
    """The event class `name` defined on `aggregate` (fails at import if it was renamed)."""
    cls = vars(aggregate).get(name)
    if not (isinstance(cls, type) and issubclass(cls, aggregate.Event)):
        raise LookupError(f"{aggregate.__name__} defines no event {name!r}")
    return cls


AGGREGATES: tuple[type[Any], ...] = (
    Company,
    Station,
    Charger,
    ChargingSession,
    Driver,
    Tariff,
    PaymentNotification,
)

EVENT_TYPES: tuple[EventType, ...] = (
    # Company
    EventType("Company.Created", _event(Company, "Created")),
    EventType("Company.Renamed", _event(Company, "Renamed")),
    EventType("Company.Suspended", _event(Company, "Suspended")),
    EventType("Company.Reactivated", _event(Company, "Reactivated")),
    # Station
    EventType(
        "Station.Created",
        _event(Station, "Created"),
        version=2,
        upcasters={1: station_created_v1_to_v2},
    ),
    EventType("Station.Updated", _event(Station, "Updated")),
    EventType("Station.Published", _event(Station, "Published")),
    EventType("Station.Unpublished", _event(Station, "Unpublished")),
    EventType("Station.TariffAssigned", _event(Station, "TariffAssigned")),
    EventType("Station.TariffUnassigned", _event(Station, "TariffUnassigned")),
    EventType("Station.Removed", _event(Station, "Removed")),
    # Charger
    EventType("Charger.Registered", _event(Charger, "Registered")),
    EventType("Charger.PasswordRotated", _event(Charger, "PasswordRotated")),
    EventType("Charger.EvsesConfigured", _event(Charger, "EvsesConfigured")),
    EventType("Charger.AvailabilityChanged", _event(Charger, "AvailabilityChanged")),
    EventType("Charger.Decommissioned", _event(Charger, "Decommissioned")),
    EventType("Charger.BootRecorded", _event(Charger, "BootRecorded")),
    EventType("Charger.Connected", _event(Charger, "Connected")),
    EventType("Charger.Disconnected", _event(Charger, "Disconnected")),
    EventType("Charger.ConnectorStatusChanged", _event(Charger, "ConnectorStatusChanged")),
    EventType("Charger.SessionAssigned", _event(Charger, "SessionAssigned")),
    EventType("Charger.SessionReleased", _event(Charger, "SessionReleased")),
    EventType("Charger.TransactionAnomalyRecorded", _event(Charger, "TransactionAnomalyRecorded")),
    EventType("Charger.FirmwareStatusReported", _event(Charger, "FirmwareStatusReported")),
    EventType("Charger.DiagnosticsStatusReported", _event(Charger, "DiagnosticsStatusReported")),
    EventType("Charger.SecurityEventReported", _event(Charger, "SecurityEventReported")),
    EventType("Charger.DeviceEventsReported", _event(Charger, "DeviceEventsReported")),
    EventType("Charger.DeviceReportReceived", _event(Charger, "DeviceReportReceived")),
    # ChargingSession
    EventType("ChargingSession.Requested", _event(ChargingSession, "Requested")),
    EventType("ChargingSession.StartedAtCharger", _event(ChargingSession, "StartedAtCharger")),
    EventType("ChargingSession.Accepted", _event(ChargingSession, "Accepted")),
    EventType("ChargingSession.Rejected", _event(ChargingSession, "Rejected")),
    EventType("ChargingSession.Expired", _event(ChargingSession, "Expired")),
    EventType("ChargingSession.Started", _event(ChargingSession, "Started")),
    EventType("ChargingSession.MeterValuesRecorded", _event(ChargingSession, "MeterValuesRecorded")),
    EventType("ChargingSession.Stopped", _event(ChargingSession, "Stopped")),
    EventType("ChargingSession.Priced", _event(ChargingSession, "Priced")),
    EventType("ChargingSession.PaymentSucceeded", _event(ChargingSession, "PaymentSucceeded")),
    EventType("ChargingSession.PaymentFailed", _event(ChargingSession, "PaymentFailed")),
    EventType("ChargingSession.PaymentAttempted", _event(ChargingSession, "PaymentAttempted")),
    EventType("ChargingSession.PaymentNotRequired", _event(ChargingSession, "PaymentNotRequired")),
    EventType("ChargingSession.RefundRequested", _event(ChargingSession, "RefundRequested")),
    EventType("ChargingSession.Refunded", _event(ChargingSession, "Refunded")),
    EventType("ChargingSession.RefundRequestClosed", _event(ChargingSession, "RefundRequestClosed")),
    EventType("ChargingSession.RefundFailed", _event(ChargingSession, "RefundFailed")),
    EventType("ChargingSession.DisputeOpened", _event(ChargingSession, "DisputeOpened")),
    EventType("ChargingSession.DisputeClosed", _event(ChargingSession, "DisputeClosed")),
    # Driver
    EventType("Driver.Registered", _event(Driver, "Registered")),
    EventType("Driver.ProfileUpdated", _event(Driver, "ProfileUpdated")),
    EventType("Driver.IdTokenAdded", _event(Driver, "IdTokenAdded")),
    EventType("Driver.IdTokenBlocked", _event(Driver, "IdTokenBlocked")),
    EventType("Driver.IdTokenUnblocked", _event(Driver, "IdTokenUnblocked")),
    EventType("Driver.IdTokenRemoved", _event(Driver, "IdTokenRemoved")),
    EventType("Driver.StripeCustomerSet", _event(Driver, "StripeCustomerSet")),
    EventType("Driver.PaymentMethodAdded", _event(Driver, "PaymentMethodAdded")),
    EventType("Driver.PaymentMethodRemoved", _event(Driver, "PaymentMethodRemoved")),
    EventType("Driver.DefaultPaymentMethodSet", _event(Driver, "DefaultPaymentMethodSet")),
    # Tariff
    EventType("Tariff.Created", _event(Tariff, "Created")),
    EventType("Tariff.Renamed", _event(Tariff, "Renamed")),
    EventType("Tariff.ElementsReplaced", _event(Tariff, "ElementsReplaced")),
    EventType("Tariff.VatChanged", _event(Tariff, "VatChanged")),
    EventType("Tariff.ParkingGracePeriodChanged", _event(Tariff, "ParkingGracePeriodChanged")),
    EventType("Tariff.Archived", _event(Tariff, "Archived")),
    # PaymentNotification
    EventType("PaymentNotification.Received", _event(PaymentNotification, "Received")),
)


def _by_topic() -> Mapping[str, EventType]:
    index: dict[str, EventType] = {}
    for event_type in EVENT_TYPES:
        if event_type.topic in index:
            raise ValueError(f"topic {event_type.topic!r} is registered twice")
        index[event_type.topic] = event_type
    return MappingProxyType(index)


def _by_class() -> Mapping[type[Any], EventType]:
    index: dict[type[Any], EventType] = {}
    for event_type in EVENT_TYPES:
        if event_type.cls in index:
            raise ValueError(f"{event_type.cls.__qualname__} is registered twice")
        index[event_type.cls] = event_type
    return MappingProxyType(index)


EVENT_TYPES_BY_TOPIC: Mapping[str, EventType] = _by_topic()
EVENT_TYPES_BY_CLASS: Mapping[type[Any], EventType] = _by_class()


def topic_of(domain_event: object) -> str:
    """The stable topic of an event instance."""
    return EVENT_TYPES_BY_CLASS[type(domain_event)].topic


def event_classes(aggregate: type[Any]) -> tuple[type[Any], ...]:
    """Every event class `aggregate` can emit, found by inspecting the class itself.

    These are the event classes nested on the aggregate, minus its `Event` base class and,
    when its creation event has another name (`Registered`, `Requested`), the `Created`
    class the library generates but nothing ever emits.
    """
    nested = [
        value
        for value in vars(aggregate).values()
        if isinstance(value, type) and issubclass(value, aggregate.Event) and value is not aggregate.Event
    ]
    creation = [cls for cls in nested if issubclass(cls, Aggregate.Created)]
    if len(creation) > 1:
        nested = [cls for cls in nested if cls is not vars(aggregate).get("Created")]
    return tuple(nested)
