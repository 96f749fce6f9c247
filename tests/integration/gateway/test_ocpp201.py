"""OCPP 2.0.1 end to end over real WebSockets, named after the official CSMS test cases (Part 6)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from ocpp.v201 import call

from csms.domain import ChargingSession, SessionStatus, charger_id_for
from tests.integration.gateway.clients import connect
from tests.integration.gateway.conftest import GatewayEnv, now
from write_api.ocpp.outcome import CallStatus

V201 = "ocpp2.0.1"


def _iso(offset_seconds: float = 0) -> str:
    return (now() + timedelta(seconds=offset_seconds)).isoformat()


def _energy(wh: float, at: str, context: str = "Sample.Periodic") -> dict[str, Any]:
    return {
        "timestamp": at,
        "sampledValue": [
            {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register"},
            {"value": 7.4, "measurand": "Power.Active.Import", "unitOfMeasure": {"unit": "kW"}},
        ],
    }


def _transaction_event(
    event_type: str,
    seq_no: int,
    transaction_id: str,
    at: str,
    trigger: str,
    meter: list[dict[str, Any]] | None = None,
    token: str | None = None,
    **info: Any,
) -> Any:
    return call.TransactionEvent(
        event_type=event_type,
        timestamp=at,
        trigger_reason=trigger,
        seq_no=seq_no,
        transaction_info={"transaction_id": transaction_id, **info},
        meter_value=meter,
        evse={"id": 1, "connector_id": 1} if event_type == "Started" else None,
        id_token={"id_token": token, "type": "ISO14443"} if token else None,
    )


async def test_TC_B_01_CSMS_cold_boot_accepted(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        boot = await charger.call(
            call.BootNotification(
                charging_station={"model": "Wallbox X", "vendor_name": "Acme", "firmware_version": "1.2.3"},
                reason="PowerUp",
            )
        )
        for connector_status in ("Available",):
            await charger.call(
                call.StatusNotification(
                    timestamp=_iso(), connector_status=connector_status, evse_id=1, connector_id=1
                )
            )
        beat = await charger.call(call.Heartbeat())

    assert boot.status == "Accepted"
    assert boot.interval == 60
    assert beat.current_time
    topics = await gateway_env.topics(charge_point_id)
    assert topics[:4] == [
        "Charger.Registered",
        "Charger.Connected",
        "Charger.BootRecorded",
        "Charger.ConnectorStatusChanged",
    ]


async def test_TC_C_02_CSMS_local_start_with_an_unknown_token_is_refused(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        authorize = await charger.call(call.Authorize(id_token={"id_token": "NOBODY", "type": "ISO14443"}))
    assert authorize.id_token_info["status"] == "Unknown"


async def test_TC_C_06_CSMS_local_start_with_a_blocked_token_is_refused(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    await gateway_env.register_driver("BLOCKED-201", blocked=True)
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        authorize = await charger.call(
            call.Authorize(id_token={"id_token": "BLOCKED-201", "type": "ISO14443"})
        )
    assert authorize.id_token_info["status"] == "Blocked"


async def test_TC_E_03_and_TC_E_07_CSMS_local_start_and_local_stop(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    driver_id = await gateway_env.register_driver("CARD-201")
    tx = "TX-0001"
    begin, middle, end = _iso(-3600), _iso(-1800), _iso()
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        await charger.call(
            call.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
        )
        started = await charger.call(
            _transaction_event(
                "Started",
                0,
                tx,
                begin,
                "Authorized",
                [_energy(2_000, begin, "Transaction.Begin")],
                token="CARD-201",
                charging_state="Charging",
            )
        )
        # A retransmission of the same message (a new message id, same content) has no second effect.
        retransmitted = await charger.call(
            _transaction_event(
                "Started",
                0,
                tx,
                begin,
                "Authorized",
                [_energy(2_000, begin, "Transaction.Begin")],
                token="CARD-201",
                charging_state="Charging",
            )
        )
        await charger.call(
            _transaction_event("Updated", 1, tx, middle, "MeterValuePeriodic", [_energy(5_000, middle)])
        )
        # Replayed from an offline queue, out of order: older readings are not counted twice.
        await charger.call(
            _transaction_event("Updated", 1, tx, middle, "MeterValuePeriodic", [_energy(5_000, middle)])
        )
        ended = await charger.call(
            _transaction_event(
                "Ended",
                2,
                tx,
                end,
                "StopAuthorized",
                [_energy(12_000, end, "Transaction.End")],
                token="CARD-201",
                stopped_reason="Local",
            )
        )
        ended_again = await charger.call(
            _transaction_event(
                "Ended", 2, tx, end, "StopAuthorized", [_energy(12_000, end, "Transaction.End")]
            )
        )

    assert started.id_token_info["status"] == "Accepted"
    assert retransmitted.id_token_info["status"] == "Accepted"
    assert ended.id_token_info["status"] == "Accepted"
    assert ended_again.id_token_info is None
    session_id = await gateway_env.transactions.find(charger_id_for(charge_point_id), tx)
    assert session_id is not None
    session = await gateway_env.repository.get(session_id, ChargingSession, refresh=True)
    assert session.status is SessionStatus.PRICED
    assert session.driver_id == driver_id
    assert session.energy_wh == 10_000
    assert session.breakdown is not None
    assert session.breakdown.total_incl_vat == Decimal("3.63")
    topics = [e.topic for e in await gateway_env.store.read_stream(session_id)]
    assert topics == [
        "ChargingSession.StartedAtCharger",
        "ChargingSession.MeterValuesRecorded",
        "ChargingSession.MeterValuesRecorded",
        "ChargingSession.Stopped",
        "ChargingSession.Priced",
    ]


async def test_csms_reset_reaches_a_201_charger(gateway_env: GatewayEnv) -> None:
    charge_point_id, password = await gateway_env.register_charger()
    async with connect(gateway_env.url, charge_point_id, password, V201) as charger:
        await charger.call(
            call.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
        )
        reset = await gateway_env.gateway.call(charge_point_id, "Reset", {"type": "Immediate"}, 5)
    assert reset.status is CallStatus.RESULT
    assert reset.payload == {"status": "Accepted"}
    assert charger.resets == ["Immediate"]
