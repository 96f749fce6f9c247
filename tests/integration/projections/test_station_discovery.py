"""Station discovery end to end: events from the real store, projected into Redis, served by the read API.

Nearby answers are checked against a brute-force haversine over the same stations (with Redis's Earth
radius; GEO quantises coordinates to about 0.6 m, hence the metre or two of tolerance), and every HTTP answer
against the OpenAPI document the app serves.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from csms.domain import (
    Availability,
    Charger,
    ConnectorStandard,
    ConnectorStatus,
    PowerType,
    PriceComponent,
    Station,
    TariffDimension,
    TariffElement,
)
from csms.eventstore import EventStore, Repository, create_pool
from projections import station_model as model
from projections.redis_target import RedisTarget
from projections.station_discovery import StationDiscoveryProjector
from read_api.station_routes import STATION_RATE_LIMIT, RateLimiter
from tests.integration.projections.station_world import CODEC, ReadApi, World, dump, read_app

NEARBY = "/stations/nearby"
STATION = "/stations/{id}"
EVSE = "/evses/{evseUid}"
EARTH_RADIUS_M = 6372797.560856  # Redis's (src/geohash_helper.c), so edge cases agree with GEOSEARCH
CENTER = (52.0, 5.0)

T2_AC = (ConnectorStandard.IEC_62196_T2, PowerType.AC_3_PHASE, 22_000)
T2_AC_SLOW = (ConnectorStandard.IEC_62196_T2, PowerType.AC_1_PHASE, 7_400)
CCS_50 = (ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 50_000)
CCS_150 = (ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 150_000)
CCS_300 = (ConnectorStandard.IEC_62196_T2_COMBO, PowerType.DC, 300_000)
CHADEMO = (ConnectorStandard.CHADEMO, PowerType.DC, 50_000)


@pytest.fixture
async def store_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
async def world(
    store_pool: asyncpg.Pool, database_url: str, redis: Redis, redis_key_prefix: str
) -> AsyncIterator[World]:
    store = EventStore(store_pool, database_url)
    # A key space of the test's own under the run's prefix (which the redis fixture cleans up).
    yield World(Repository(store, CODEC), store, redis, f"{redis_key_prefix}{uuid.uuid4().hex[:8]}:")
    await store.close()


@pytest.fixture
async def api(world: World) -> AsyncIterator[ReadApi]:
    app = read_app(world)
    app[STATION_RATE_LIMIT] = RateLimiter(rate=1e6, burst=1e6)  # these tests are one very busy client
    async with TestClient(TestServer(app)) as client:
        reader = ReadApi(client)
        await reader.load_spec()
        yield reader


def haversine_m(latitude: float, longitude: float, other_latitude: float, other_longitude: float) -> float:
    phi1, phi2 = math.radians(latitude), math.radians(other_latitude)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(other_longitude - longitude) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def point_at(
    distance_m: float, bearing_degrees: float, origin: tuple[float, float] = CENTER
) -> tuple[float, float]:
    """The point `distance_m` from `origin` in the direction `bearing_degrees` (0 = north), on the sphere."""
    phi1, lambda1 = math.radians(origin[0]), math.radians(origin[1])
    delta, theta = distance_m / EARTH_RADIUS_M, math.radians(bearing_degrees)
    phi2 = math.asin(math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta))
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1), math.cos(delta) - math.sin(phi1) * math.sin(phi2)
    )
    return math.degrees(phi2), math.degrees(lambda2)


def nearby_params(lat: float, lon: float, /, **filters: object) -> list[tuple[str, str]]:
    params = [("lat", repr(lat)), ("lon", repr(lon))]
    for name, value in filters.items():
        values = value if isinstance(value, list) else [value]
        params += [(name, str(v).lower() if isinstance(v, bool) else str(v)) for v in values]
    return params


async def project_in_batches(world: World, size: int, key_prefix: str) -> None:
    """Apply the world's events again into another key space, `size` events per batch."""
    target = RedisTarget(StationDiscoveryProjector(), world.redis, key_prefix)
    generation = await target.active_generation()
    events, position = await world.events(), 0
    for start in range(0, len(events), size):
        batch = events[start : start + size]
        assert await target.apply(generation, batch, position, batch[-1].position)
        position = batch[-1].position


# --------------------------------------------------------------------------- idempotency


async def test_applying_the_same_events_again_or_batched_differently_gives_the_same_state(
    world: World,
) -> None:
    company = await world.company()
    cheap, dear = await world.tariff(company, "0.30"), await world.tariff(company, "0.60")
    stations = [world.station(company, *point_at(300 * n, 40 * n), tariff=cheap) for n in range(4)]
    chargers = [world.charger(s, T2_AC, CCS_150) for s in stations]
    for charger in chargers:
        world.connect(charger)
        world.report(charger, 1, ConnectorStatus.AVAILABLE)
        world.report(charger, 2, ConnectorStatus.CHARGING)
    await world.save(*stations, *chargers)
    stations[0].assign_tariff(dear.id, world.tick())
    stations[1].unpublish(world.tick())
    chargers[2].disconnected(world.tick(), "closed")
    chargers[3].configure_evses(chargers[3].evses[:1], world.tick())
    cheap.change_vat(Decimal("9"), world.tick())
    company.rename("Charge & Co", world.tick())
    await world.save(stations[0], stations[1], chargers[2], chargers[3], cheap, company)
    position = await world.project()
    prefix = world.target.prefix(1)
    once = await dump(world.redis, prefix)

    # The runner never hands a projector an applied position again, but a replay must not change anything.
    target = world.target
    assert await target.apply(1, await world.events(), position, position)
    assert await dump(world.redis, prefix) == once

    for size in (1, 7):
        other = f"{world.key_prefix}batches-{size}:"
        await project_in_batches(world, size, other)
        assert (
            await dump(world.redis, RedisTarget(StationDiscoveryProjector(), world.redis, other).prefix(1))
            == once
        )


# --------------------------------------------------------------------------- nearby against brute force


@dataclass
class Expected:
    """What the test itself knows about a station it built, to compute the right answer without Redis."""

    station_id: str
    latitude: float
    longitude: float
    published: bool
    evses: list[tuple[bool, tuple[ConnectorStandard, PowerType, int]]] = field(default_factory=list)

    def fits(
        self,
        standards: Iterable[ConnectorStandard] = (),
        power_type: PowerType | None = None,
        min_power_w: float = 0,
        available: bool = False,
    ) -> bool:
        wanted = set(standards)
        return self.published and any(
            (not wanted or standard in wanted)
            and (power_type is None or kind is power_type)
            and power >= min_power_w
            and (free or not available)
            for free, (standard, kind, power) in self.evses
        )


async def random_world(world: World, count: int, seed: int) -> list[Expected]:
    rng = random.Random(seed)
    company = await world.company()
    tariff = await world.tariff(company)
    aggregates: list[Station | Charger] = []
    expected: list[Expected] = []
    for _ in range(count):
        latitude, longitude = point_at(rng.uniform(0, 9_000), rng.uniform(0, 360))
        published = rng.random() > 0.1
        station = world.station(company, latitude, longitude, tariff=tariff, published=published)
        stored = station.coordinates
        known = Expected(str(station.id), float(stored.latitude), float(stored.longitude), published)
        aggregates.append(station)
        expected.append(known)
        if rng.random() < 0.05:
            continue  # no charger yet: not findable
        layout = rng.sample([T2_AC, T2_AC_SLOW, CCS_50, CCS_150, CCS_300, CHADEMO], rng.randint(1, 3))
        charger = world.charger(station, *layout)
        online = rng.random() > 0.15
        if online:
            world.connect(charger)
        for evse_id, connector in enumerate(layout, start=1):
            status = rng.choice(
                [ConnectorStatus.AVAILABLE, ConnectorStatus.CHARGING, ConnectorStatus.FAULTED, None]
            )
            if status is not None:
                world.report(charger, evse_id, status)
            known.evses.append((online and status is ConnectorStatus.AVAILABLE, connector))
        aggregates.append(charger)
    await world.save(*aggregates)
    await world.project()
    return expected


def check_nearby(
    body: dict[str, object],
    expected: list[Expected],
    radius_m: float,
    limit: int,
    **filters: object,
) -> int:
    """Assert the answer is the brute-force one; returns how many stations it had."""
    truth = sorted(
        (haversine_m(*CENTER, e.latitude, e.longitude), e.station_id)
        for e in expected
        if e.fits(**filters)  # type: ignore[arg-type]
    )
    inside = [(d, i) for d, i in truth if d <= radius_m]
    # GEO stores coordinates to about 0.6 m: a station that close to the edge may fall either way.
    edge = {i for d, i in truth if abs(d - radius_m) < 2}
    got = [(s["distanceM"], s["id"]) for s in body["stations"]]  # type: ignore[attr-defined]
    distances = [d for d, _ in got]
    assert distances == sorted(distances)
    true_distance = {i: d for d, i in truth}
    for distance, station_id in got:
        assert station_id in true_distance, f"{station_id} should not be found with {filters}"
        assert abs(distance - true_distance[station_id]) <= 2
    if len(inside) <= limit:
        assert {i for _, i in got} - edge == {i for _, i in inside} - edge
    else:
        # Cut at `limit`: the same distances as the brute force's first `limit` (ties may swap places).
        assert len(got) == limit
        assert all(abs(g - t) <= 2 for g, (t, _) in zip(distances, inside[:limit], strict=True))
    return len(got)


FILTERS: list[dict[str, object]] = [
    {},
    {"standards": [ConnectorStandard.IEC_62196_T2_COMBO]},
    {"standards": [ConnectorStandard.CHADEMO, ConnectorStandard.IEC_62196_T2]},
    {"power_type": PowerType.DC},
    {"min_power_w": 100_000},
    {"available": True},
    {
        "standards": [ConnectorStandard.IEC_62196_T2_COMBO],
        "power_type": PowerType.DC,
        "min_power_w": 100_000,
        "available": True,
    },
    {"standards": [ConnectorStandard.IEC_62196_T2], "power_type": PowerType.AC_3_PHASE, "available": True},
    {"power_type": PowerType.AC_1_PHASE, "min_power_w": 7_400},
    {"standards": [ConnectorStandard.CHADEMO], "power_type": PowerType.AC_3_PHASE},  # fits nothing
]


def query_filters(filters: dict[str, object]) -> dict[str, object]:
    query: dict[str, object] = {}
    if "standards" in filters:
        query["connector"] = [s.value for s in filters["standards"]]  # type: ignore[attr-defined]
    if "power_type" in filters:
        query["powerType"] = filters["power_type"].value  # type: ignore[attr-defined]
    if "min_power_w" in filters:
        query["minPowerKw"] = float(filters["min_power_w"]) / 1000  # type: ignore[arg-type]
    if "available" in filters:
        query["available"] = filters["available"]
    return query


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "no filter")
async def test_nearby_is_the_brute_force_answer_for_each_filter(
    world: World, api: ReadApi, filters: dict[str, object]
) -> None:
    expected = await random_world(world, 150, seed=len(str(filters)))
    found = 0
    for radius_km, limit in ((1.0, 100), (5.0, 100), (5.0, 4), (9.5, 100), (50.0, 30)):
        params = nearby_params(*CENTER, radiusKm=radius_km, limit=limit, **query_filters(filters))
        status, body, headers = await api.get(NEARBY, NEARBY, params=params)
        assert status == 200
        assert int(headers["CSMS-Position"]) == world.position
        found += check_nearby(body, expected, radius_km * 1000, limit, **filters)
    assert found > 0 or filters.get("power_type") is PowerType.AC_3_PHASE


async def test_the_radius_edge_and_the_centre(world: World, api: ReadApi) -> None:
    company = await world.company()
    points = {
        "centre": CENTER,
        "inside north": point_at(4_995, 0),
        "outside north": point_at(5_005, 0),
        "inside west": point_at(4_995, 270),
        "outside west": point_at(5_005, 270),
    }
    stations = {name: world.station(company, *point, name=name) for name, point in points.items()}
    chargers = [world.charger(station, T2_AC) for station in stations.values()]
    await world.save(*stations.values(), *chargers)
    await world.project()

    status, body, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*CENTER, radiusKm=5))

    assert status == 200
    assert [(s["name"], s["distanceM"]) for s in body["stations"]] in (
        [("centre", 0), ("inside north", 4995), ("inside west", 4995)],
        [("centre", 0), ("inside west", 4995), ("inside north", 4995)],
    )
    _, far, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*CENTER, radiusKm=5.01))
    assert len(far["stations"]) == 5
    _, near, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*point_at(4_995, 0), radiusKm=0.001))
    assert [s["name"] for s in near["stations"]] == ["inside north"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([("lon", "5")], "lat"),
        ([("lat", "91"), ("lon", "5")], "lat"),
        ([("lat", "52"), ("lon", "east")], "lon"),
        ([("lat", "52"), ("lon", "5"), ("radiusKm", "51")], "radiusKm"),
        ([("lat", "52"), ("lon", "5"), ("connector", "TYPE2")], "connector"),
        ([("lat", "52"), ("lon", "5"), ("minPowerKw", "fast")], "minPowerKw"),
        ([("lat", "52"), ("lon", "5"), ("available", "1")], "available"),
    ],
)
async def test_a_bad_nearby_query_is_a_problem_naming_the_field(
    api: ReadApi, params: list[tuple[str, str]], field: str
) -> None:
    status, body, _ = await api.get(NEARBY, NEARBY, params=params)

    assert status == 400
    assert body["type"] == "urn:csms:problem:invalid-query"
    assert [error["field"] for error in body["errors"]] == [field]


# --------------------------------------------------------------------------- status, prices, visibility


async def evse_status(api: ReadApi, uid: str) -> str:
    status, body, _ = await api.get(f"/evses/{uid}", EVSE)
    assert status == 200
    result: str = body["status"]
    return result


async def test_evse_status_follows_what_the_charger_reports_and_offline_is_unknown(
    world: World, api: ReadApi
) -> None:
    company = await world.company()
    station = world.station(company, *CENTER)
    charger = world.charger(station, T2_AC, CCS_150)
    await world.save(station, charger)
    await world.project()
    first, second = (model.evse_uid(str(charger.id), n) for n in (1, 2))
    assert await evse_status(api, first) == "UNKNOWN"  # registered, never connected

    steps: list[tuple[str, object, list[str]]] = [
        ("connect", None, ["UNKNOWN", "UNKNOWN"]),
        ("report", (1, ConnectorStatus.AVAILABLE), ["AVAILABLE", "UNKNOWN"]),
        ("report", (2, ConnectorStatus.PREPARING), ["AVAILABLE", "CHARGING"]),
        ("report", (2, ConnectorStatus.RESERVED), ["AVAILABLE", "RESERVED"]),
        ("report", (1, ConnectorStatus.FAULTED), ["OUTOFORDER", "RESERVED"]),
        ("report", (2, ConnectorStatus.UNAVAILABLE), ["OUTOFORDER", "INOPERATIVE"]),
        ("report", (1, ConnectorStatus.AVAILABLE), ["AVAILABLE", "INOPERATIVE"]),
        ("inoperative", None, ["INOPERATIVE", "INOPERATIVE"]),
        ("operative", None, ["AVAILABLE", "INOPERATIVE"]),
        ("disconnect", None, ["UNKNOWN", "UNKNOWN"]),
        ("connect", None, ["AVAILABLE", "INOPERATIVE"]),
    ]
    for action, argument, statuses in steps:
        if action == "connect":
            world.connect(charger)
        elif action == "disconnect":
            charger.disconnected(world.tick(), "closed", charger.connection_id)
        elif action == "report":
            world.report(charger, *argument)  # type: ignore[misc]
        else:
            availability = Availability.OPERATIVE if action == "operative" else Availability.INOPERATIVE
            charger.change_availability(availability, world.tick())
        await world.save(charger)
        await world.project()
        assert [await evse_status(api, first), await evse_status(api, second)] == statuses, action

        available = 1 if statuses[0] == "AVAILABLE" else 0
        _, body, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*CENTER, available=True))
        assert len(body["stations"]) == available
        _, station_body, _ = await api.get(f"/stations/{station.id}", STATION)
        assert [e["status"] for e in station_body["evses"]] == statuses


async def test_a_tariff_change_reprices_every_station_using_it_and_only_those(
    world: World, api: ReadApi
) -> None:
    company = await world.company()
    shared, other = await world.tariff(company, "0.40"), await world.tariff(company, "0.55")
    stations = [world.station(company, *point_at(100 * n, 90), tariff=shared) for n in range(3)]
    odd_one = world.station(company, *point_at(400, 90), tariff=other)
    chargers = [world.charger(s, CCS_50) for s in (*stations, odd_one)]
    await world.save(*stations, odd_one, *chargers)
    await world.project()

    shared.replace_elements((model_element("0.35"),), world.tick())
    shared.change_vat(Decimal("9"), world.tick())
    stations[2].assign_tariff(other.id, world.tick())
    await world.save(shared, stations[2])
    await world.project()

    _, body, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*CENTER, radiusKm=1))
    prices = {s["id"]: s["price"] for s in body["stations"]}
    for station in stations[:2]:
        assert prices[str(station.id)]["energyPerKwh"] == {
            "min": "0.35",
            "max": "0.35",
            "minInclVat": "0.3815",
            "maxInclVat": "0.3815",
        }
        assert prices[str(station.id)]["vatPercent"] == "9"
        _, document, _ = await api.get(f"/stations/{station.id}", STATION)
        assert document["price"] == prices[str(station.id)]
        uid = document["evses"][0]["uid"]
        _, evse, _ = await api.get(f"/evses/{uid}", EVSE)
        assert evse["station"]["price"] == prices[str(station.id)]
    for station in (stations[2], odd_one):
        assert prices[str(station.id)]["tariffId"] == str(other.id)
        assert prices[str(station.id)]["energyPerKwh"]["max"] == "0.55"

    # The station that left the shared tariff no longer follows it.
    shared.replace_elements((model_element("0.99"),), world.tick())
    await world.save(shared)
    await world.project()
    _, body, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*CENTER, radiusKm=1))
    energy = {s["id"]: s["price"]["energyPerKwh"]["max"] for s in body["stations"]}
    assert energy == {
        str(stations[0].id): "0.99",
        str(stations[1].id): "0.99",
        str(stations[2].id): "0.55",
        str(odd_one.id): "0.55",
    }


def model_element(energy: str) -> TariffElement:
    return TariffElement((PriceComponent(TariffDimension.ENERGY, Decimal(energy)),))


async def found_ids(api: ReadApi) -> set[str]:
    _, body, _ = await api.get(NEARBY, NEARBY, params=nearby_params(*CENTER))
    return {s["id"] for s in body["stations"]}


async def test_unpublished_removed_and_suspended_stations_leave_discovery(world: World, api: ReadApi) -> None:
    company = await world.company()
    station = world.station(company, *CENTER)
    charger = world.charger(station, T2_AC)
    world.connect(charger)
    world.report(charger, 1, ConnectorStatus.AVAILABLE)
    await world.save(station, charger)
    await world.project()
    uid = model.evse_uid(str(charger.id), 1)
    sid = str(station.id)

    async def visible() -> bool:
        shown = (await api.get(f"/stations/{sid}", STATION))[0] == 200
        assert (await api.get(f"/evses/{uid}", EVSE))[0] == (200 if shown else 404)
        assert (sid in await found_ids(api)) is shown
        return shown

    assert await visible()
    station.unpublish(world.tick())
    await world.save(station)
    await world.project()
    assert not await visible()
    station.publish(world.tick())
    await world.save(station)
    await world.project()
    assert await visible()

    company.suspend("unpaid invoices", world.tick())
    await world.save(company)
    await world.project()
    assert not await visible()
    company.reactivate(world.tick())
    await world.save(company)
    await world.project()
    assert await visible()

    charger.decommission(world.tick())
    await world.save(charger)
    await world.project()
    status, document, _ = await api.get(f"/stations/{sid}", STATION)
    assert (status, document["evses"]) == (200, [])  # still a published station, with nothing to charge at
    assert (await api.get(f"/evses/{uid}", EVSE))[0] == 404
    assert sid not in await found_ids(api)

    station.remove(world.tick())
    await world.save(station)
    await world.project()
    status, problem, _ = await api.get(f"/stations/{sid}", STATION)
    assert (status, problem["type"]) == (404, "urn:csms:problem:not-found")
    assert (await api.get(f"/stations/{uuid.uuid4()}", STATION))[0] == 404


# --------------------------------------------------------------------------- HTTP behaviour


async def test_documents_carry_an_etag_and_unchanged_ones_answer_304(world: World, api: ReadApi) -> None:
    company = await world.company()
    station = world.station(company, *CENTER)
    charger = world.charger(station, T2_AC)
    world.connect(charger)
    await world.save(station, charger)
    await world.project()
    path = f"/stations/{station.id}"

    status, _, headers = await api.get(path, STATION)
    assert status == 200
    etag = headers["ETag"]
    status, _, again = await api.get(path, STATION, headers={"If-None-Match": etag})
    assert (status, again["ETag"], again["CSMS-Position"]) == (304, etag, str(world.position))
    assert (await api.get(path, STATION, headers={"If-None-Match": f'"other", W/{etag}'}))[0] == 304

    world.report(charger, 1, ConnectorStatus.CHARGING)
    await world.save(charger)
    await world.project()
    status, document, changed = await api.get(path, STATION, headers={"If-None-Match": etag})
    assert (status, document["evses"][0]["status"]) == (200, "CHARGING")
    assert changed["ETag"] != etag


async def test_min_position_waits_for_the_projection(world: World, api: ReadApi) -> None:
    company = await world.company()
    station = world.station(company, *CENTER)
    charger = world.charger(station, T2_AC)
    await world.save(station, charger)
    position = await world.project()

    status, _, headers = await api.get(f"/stations/{station.id}?minPosition={position}", STATION)
    assert (status, headers["CSMS-Position"]) == (200, str(position))
    status, body, _ = await api.get(NEARBY, NEARBY, params=[*nearby_params(*CENTER), ("minPosition", "x")])
    assert (status, body["errors"][0]["field"]) == (400, "minPosition")


async def test_a_client_over_its_rate_gets_429_with_retry_after(world: World) -> None:
    app = read_app(world)
    app[STATION_RATE_LIMIT] = RateLimiter(rate=0.5, burst=2)
    async with TestClient(TestServer(app)) as client:
        api = ReadApi(client)
        await api.load_spec()
        params = nearby_params(*CENTER)
        assert [(await api.get(NEARBY, NEARBY, params=params))[0] for _ in range(2)] == [200, 200]
        status, body, headers = await api.get(NEARBY, NEARBY, params=params)
        assert (status, body["type"], headers["Retry-After"]) == (429, "urn:csms:problem:rate-limited", "2")
        assert (await api.get(f"/stations/{uuid.uuid4()}", STATION))[0] == 429
