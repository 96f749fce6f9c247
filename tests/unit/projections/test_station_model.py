"""Station discovery's pure mapping: OCPP to OCPI status, tariffs to price summaries, visibility, ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest

from csms.domain import (
    Address,
    Charger,
    Company,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    ConnectorStatus,
    Coordinates,
    Currency,
    Evse,
    OcppVersion,
    OpeningHours,
    PowerType,
    PriceComponent,
    RegularHours,
    Station,
    Tariff,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
)
from csms.domain.topics import topic_of
from projections import station_model as model

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def _events(aggregate: Any) -> list[tuple[str, Any, int]]:
    return [(topic_of(e), e, e.originator_version) for e in aggregate.collect_events()]


def _charger(*connectors: Connector, evses: int = 1) -> tuple[Charger, model.ChargerState]:
    charger = Charger.register(
        uuid.uuid4(),
        uuid.uuid4(),
        uuid.uuid4(),
        "CP-1",
        "hash",
        tuple(Evse(n, connectors) for n in range(1, evses + 1)),
        AT,
    )
    (_, registered, version), *_ = _events(charger)
    return charger, model.new_charger(registered, version)


def _apply(charger: Charger, state: model.ChargerState) -> None:
    for topic, event, version in _events(charger):
        model.apply_charger_event(state, topic, event, version)


T2 = Connector(1, ConnectorStandard.IEC_62196_T2, ConnectorFormat.SOCKET, PowerType.AC_3_PHASE, 22_000)
CCS = Connector(2, ConnectorStandard.IEC_62196_T2_COMBO, ConnectorFormat.CABLE, PowerType.DC, 150_000)


@pytest.mark.parametrize(
    ("ocpp", "ocpi"),
    [
        (ConnectorStatus.AVAILABLE, "AVAILABLE"),
        (ConnectorStatus.PREPARING, "CHARGING"),
        (ConnectorStatus.CHARGING, "CHARGING"),
        (ConnectorStatus.SUSPENDED_EV, "CHARGING"),
        (ConnectorStatus.SUSPENDED_EVSE, "CHARGING"),
        (ConnectorStatus.FINISHING, "CHARGING"),
        (ConnectorStatus.OCCUPIED, "CHARGING"),
        (ConnectorStatus.RESERVED, "RESERVED"),
        (ConnectorStatus.UNAVAILABLE, "INOPERATIVE"),
        (ConnectorStatus.FAULTED, "OUTOFORDER"),
    ],
)
def test_every_ocpp_connector_status_maps_to_an_ocpi_evse_status(ocpp: ConnectorStatus, ocpi: str) -> None:
    charger, state = _charger(T2)
    charger.connected(OcppVersion.OCPP16, AT)
    charger.report_connector_status(1, 1, ocpp, None, AT, AT)
    _apply(charger, state)

    assert model.evse_status(state, state.evses[0]) == ocpi
    assert set(model.OCPP_TO_OCPI) == {status.value for status in ConnectorStatus}


def test_an_offline_charger_shows_unknown_whatever_it_said_last() -> None:
    charger, state = _charger(T2)
    assert model.evse_status(state, state.evses[0]) == "UNKNOWN"  # never connected

    charger.connected(OcppVersion.OCPP16, AT)
    charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, AT, AT)
    _apply(charger, state)
    assert model.evse_status(state, state.evses[0]) == "AVAILABLE"

    charger.disconnected(AT + timedelta(seconds=1), "closed")
    _apply(charger, state)
    assert model.evse_status(state, state.evses[0]) == "UNKNOWN"


def test_a_connected_charger_without_a_status_report_is_unknown() -> None:
    charger, state = _charger(T2)
    charger.connected(OcppVersion.OCPP16, AT)
    _apply(charger, state)

    assert model.evse_status(state, state.evses[0]) == "UNKNOWN"


def test_operator_inoperative_and_whole_charger_faults_override_connectors() -> None:
    charger, state = _charger(T2, evses=2)
    charger.connected(OcppVersion.OCPP16, AT)
    charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, AT, AT)
    charger.report_connector_status(2, 1, ConnectorStatus.AVAILABLE, None, AT, AT)
    charger.report_connector_status(0, 0, ConnectorStatus.FAULTED, "GroundFailure", AT, AT)
    _apply(charger, state)
    assert [model.evse_status(state, e) for e in state.evses] == ["OUTOFORDER", "OUTOFORDER"]

    later = AT + timedelta(seconds=1)
    charger.report_connector_status(0, 0, ConnectorStatus.AVAILABLE, None, later, later)
    charger.change_availability(charger.availability.INOPERATIVE, later)
    _apply(charger, state)
    assert [model.evse_status(state, e) for e in state.evses] == ["INOPERATIVE", "INOPERATIVE"]


def test_an_evse_with_several_connectors_is_in_use_when_one_is_and_free_when_one_is() -> None:
    charger, state = _charger(T2, CCS)
    charger.connected(OcppVersion.OCPP201, AT)
    charger.report_connector_status(1, 1, ConnectorStatus.FAULTED, None, AT, AT)
    charger.report_connector_status(1, 2, ConnectorStatus.AVAILABLE, None, AT, AT)
    _apply(charger, state)
    assert model.evse_status(state, state.evses[0]) == "AVAILABLE"

    later = AT + timedelta(seconds=1)
    charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, later, later)
    charger.report_connector_status(1, 2, ConnectorStatus.OCCUPIED, None, later, later)
    _apply(charger, state)
    assert model.evse_status(state, state.evses[0]) == "CHARGING"  # one vehicle at a time per EVSE

    charger.report_connector_status(1, 1, ConnectorStatus.UNAVAILABLE, None, later, later)
    charger.report_connector_status(1, 2, ConnectorStatus.FAULTED, None, later, later)
    _apply(charger, state)
    assert model.evse_status(state, state.evses[0]) == "INOPERATIVE"  # the least bad of the rest


def test_applying_an_event_twice_changes_nothing_the_second_time() -> None:
    charger, state = _charger(T2)
    charger.connected(OcppVersion.OCPP16, AT)
    charger.report_connector_status(1, 1, ConnectorStatus.CHARGING, None, AT, AT)
    events = _events(charger)
    for topic, event, version in events:
        assert model.apply_charger_event(state, topic, event, version)
    before = orjson.dumps(model._as_plain(state))
    for topic, event, version in events:
        assert not model.apply_charger_event(state, topic, event, version)

    assert orjson.dumps(model._as_plain(state)) == before


def test_evse_uids_are_stable_distinct_and_fit_ocpi() -> None:
    charger_id = str(uuid.uuid4())

    first, again, other = (
        model.evse_uid(charger_id, 1),
        model.evse_uid(charger_id, 1),
        model.evse_uid(charger_id, 2),
    )

    assert first == again != other
    assert len(first) == 36  # OCPI CiString(36)
    assert str(uuid.UUID(first)) == first
    assert model.evse_uid(str(uuid.uuid4()), 1) != first


@pytest.mark.parametrize(
    ("value", "text"),
    [("52.09", "52.09000"), ("-4.1234567", "-4.1234567"), ("5.123456789", "5.1234568"), ("0", "0.00000")],
)
def test_coordinates_are_written_as_ocpi_geolocation(value: str, text: str) -> None:
    assert model.ocpi_degrees(Decimal(value)) == text


def _tariff(*elements: TariffElement, vat: str = "21") -> model.TariffState:
    tariff = Tariff.create(uuid.uuid4(), uuid.uuid4(), "Day", Currency.EUR, Decimal(vat), elements, AT, 900)
    (_, created, version), *_ = _events(tariff)
    return model.new_tariff(created, version)


def test_a_price_summary_gives_each_dimensions_range_with_and_without_vat() -> None:
    state = _tariff(
        TariffElement(
            (PriceComponent(TariffDimension.ENERGY, Decimal("0.29")),),
            TariffRestrictions(start_time=time(22, 0), end_time=time(6, 0)),
        ),
        TariffElement(
            (
                PriceComponent(TariffDimension.ENERGY, Decimal("0.45")),
                PriceComponent(TariffDimension.PARKING_TIME, Decimal("6.00"), step_size=60),
                PriceComponent(TariffDimension.FLAT, Decimal("0.50")),
            )
        ),
    )

    summary = model.price_summary(state)

    assert summary == {
        "tariffId": state.tariff_id,
        "name": "Day",
        "currency": "EUR",
        "vatPercent": "21",
        "conditional": True,
        "energyPerKwh": {"min": "0.29", "max": "0.45", "minInclVat": "0.3509", "maxInclVat": "0.5445"},
        "parkingPerHour": {"min": "6.00", "max": "6.00", "minInclVat": "7.26", "maxInclVat": "7.26"},
        "flatPerSession": {"min": "0.50", "max": "0.50", "minInclVat": "0.605", "maxInclVat": "0.605"},
        "parkingGracePeriodSeconds": 900,
    }
    assert model.price_summary(None) is None


def test_a_vat_change_moves_the_prices_including_vat() -> None:
    tariff = Tariff.create(
        uuid.uuid4(),
        uuid.uuid4(),
        "Flat",
        Currency.EUR,
        Decimal("21"),
        (TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal("0.50")),)),),
        AT,
    )
    (topic, created, version), *_ = _events(tariff)
    state = model.new_tariff(created, version)
    tariff.change_vat(Decimal("9"), AT + timedelta(seconds=1))
    for topic, event, version in _events(tariff):
        assert model.apply_tariff_event(state, topic, event, version)

    summary = model.price_summary(state)

    assert summary is not None
    assert summary["energyPerKwh"]["maxInclVat"] == "0.545"
    assert summary["conditional"] is False


def _station(**kwargs: Any) -> model.StationState:
    station = Station.create(
        uuid.uuid4(),
        uuid.uuid4(),
        "Zuidas",
        Address("Gustav Mahlerlaan 10", "Amsterdam", "1082 PP", "NLD"),
        Coordinates(Decimal("52.338250"), Decimal("4.872080")),
        "Europe/Amsterdam",
        AT,
        OpeningHours(False, (RegularHours(1, time(8), time(0)),)),
    )
    station.publish(AT)
    state = model.StationState(station_id=str(station.id))
    for topic, event, version in _events(station):
        model.apply_station_event(state, topic, event, version)
    for name, value in kwargs.items():
        setattr(state, name, value)
    return state


def test_a_published_station_renders_as_an_ocpi_location_with_its_facets() -> None:
    charger, charger_state = _charger(T2, evses=2)
    charger.connected(OcppVersion.OCPP16, AT)
    charger.report_connector_status(1, 1, ConnectorStatus.AVAILABLE, None, AT, AT)
    charger.report_connector_status(2, 1, ConnectorStatus.CHARGING, None, AT, AT)
    _apply(charger, charger_state)
    station = _station(chargers={charger_state.charger_id: charger_state})

    rendered = model.render(station, None, None)

    assert rendered.doc is not None
    assert rendered.card is not None
    document = orjson.loads(rendered.doc)
    assert document["coordinates"] == {"latitude": "52.338250", "longitude": "4.872080"}
    assert document["openingTimes"] == {
        "twentyfourseven": False,
        "regularHours": [{"weekday": 1, "periodBegin": "08:00", "periodEnd": "00:00"}],
    }
    assert [(e["status"], e["chargerId"], e["connectorId"]) for e in document["evses"]] == [
        ("AVAILABLE", "CP-1", 1),
        ("CHARGING", "CP-1", 2),
    ]
    card = orjson.loads(rendered.card)
    assert (card["evseCount"], card["availableEvseCount"], card["maxElectricPower"]) == (2, 1, 22_000)
    assert rendered.geo == pytest.approx((4.87208, 52.33825))
    assert rendered.facets == {
        f"{family}:{facet}": 22_000
        for family in ("all", "available")
        for facet in ("any", "std:IEC_62196_T2", "pt:AC_3_PHASE", "std:IEC_62196_T2:pt:AC_3_PHASE")
    }
    assert set(rendered.evses) == {model.evse_uid(charger_state.charger_id, n) for n in (1, 2)}


def test_hidden_stations_render_nothing() -> None:
    suspended = model.CompanyState(company_id="c", version=2, name="Co", suspended=True)

    assert model.render(_station(published=False), None, None) == model.Rendered()
    assert model.render(_station(removed=True), None, None) == model.Rendered()
    assert model.render(_station(), None, suspended) == model.Rendered()


def test_a_station_without_evses_keeps_its_document_but_is_not_indexed_for_nearby() -> None:
    rendered = model.render(_station(), None, None)

    assert rendered.doc is not None
    assert rendered.geo is None
    assert rendered.facets == {}


def test_a_company_event_applied_twice_counts_once() -> None:
    company = Company.create(uuid.uuid4(), "Co", AT)
    company.suspend("unpaid", AT)
    (_, created, version), suspended = _events(company)
    state = model.new_company(created, version)

    assert model.apply_company_event(state, *suspended)
    assert not model.apply_company_event(state, *suspended)
    assert state.suspended
