"""The pure domain: aggregates, value objects, pricing and the event registry (no I/O, no clock)."""

from csms.domain.charger import (
    Availability,
    BootInfo,
    Charger,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    ConnectorState,
    ConnectorStatus,
    Evse,
    OcppVersion,
    PowerType,
    charger_id_for,
)
from csms.domain.charging_session import ChargingSession, SessionOrigin, SessionStatus, StopReason
from csms.domain.company import Company
from csms.domain.driver import Driver, PaymentMethod, RegisteredIdToken
from csms.domain.errors import (
    ChargerDecommissioned,
    CompanySuspended,
    ConnectorUnavailable,
    DomainError,
    IdTokenBlocked,
    InvalidState,
    InvalidValue,
    PaymentMethodRequired,
    SessionConflict,
    TariffArchived,
    UnknownConnector,
    UnknownIdToken,
)
from csms.domain.id_tokens import IdToken, IdTokenType
from csms.domain.location import Address, Coordinates
from csms.domain.metering import MeterReading
from csms.domain.money import Currency, Money
from csms.domain.opening_hours import OpeningHours, RegularHours
from csms.domain.pricing import PriceBreakdown, PriceLine, SessionFacts, price_session
from csms.domain.station import Station
from csms.domain.tariff import (
    DayOfWeek,
    PriceComponent,
    Tariff,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
    TariffSnapshot,
)
from csms.domain.topics import AGGREGATES, EVENT_TYPES, EventType, event_classes, topic_of

__all__ = [
    "AGGREGATES",
    "EVENT_TYPES",
    "Address",
    "Availability",
    "BootInfo",
    "Charger",
    "ChargerDecommissioned",
    "ChargingSession",
    "Company",
    "CompanySuspended",
    "Connector",
    "ConnectorFormat",
    "ConnectorStandard",
    "ConnectorState",
    "ConnectorStatus",
    "ConnectorUnavailable",
    "Coordinates",
    "Currency",
    "DayOfWeek",
    "DomainError",
    "Driver",
    "EventType",
    "Evse",
    "IdToken",
    "IdTokenBlocked",
    "IdTokenType",
    "InvalidState",
    "InvalidValue",
    "MeterReading",
    "Money",
    "OcppVersion",
    "OpeningHours",
    "PaymentMethod",
    "PaymentMethodRequired",
    "PowerType",
    "PriceBreakdown",
    "PriceComponent",
    "PriceLine",
    "RegisteredIdToken",
    "RegularHours",
    "SessionConflict",
    "SessionFacts",
    "SessionOrigin",
    "SessionStatus",
    "Station",
    "StopReason",
    "Tariff",
    "TariffArchived",
    "TariffDimension",
    "TariffElement",
    "TariffRestrictions",
    "TariffSnapshot",
    "UnknownConnector",
    "UnknownIdToken",
    "charger_id_for",
    "event_classes",
    "price_session",
    "topic_of",
]
