"""Test helpers for station discovery on the real store and Redis: domain aggregates, projected and served.

Tests build companies, tariffs, stations and chargers as aggregates, save them through a Repository (so the
events are real, stored and decoded like the runner's), and apply their streams' events through `RedisTarget`
under a key prefix of their own. The run's database is shared with other tests, so a world projects only
the streams it created, in log order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import jsonschema
from aiohttp import web
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis

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
    PowerType,
    PriceComponent,
    Station,
    Tariff,
    TariffDimension,
    TariffElement,
)
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository
from csms.identity.signing_keys import SigningKeys, generate_signing_key
from csms.identity.verifier import build_token_verifier
from projections.log_tail import LogTail
from projections.positions import redis_position
from projections.projector import ProjectedEvent
from projections.redis_target import RedisTarget
from projections.station_discovery import StationDiscoveryProjector
from read_api.app import ReadApiDependencies, create_read_app
from read_api.freshness import Freshness

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
CODEC = EventCodec(EVENT_TYPES)


@dataclass
class World:
    """Aggregates saved to the store and projected into one Redis key space."""

    repository: Repository
    store: EventStore
    redis: Redis
    key_prefix: str
    projector: StationDiscoveryProjector = field(default_factory=StationDiscoveryProjector)
    now: datetime = AT
    streams: set[uuid.UUID] = field(default_factory=set)
    position: int = 0

    @property
    def target(self) -> RedisTarget:
        return RedisTarget(self.projector, self.redis, self.key_prefix)

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    async def save(self, *aggregates: Any) -> None:
        await self.repository.save(*aggregates)
        self.streams.update(aggregate.id for aggregate in aggregates)

    async def events(self, after: int = 0) -> list[ProjectedEvent]:
        """This world's events the projector handles, after `after`, in log order."""
        tail = LogTail(self.store.pool, CODEC, self.projector.topics, 1000)
        recorded = [r for stream in self.streams for r in await self.store.read_stream(stream)]
        wanted = sorted(
            (r for r in recorded if r.position > after and r.topic in self.projector.topics),
            key=lambda r: r.position,
        )
        return [tail.project(r) for r in wanted]

    async def project(self) -> int:
        """Apply every event not applied yet in one batch; the new position."""
        events = await self.events(self.position)
        if events:
            target = self.target
            generation = await target.active_generation()
            assert await target.apply(generation, events, self.position, events[-1].position)
            self.position = events[-1].position
        return self.position

    # ------------------------------------------------------------------ building

    async def company(self, name: str = "Charge Co") -> Company:
        company = Company.create(uuid.uuid4(), name, self.tick())
        await self.save(company)
        return company

    async def tariff(self, company: Company, energy: str = "0.40", **extra: str) -> Tariff:
        components = [PriceComponent(TariffDimension.ENERGY, Decimal(energy))]
        components += [PriceComponent(TariffDimension(k), Decimal(v)) for k, v in extra.items()]
        tariff = Tariff.create(
            uuid.uuid4(),
            company.id,
            "Standard",
            Currency.EUR,
            Decimal("21"),
            (TariffElement(tuple(components)),),
            self.tick(),
        )
        await self.save(tariff)
        return tariff

    def station(
        self,
        company: Company,
        latitude: float,
        longitude: float,
        *,
        tariff: Tariff | None = None,
        published: bool = True,
        name: str = "Station",
    ) -> Station:
        at = self.tick()
        station = Station.create(
            uuid.uuid4(),
            company.id,
            name,
            Address("Main street 1", "Utrecht", "3511 AA", "NLD"),
            Coordinates(Decimal(f"{latitude:.7f}"), Decimal(f"{longitude:.7f}")),
            "Europe/Amsterdam",
            at,
        )
        if tariff is not None:
            station.assign_tariff(tariff.id, at)
        if published:
            station.publish(at)
        return station

    def charger(self, station: Station, *connectors: tuple[ConnectorStandard, PowerType, int]) -> Charger:
        """A charger with one EVSE per connector given (OCPP 1.6 style)."""
        evses = tuple(
            Evse(n, (Connector(1, standard, ConnectorFormat.CABLE, power_type, power),))
            for n, (standard, power_type, power) in enumerate(connectors, start=1)
        )
        cp = f"CP-{uuid.uuid4().hex[:12]}"
        return Charger.register(
            uuid.uuid4(), station.company_id, station.id, cp, "test-hash", evses, self.tick()
        )

    def report(self, charger: Charger, evse_id: int, status: ConnectorStatus, connector_id: int = 1) -> None:
        at = self.tick()
        charger.report_connector_status(evse_id, connector_id, status, None, at, at)

    def connect(self, charger: Charger) -> None:
        charger.connected(OcppVersion.OCPP16, self.tick(), uuid.uuid4())


async def dump(redis: Redis, prefix: str) -> dict[str, Any]:
    """Every key under `prefix` with its value, comparable across runs (the prefix cut off)."""
    state: dict[str, Any] = {}
    async for raw in redis.scan_iter(match=prefix + "*", count=1000):
        key = raw.decode() if isinstance(raw, bytes) else raw
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            value: Any = await redis.get(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "set":
            value = sorted(await redis.smembers(key))
        elif kind == "zset":
            value = await redis.zrange(key, 0, -1, withscores=True)
        else:
            raise AssertionError(f"unexpected {kind} at {key}")
        state[key.removeprefix(prefix)] = value
    return state


class ReadApi:
    """The real read app over HTTP; every answer is checked against the OpenAPI document it serves."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client
        self.spec: dict[str, Any] = {}

    async def load_spec(self) -> None:
        response = await self.client.get("/openapi.json")
        assert response.status == 200
        self.spec = await response.json()

    async def get(
        self,
        path: str,
        template: str,
        *,
        params: Iterable[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any, Mapping[str, str]]:
        response = await self.client.get(path, params=list(params), headers=headers)
        document = None if response.status == 304 else await response.json(content_type=None)
        self.check(template, response.status, response.content_type, document)
        return response.status, document, response.headers  # case-insensitive

    def check(self, template: str, status: int, content_type: str, document: Any) -> None:
        operation = self.spec["paths"][template]["get"]
        declared = operation["responses"].get(str(status))
        assert declared is not None, f"GET {template} answered {status}, which is not documented"
        if document is None:
            assert "content" not in declared
            return
        media = declared.get("content", {}).get(content_type)
        assert media is not None, f"GET {template} {status}: undocumented content type {content_type}"
        schema = {**media["schema"], "components": self.spec["components"]}
        jsonschema.Draft202012Validator(schema).validate(document)


def read_app(world: World) -> web.Application:
    keys = SigningKeys.of(generate_signing_key())
    verifier = build_token_verifier(accept_local_tokens=True, issuer="csms", audience="csms-api", keys=keys)

    async def position_of(name: str) -> int:
        return await redis_position(world.redis, world.key_prefix, name)

    dependencies = ReadApiDependencies(
        pool=world.store.pool,
        redis=world.redis,
        key_prefix=world.key_prefix,
        verifier=verifier,
        freshness=Freshness(position_of, max_wait=1.0),
        readiness={},
    )
    return create_read_app(dependencies)
