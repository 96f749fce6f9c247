"""Given-events / when-command / then-events helpers and sample values for domain tests."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from csms.domain import (
    Address,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    Coordinates,
    Currency,
    Evse,
    PowerType,
    PriceComponent,
    TariffDimension,
    TariffElement,
    TariffSnapshot,
    topic_of,
)

A = TypeVar("A")

T0 = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)

COMPANY_ID = UUID("00000000-0000-4000-8000-000000000001")
STATION_ID = UUID("00000000-0000-4000-8000-000000000002")
CHARGER_ID = UUID("00000000-0000-4000-8000-000000000003")
DRIVER_ID = UUID("00000000-0000-4000-8000-000000000004")
TARIFF_ID = UUID("00000000-0000-4000-8000-000000000005")
SESSION_ID = UUID("00000000-0000-4000-8000-000000000006")
OTHER_SESSION_ID = UUID("00000000-0000-4000-8000-000000000007")


def at(minutes: float = 0) -> datetime:
    """An instant `minutes` after T0."""
    return T0 + timedelta(minutes=minutes)


def given(kind: type[A], *events: Any) -> A:
    """Rebuild an aggregate from past events, folding each over the state as a repository does."""
    aggregate: Any = None
    for domain_event in events:
        aggregate = domain_event.mutate(aggregate)
    assert isinstance(aggregate, kind)
    return aggregate


def history(aggregate: Any) -> list[Any]:
    """The events an aggregate built with commands has recorded (and forgets them)."""
    return list(aggregate.collect_events())


def new_events(aggregate: Any) -> list[Any]:
    """Then: the events the command under test recorded."""
    return list(aggregate.collect_events())


def topics(events: Sequence[Any]) -> list[str]:
    return [topic_of(domain_event) for domain_event in events]


def amsterdam_address() -> Address:
    return Address(street="Stationsplein 1", city="Amsterdam", postal_code="1012 AB", country="NLD")


def amsterdam_coordinates() -> Coordinates:
    return Coordinates(Decimal("52.378901"), Decimal("4.900272"))


def type2_evse(evse_id: int) -> Evse:
    return Evse(
        evse_id=evse_id,
        connectors=(
            Connector(
                connector_id=1,
                standard=ConnectorStandard.IEC_62196_T2,
                format=ConnectorFormat.SOCKET,
                power_type=PowerType.AC_3_PHASE,
                max_power_w=22_000,
            ),
        ),
    )


def energy_snapshot(
    price_per_kwh: str, vat_percent: str, currency: Currency = Currency.EUR
) -> TariffSnapshot:
    """A snapshot pricing energy only."""
    return TariffSnapshot(
        tariff_id=TARIFF_ID,
        tariff_version=1,
        name="Standard",
        currency=currency,
        vat_percent=Decimal(vat_percent),
        elements=(
            TariffElement(price_components=(PriceComponent(TariffDimension.ENERGY, Decimal(price_per_kwh)),)),
        ),
    )
