"""Demo data for `csms dev`: one company with stations and chargers, so a first run shows a working system."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid5

from csms.credentials import hash_charger_password, new_charger_password
from csms.directories import IdTokenDirectory
from csms.domain import (
    Address,
    Charger,
    Company,
    Connector,
    ConnectorFormat,
    ConnectorStandard,
    Coordinates,
    Currency,
    Driver,
    Evse,
    IdToken,
    IdTokenType,
    PowerType,
    PriceComponent,
    Station,
    Tariff,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
    charger_id_for,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool

# Fixed ids make seeding idempotent and let docs and scripts refer to the demo objects.
_NAMESPACE = UUID("0b9f6c1e-5f3a-4d0e-8d8c-6a1f2b3c4d5e")
DEMO_COMPANY_ID = uuid5(_NAMESPACE, "company")
DEMO_TARIFF_ID = uuid5(_NAMESPACE, "tariff")
DEMO_DRIVER_ID = uuid5(_NAMESPACE, "driver")
# The RFID card of the demo driver: `csms simulate --id-tag DEMO-RFID-0001` charges with it.
DEMO_ID_TAG = "DEMO-RFID-0001"


@dataclass(frozen=True)
class _DemoStation:
    key: str
    name: str
    street: str
    postal_code: str
    latitude: str
    longitude: str
    chargers: tuple[tuple[str, ConnectorStandard, PowerType, int], ...]


_STATIONS = (
    _DemoStation(
        "museumplein",
        "Museumplein",
        "Museumplein 1",
        "1071 DJ",
        "52.357910",
        "4.881340",
        (
            ("DEMO-CP-1", ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 150_000),
            ("DEMO-CP-2", ConnectorStandard.IEC_62196_T2, PowerType.AC_3_PHASE, 22_000),
        ),
    ),
    _DemoStation(
        "westerpark",
        "Westerpark",
        "Haarlemmerweg 8",
        "1014 BE",
        "52.386830",
        "4.875270",
        (("DEMO-CP-3", ConnectorStandard.IEC_62196_T2, PowerType.AC_3_PHASE, 11_000),),
    ),
    _DemoStation(
        "zuidas",
        "Zuidas",
        "Gustav Mahlerlaan 10",
        "1082 PP",
        "52.338250",
        "4.872080",
        (
            ("DEMO-CP-4", ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 300_000),
            ("DEMO-CP-5", ConnectorStandard.CHADEMO, PowerType.DC, 50_000),
        ),
    ),
)


async def seed_demo(database_url: str, credentials_file: Path) -> list[str]:
    """Record the demo company, tariff, stations and chargers; return the charger ids created.

    Idempotent: `csms dev` calls it on every start and it records nothing when the demo company exists.
    The chargers' passwords exist only at creation: they are written once to `credentials_file`
    (`chargerId password` per line, mode 0600) for the simulator, and stored only as hashes.
    """
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    try:
        if await store.read_stream(DEMO_COMPANY_ID):
            return []
        at = datetime.now(UTC)
        company = Company.create(DEMO_COMPANY_ID, "Demo Charging Co", at)
        tariff = Tariff.create(
            DEMO_TARIFF_ID,
            DEMO_COMPANY_ID,
            "Standard",
            Currency.EUR,
            Decimal("21"),
            (
                # Off-peak nights, then the day price (OCPI: the first matching element applies).
                TariffElement(
                    (PriceComponent(TariffDimension.ENERGY, Decimal("0.29")),),
                    TariffRestrictions(start_time=time(22, 0), end_time=time(6, 0)),
                ),
                TariffElement(
                    (
                        PriceComponent(TariffDimension.ENERGY, Decimal("0.45")),
                        PriceComponent(TariffDimension.PARKING_TIME, Decimal("6.00"), step_size=60),
                    )
                ),
            ),
            at,
            parking_grace_period_s=1800,
        )
        driver = Driver.register(DEMO_DRIVER_ID, "demo.driver@example.com", "Demo Driver", at)
        driver.add_id_token(IdToken(DEMO_ID_TAG, IdTokenType.RFID), at)
        aggregates: list[object] = [company, tariff, driver]
        credentials: list[tuple[str, str]] = []
        for demo in _STATIONS:
            station = Station.create(
                uuid5(_NAMESPACE, f"station:{demo.key}"),
                DEMO_COMPANY_ID,
                demo.name,
                Address(demo.street, "Amsterdam", demo.postal_code, "NLD"),
                Coordinates.parse(demo.latitude, demo.longitude),
                "Europe/Amsterdam",
                at,
            )
            station.assign_tariff(DEMO_TARIFF_ID, at)
            station.publish(at)
            aggregates.append(station)
            for charge_point_id, standard, power_type, max_power_w in demo.chargers:
                password = new_charger_password()
                connector = Connector(1, standard, ConnectorFormat.CABLE, power_type, max_power_w)
                aggregates.append(
                    Charger.register(
                        charger_id_for(charge_point_id),
                        DEMO_COMPANY_ID,
                        station.id,
                        charge_point_id,
                        hash_charger_password(password),
                        (Evse(1, (connector,)), Evse(2, (connector,))),
                        at,
                    )
                )
                credentials.append((charge_point_id, password))
        codec = EventCodec(EVENT_TYPES)
        await IdTokenDirectory(pool).claim(DEMO_ID_TAG, DEMO_DRIVER_ID)
        await Repository(store, codec).save(*aggregates, metadata={"correlation_id": "demo-seed"})
        _write_credentials(credentials_file, credentials)
        return [charger_id for charger_id, _ in credentials]
    finally:
        await store.close()
        await pool.close()


def _write_credentials(path: Path, credentials: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.writelines(f"{charger_id} {password}\n" for charger_id, password in credentials)
