"""A real gateway on a loopback port, on the run's database, with chargers registered through the domain."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aiohttp.test_utils import TestServer

from csms.credentials import hash_charger_password, new_charger_password
from csms.directories import EarlyMeterValues, IdTokenDirectory, TransactionDirectory
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
    charger_id_for,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import AggregateCache, EventCodec, EventStore, Repository, create_pool
from write_api.charger_reports import ChargerReports
from write_api.ocpp.gateway import Gateway, GatewayConfig, create_gateway_app


def now() -> datetime:
    return datetime.now(UTC)


async def register_charger(repository: Repository, evses: int = 2, *, tariff: bool = True) -> tuple[str, str]:
    """A new company, station (0.30/kWh unless `tariff` is False) and charger: (id, password)."""
    at = now()
    charge_point_id = f"CP-{uuid.uuid4().hex[:10]}"
    password = new_charger_password()
    company = Company.create(uuid.uuid4(), "Test Charging", at)
    station = Station.create(
        uuid.uuid4(),
        company.id,
        "Test station",
        Address("Main street 1", "Utrecht", "3511 AA", "NLD"),
        Coordinates(Decimal("52.09"), Decimal("5.12")),
        "Europe/Amsterdam",
        at,
    )
    aggregates: list[object] = [company, station]
    if tariff:
        price = Tariff.create(
            uuid.uuid4(),
            company.id,
            "Energy",
            Currency.EUR,
            Decimal("21"),
            (TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal("0.30")),)),),
            at,
        )
        station.assign_tariff(price.id, at)
        aggregates.append(price)
    connector = Connector(
        1, ConnectorStandard.IEC_62196_T2, ConnectorFormat.SOCKET, PowerType.AC_3_PHASE, 22_000
    )
    charger = Charger.register(
        charger_id_for(charge_point_id),
        company.id,
        station.id,
        charge_point_id,
        hash_charger_password(password),
        tuple(Evse(n, (connector,)) for n in range(1, evses + 1)),
        at,
    )
    aggregates.append(charger)
    await repository.save(*aggregates)
    return charge_point_id, password


@dataclass
class GatewayEnv:
    url: str
    gateway: Gateway
    store: EventStore
    repository: Repository
    tokens: IdTokenDirectory
    transactions: TransactionDirectory
    frames: list[tuple[str, str, str]]

    async def register_charger(self, evses: int = 2, *, tariff: bool = True) -> tuple[str, str]:
        return await register_charger(self.repository, evses, tariff=tariff)

    async def register_driver(self, token: str, *, blocked: bool = False) -> uuid.UUID:
        at = now()
        driver = Driver.register(uuid.uuid4(), f"{uuid.uuid4().hex[:8]}@example.com", "Test Driver", at)
        driver.add_id_token(IdToken(token, IdTokenType.RFID), at)
        if blocked:
            driver.block_id_token(token, "lost card", at)
        await self.repository.save(driver)
        assert await self.tokens.claim(token, driver.id)
        return driver.id

    async def wait_for(
        self, charge_point_id: str, topic: str, count: int = 1, within: float = 10.0
    ) -> list[str]:
        """The charger's topics once `topic` has been recorded `count` times, woken by the store's NOTIFY."""
        stream = charger_id_for(charge_point_id)
        async with asyncio.timeout(within):
            async with await self.store.subscribe(f"test-{uuid.uuid4()}", start_after=0) as events:
                while (topics := await self.topics(charge_point_id)).count(topic) < count:
                    batch = await events.next_batch()
                    if not any(e.stream_id == stream and e.topic == topic for e in batch):
                        continue
        return topics

    async def topics(self, charge_point_id: str) -> list[str]:
        return [e.topic for e in await self.store.read_stream(charger_id_for(charge_point_id))]


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def gateway_env(database_url: str) -> AsyncIterator[GatewayEnv]:
    pool = await create_pool(database_url, max_size=10)
    store = EventStore(pool, database_url)
    repository = Repository(store, EventCodec(EVENT_TYPES), AggregateCache())
    tokens = IdTokenDirectory(pool)
    transactions = TransactionDirectory(pool)
    reports = ChargerReports(repository, transactions, tokens, EarlyMeterValues(pool), now)
    frames: list[tuple[str, str, str]] = []
    gateway = Gateway(
        reports,
        GatewayConfig(
            heartbeat_interval_seconds=60,
            ping_interval_seconds=5.0,
            max_frame_bytes=65_536,
            rate_limit_per_second=1000,
            rate_limit_burst=1000,
        ),
        now,
        frame_log=lambda cp, direction, raw: frames.append((cp, direction, raw)),
    )
    server = TestServer(create_gateway_app(gateway), host="127.0.0.1")
    await server.start_server()
    try:
        yield GatewayEnv(
            f"ws://127.0.0.1:{server.port}/ocpp", gateway, store, repository, tokens, transactions, frames
        )
    finally:
        await server.close()
        await store.close()
        await pool.close()
