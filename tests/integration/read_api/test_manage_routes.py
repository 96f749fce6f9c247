"""The operator and admin views over real HTTP: tenant isolation on every route, filters, pagination, CSV,
live connectivity from the gateway's presence hashes, and daily revenue.

Objects are recorded through the real aggregates and event store, the three read models they need are caught
up on the log as the runner does it, and presence is written by the gateway's own `Presence`. Every response
is checked against the served OpenAPI document.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jsonschema
import jwt
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDictProxy
from redis.asyncio import Redis

from csms.domain import Charger, Company, OcppVersion, Station, Tariff
from csms.eventstore import EventStore, create_pool
from csms.identity.roles import Role
from csms.identity.signing_keys import ALGORITHM, SigningKeys, generate_signing_key
from csms.identity.verification import ACCESS_TOKEN_TYPE
from csms.identity.verifier import build_token_verifier
from projections.fleet_registry import FleetRegistry
from projections.positions import postgres_position
from projections.postgres_target import PostgresTarget
from projections.session_history import SessionHistoryProjector
from projections.station_revenue import StationRevenue
from read_api.app import ReadApiDependencies, create_read_app
from read_api.freshness import Freshness
from tests.integration.projections.fleet_world import FleetWorld, catch_up
from write_api.ocpp.presence import Presence

ISSUER = "https://csms.test"
AUDIENCE = "csms-api"
STOP = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # a Monday; 12:00 in Amsterdam


@dataclass
class Answer:
    status: int
    document: Any
    headers: CIMultiDictProxy[str]
    text: str = ""


@dataclass
class ManageApi:
    client: TestClient[web.Request, web.Application]
    spec: dict[str, Any]
    keys: SigningKeys

    def token(self, role: Role, company_id: uuid.UUID | None = None) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "role": role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(minutes=5)).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if company_id is not None:
            claims["company_id"] = str(company_id)
        if role is Role.DRIVER:
            claims["driver_id"] = str(uuid.uuid4())
        headers = {"kid": self.keys.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(claims, self.keys.private_key, algorithm=ALGORITHM, headers=headers)

    async def get(
        self, template: str, token: str | None, *, accept: str | None = None, **params: Any
    ) -> Answer:
        path_params = {k: v for k, v in params.items() if "{" + k + "}" in template}
        query = {k: str(v) for k, v in params.items() if k not in path_params and v is not None}
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if accept is not None:
            headers["Accept"] = accept
        response = await self.client.get(template.format(**path_params), params=query, headers=headers)
        if response.content_type == "text/csv":
            text = await response.text()
            self.check(template, response, None)
            return Answer(response.status, None, response.headers, text)
        document = await response.json(content_type=None)
        self.check(template, response, document)
        return Answer(response.status, document, response.headers)

    def check(self, template: str, response: ClientResponse, document: Any) -> None:
        """The answer is documented: its status, its content type and (JSON) its body's schema."""
        operation = self.spec["paths"][template]["get"]
        declared = operation["responses"].get(str(response.status))
        assert declared is not None, f"GET {template} answered {response.status}, which is not documented"
        media = declared.get("content", {}).get(response.content_type)
        assert media is not None, f"GET {template} {response.status}: undocumented {response.content_type}"
        if document is not None:
            schema = {**media["schema"], "components": self.spec["components"]}
            jsonschema.Draft202012Validator(schema).validate(document)

    async def everything(self, template: str, token: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a list, following `nextCursor` to the end."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            answer = await self.get(template, token, cursor=cursor, **params)
            assert answer.status == 200, answer.document
            items.extend(answer.document["items"])
            cursor = answer.document["nextCursor"]
            if cursor is None:
                return items


@dataclass
class Tenant:
    """One company's small fleet: a station, its charger, and a session paid there."""

    company: Company
    tariff: Tariff
    station: Station
    charger: Charger


@pytest.fixture
async def store_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
async def world(store_pool: asyncpg.Pool, database_url: str) -> AsyncIterator[FleetWorld]:
    store = EventStore(store_pool, database_url)
    yield FleetWorld(store)
    await store.close()


@pytest.fixture
def targets(store_pool: asyncpg.Pool) -> list[PostgresTarget]:
    return [
        PostgresTarget(projector, store_pool)
        for projector in (FleetRegistry(), StationRevenue(), SessionHistoryProjector())
    ]


async def project(targets: list[PostgresTarget], pool: asyncpg.Pool) -> int:
    """Bring every read model up to the log's head; that position."""
    return min([await catch_up(target, pool) for target in targets])


@pytest.fixture
async def api(store_pool: asyncpg.Pool, redis: Redis, redis_key_prefix: str) -> AsyncIterator[ManageApi]:
    keys = SigningKeys.of(generate_signing_key())
    verifier = build_token_verifier(accept_local_tokens=True, issuer=ISSUER, audience=AUDIENCE, keys=keys)

    async def position_of(name: str) -> int:
        return await postgres_position(store_pool, name)

    app = create_read_app(
        ReadApiDependencies(
            pool=store_pool,
            redis=redis,
            key_prefix=redis_key_prefix,
            verifier=verifier,
            freshness=Freshness(position_of, max_wait=0.2),
            readiness={},
        )
    )
    async with TestClient(TestServer(app)) as client:
        spec = await (await client.get("/openapi.json")).json()
        yield ManageApi(client, spec, keys)


async def tenant(world: FleetWorld, *, stop: datetime = STOP) -> Tenant:
    company = await world.company()
    tariff = await world.tariff(company)
    station = await world.station(company, tariff=tariff)
    charger = await world.charger(station)
    await world.session(station, charger, tariff, stopped_at=stop)
    return Tenant(company, tariff, station, charger)


def ids(items: list[dict[str, Any]], key: str = "id") -> set[str]:
    return {item[key] for item in items}


async def test_every_route_shows_an_operator_its_own_company_only(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    a, b = await tenant(world), await tenant(world)
    position = await project(targets, store_pool)
    mine, theirs = str(a.station.id), str(b.station.id)
    operator_a = api.token(Role.OPERATOR, a.company.id)
    admin = api.token(Role.ADMIN)
    report = {"from": "2026-05-01", "to": "2026-05-31"}

    # Lists: the operator's own objects, never the other company's; admins see both, or one company's.
    lists: list[tuple[str, str, dict[str, Any], tuple[str, str]]] = [
        ("/manage/stations", "id", {}, (mine, theirs)),
        ("/manage/chargers", "chargerId", {}, (a.charger.charge_point_id, b.charger.charge_point_id)),
        ("/manage/sessions", "stationId", {}, (mine, theirs)),
        ("/manage/reports/daily", "stationId", report, (mine, theirs)),
    ]
    for template, key, params, (own, foreign) in lists:
        seen = ids(await api.everything(template, operator_a, **params), key)
        assert own in seen, template
        assert foreign not in seen, template
        assert ids(await api.everything(template, admin, **params), key) >= {own, foreign}, template
        one = ids(await api.everything(template, admin, companyId=a.company.id, **params), key)
        assert own in one, template
        assert foreign not in one, template
        same = await api.get(template, operator_a, companyId=a.company.id, **params)
        assert same.status == 200, template
        other = await api.get(template, operator_a, companyId=b.company.id, **params)
        assert (other.status, other.document["type"]) == (403, "urn:csms:problem:forbidden-company"), template

    # Objects: another company's answers 404 exactly like one that does not exist.
    details: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("/manage/stations/{stationId}", {"stationId": a.station.id}, {"stationId": b.station.id}),
        (
            "/manage/chargers/{chargerId}",
            {"chargerId": a.charger.charge_point_id},
            {"chargerId": b.charger.charge_point_id},
        ),
    ]
    for template, own_object, foreign_object in details:
        assert (await api.get(template, operator_a, **own_object)).status == 200
        foreign_answer = await api.get(template, operator_a, **foreign_object)
        assert (foreign_answer.status, foreign_answer.document["type"]) == (404, "urn:csms:problem:not-found")
        assert (await api.get(template, admin, **foreign_object)).status == 200
        missing = {name: "nothing-here" for name in own_object}
        assert (await api.get(template, operator_a, **missing)).status == 404

    # Drivers have no business here; nobody gets in without a token.
    driver = api.token(Role.DRIVER)
    every_route: list[tuple[str, dict[str, Any]]] = [
        (template, params) for template, _, params, _ in lists
    ] + [(template, own_object) for template, own_object, _ in details]
    every_route.append(("/manage/companies", {}))
    for template, params in every_route:
        refused = await api.get(template, driver, **params)
        assert (refused.status, refused.document["type"]) == (403, "urn:csms:problem:forbidden-role"), (
            template
        )
        assert (await api.get(template, None, **params)).status == 401, template
        answered = await api.get(template, admin, minPosition=position, **params)
        assert int(answered.headers["CSMS-Position"]) >= position, template


async def test_companies_are_for_admins(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    company.suspend("unpaid invoices", STOP)
    await world.save(company)
    await project(targets, store_pool)

    companies = {
        c["id"]: c for c in await api.everything("/manage/companies", api.token(Role.ADMIN), limit=2)
    }
    assert companies[str(company.id)]["suspended"] is True
    assert companies[str(company.id)]["suspensionReason"] == "unpaid invoices"
    operator = await api.get("/manage/companies", api.token(Role.OPERATOR, company.id))
    assert (operator.status, operator.document["type"]) == (403, "urn:csms:problem:forbidden-role")


async def test_stations_page_by_name_and_hide_removed_ones_unless_asked(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    stations = [await world.station(company, name=f"Station {letter}") for letter in "DBECA"]
    stations[0].remove(STOP)  # Station D
    await world.save(stations[0])
    await project(targets, store_pool)
    operator = api.token(Role.OPERATOR, company.id)

    first = await api.get("/manage/stations", operator, limit=2)
    assert [s["name"] for s in first.document["items"]] == ["Station A", "Station B"]
    pages = await api.everything("/manage/stations", operator, limit=2)
    assert [s["name"] for s in pages] == ["Station A", "Station B", "Station C", "Station E"]
    with_removed = await api.everything("/manage/stations", operator, includeRemoved="true")
    assert [s["name"] for s in with_removed] == [
        "Station A",
        "Station B",
        "Station C",
        "Station D",
        "Station E",
    ]
    assert with_removed[3]["removed"] is True

    station = (await api.get("/manage/stations/{stationId}", operator, stationId=stations[1].id)).document
    assert station["address"] == {
        "street": "Museumplein 1",
        "postalCode": "1071 DJ",
        "city": "Amsterdam",
        "state": None,
        "country": "NLD",
    }
    assert station["coordinates"] == {"latitude": "52.357910", "longitude": "4.881340"}
    assert (station["timeZone"], station["published"], station["companyId"]) == (
        "Europe/Amsterdam",
        True,
        str(company.id),
    )


async def test_chargers_show_live_connectivity_from_the_gateways_presence(
    api: ManageApi,
    world: FleetWorld,
    targets: list[PostgresTarget],
    store_pool: asyncpg.Pool,
    redis: Redis,
    redis_key_prefix: str,
) -> None:
    company = await world.company()
    station, elsewhere = await world.station(company), await world.station(company)
    online, gone, never = [await world.charger(station) for _ in range(3)]
    other = await world.charger(elsewhere)
    connected_at = datetime.now(UTC).replace(microsecond=0)
    online.connected(OcppVersion.OCPP16, connected_at, uuid.uuid4())
    online.record_boot("ACME", "Wallbox 22", "SN-1", "1.2.3", connected_at)
    await world.save(online)
    await project(targets, store_pool)

    presence = Presence(redis, redis_key_prefix, "gateway-test")
    await presence.connected(online.charge_point_id, "ocpp1.6", "conn-1", connected_at)
    presence.seen(online.charge_point_id, connected_at + timedelta(seconds=30))
    await presence.flush()
    await presence.connected(gone.charge_point_id, "ocpp2.0.1", "conn-2", connected_at)
    await presence.disconnected(gone.charge_point_id, "conn-2", connected_at + timedelta(seconds=5))

    operator = api.token(Role.OPERATOR, company.id)
    answer = await api.get("/manage/chargers", operator, stationId=station.id)
    assert answer.status == 200
    chargers = {c["chargerId"]: c for c in answer.document["items"]}
    assert set(chargers) == {online.charge_point_id, gone.charge_point_id, never.charge_point_id}
    live = chargers[online.charge_point_id]
    assert live["connectivity"] == {
        "connected": True,
        "protocol": "ocpp1.6",
        "connectedSince": connected_at.isoformat(),
        "lastSeen": (connected_at + timedelta(seconds=30)).isoformat(),
        "lastConnectedAt": connected_at.isoformat(),
        "lastDisconnectedAt": None,
    }
    assert (live["vendor"], live["model"], live["ocppVersion"]) == ("ACME", "Wallbox 22", "ocpp1.6")
    assert live["id"] == str(online.id)
    assert [evse["evseId"] for evse in live["evses"]] == [1, 2]
    assert chargers[gone.charge_point_id]["connectivity"]["connected"] is False
    assert chargers[never.charge_point_id]["connectivity"]["lastSeen"] is None

    one = await api.get("/manage/chargers/{chargerId}", operator, chargerId=online.charge_point_id)
    assert one.document["connectivity"]["connected"] is True
    everywhere = ids(await api.everything("/manage/chargers", operator, limit=1), "chargerId")
    assert other.charge_point_id in everywhere
    # A station the operator does not own (or that does not exist) matches no charger.
    stranger = await tenant(world)
    await project(targets, store_pool)
    foreign = await api.get("/manage/chargers", operator, stationId=stranger.station.id)
    assert (foreign.status, foreign.document["items"]) == (200, [])


async def test_sessions_filter_by_time_station_and_status_and_page_newest_first(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    a = await tenant(world, stop=STOP - timedelta(days=10))
    second = await world.station(a.company, tariff=a.tariff)
    second_charger = await world.charger(second)
    # Recorded (requested) one hour before each stop: at 09:00, 10:00 ... 13:00 UTC on STOP's day.
    paid = [
        await world.session(a.station, a.charger, a.tariff, stopped_at=STOP + timedelta(hours=n))
        for n in range(4)
    ]
    declined = await world.session(
        a.station, a.charger, a.tariff, stopped_at=STOP + timedelta(hours=4), paid=False
    )
    there = await world.session(second, second_charger, a.tariff, stopped_at=STOP + timedelta(hours=2))
    await project(targets, store_pool)
    operator = api.token(Role.OPERATOR, a.company.id)
    window = {"from": "2026-05-04T00:00:00Z", "to": "2026-05-05T00:00:00+00:00"}

    everything = await api.everything("/manage/sessions", operator, **window)
    assert [s["sessionId"] for s in everything] == [
        str(declined.id),  # recorded at 13:00
        str(paid[3].id),  # 12:00
        *sorted([str(paid[2].id), str(there.id)], reverse=True),  # both 11:00: by id, descending
        str(paid[1].id),  # 10:00
        str(paid[0].id),  # 09:00
    ]
    assert all(s["companyId"] == str(a.company.id) for s in everything)
    newest = everything[0]
    assert (newest["status"], newest["paymentStatus"], newest["chargerId"]) == (
        "PAYMENT_FAILED",
        "failed",
        a.charger.charge_point_id,
    )
    assert (newest["energyWh"], newest["totalInclVat"], newest["currency"]) == (10_000, "4.84", "EUR")
    assert newest["stationName"] == a.station.name

    paged = await api.everything("/manage/sessions", operator, limit=2, **window)
    assert paged == everything

    narrow = {"from": "2026-05-04T10:00:00 02:00", "to": "2026-05-04T12:00:00+02:00"}  # `+` sent unencoded
    assert [s["sessionId"] for s in await api.everything("/manage/sessions", operator, **narrow)] == [
        str(paid[0].id)  # 09:00 and 10:00 UTC are 11:00 and 12:00 in +02:00: only the first is before `to`
    ]
    at_second = await api.everything("/manage/sessions", operator, stationId=second.id, **window)
    assert [s["sessionId"] for s in at_second] == [str(there.id)]
    failed = await api.everything("/manage/sessions", operator, status="PAYMENT_FAILED", **window)
    assert [s["sessionId"] for s in failed] == [str(declined.id)]
    both = await api.everything("/manage/sessions", operator, status="paid,payment_failed", **window)
    assert len(both) == 6
    older = await api.everything("/manage/sessions", operator, to="2026-05-04T00:00:00Z")
    assert [s["stationId"] for s in older] == [str(a.station.id)]  # the tenant's first, ten days before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-05-04T00:00:00"}, "to"),  # no offset: which day's midnight?
        ({"status": "CHARGING"}, "status"),
        ({"stationId": "station-1"}, "stationId"),
        ({"companyId": "acme"}, "companyId"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"format": "xml"}, "format"),
        ({"minPosition": "-1"}, "minPosition"),
    ],
)
async def test_a_bad_query_parameter_is_named_in_a_400(
    api: ManageApi, params: dict[str, str], field: str
) -> None:
    answer = await api.get("/manage/sessions", api.token(Role.ADMIN), **params)
    assert answer.status == 400
    assert [error["field"] for error in answer.document["errors"]] == [field]


async def test_a_cursor_belongs_to_its_own_list(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    for _ in range(2):
        await world.station(company)
    await project(targets, store_pool)
    admin = api.token(Role.ADMIN)
    cursor = (await api.get("/manage/stations", admin, companyId=company.id, limit=1)).document["nextCursor"]
    assert cursor is not None
    answer = await api.get("/manage/chargers", admin, cursor=cursor)
    assert (answer.status, answer.document["errors"][0]["field"]) == (400, "cursor")


async def test_sessions_export_as_csv_streams_the_whole_range(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company)
    station = await world.station(company, tariff=tariff, name='=HYPERLINK("http://evil")')
    charger = await world.charger(station)
    sessions = [
        await world.session(station, charger, tariff, stopped_at=STOP + timedelta(minutes=n))
        for n in range(3)
    ]
    stranger = await tenant(world)
    position = await project(targets, store_pool)
    operator = api.token(Role.OPERATOR, company.id)

    by_format = await api.get("/manage/sessions", operator, format="csv", limit=1)
    by_accept = await api.get("/manage/sessions", operator, accept="text/csv")
    for answer in (by_format, by_accept):
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert int(answer.headers["CSMS-Position"]) >= position
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [row["sessionId"] for row in rows] == [
            str(s.id) for s in reversed(sessions)
        ]  # limit: not here
        assert str(stranger.station.id) not in answer.text
        first = rows[0]
        assert (first["status"], first["energyWh"], first["totalInclVat"], first["amountPaid"]) == (
            "PAID",
            "10000",
            "4.84",
            "4.84",
        )
        assert first["chargerId"] == charger.charge_point_id
        # A spreadsheet must not run the station's name as a formula.
        assert first["stationName"] == '\'=HYPERLINK("http://evil")'
        assert first["stoppedAt"] == (STOP + timedelta(minutes=2)).isoformat()

    filtered = await api.get(
        "/manage/sessions", operator, format="csv", to=(STOP - timedelta(minutes=59, seconds=30)).isoformat()
    )
    assert [row["sessionId"] for row in csv.DictReader(io.StringIO(filtered.text))] == [str(sessions[0].id)]
    empty = await api.get("/manage/sessions", operator, format="csv", status="EXPIRED")
    assert empty.text.splitlines()[0].startswith("sessionId,status,stationId")
    assert len(empty.text.splitlines()) == 1
    json_anyway = await api.get("/manage/sessions", operator, accept="text/csv, application/json")
    assert json_anyway.document is not None


async def test_the_daily_report_sums_energy_and_revenue_per_local_day(
    api: ManageApi, world: FleetWorld, targets: list[PostgresTarget], store_pool: asyncpg.Pool
) -> None:
    company = await world.company()
    tariff = await world.tariff(company)
    amsterdam = await world.station(company, tariff=tariff, name="Amsterdam")
    charger = await world.charger(amsterdam)
    lisbon = await world.station(company, tariff=tariff, name="Lisbon", time_zone="Europe/Lisbon")
    lisbon_charger = await world.charger(lisbon)
    evening = datetime(
        2026, 5, 4, 22, 30, tzinfo=UTC
    )  # 00:30 on 5 May in Amsterdam, 23:30 on 4 May in Lisbon
    await world.session(amsterdam, charger, tariff, stopped_at=evening)
    await world.session(amsterdam, charger, tariff, stopped_at=evening - timedelta(hours=1), paid=False)
    await world.session(lisbon, lisbon_charger, tariff, stopped_at=evening, energy_wh=2_500)
    await project(targets, store_pool)
    operator = api.token(Role.OPERATOR, company.id)

    days = await api.everything(
        "/manage/reports/daily", operator, **{"from": "2026-05-01", "to": "2026-05-31"}
    )
    assert sorted((d["day"], d["stationName"], d["sessions"], d["energyWh"]) for d in days) == [
        ("2026-05-04", "Amsterdam", 1, 10_000),  # the declined one, 23:30 in Amsterdam
        ("2026-05-04", "Lisbon", 1, 2_500),
        ("2026-05-05", "Amsterdam", 1, 10_000),
    ]
    assert [d["day"] for d in days] == sorted(d["day"] for d in days)
    amsterdam_days = await api.everything(
        "/manage/reports/daily",
        operator,
        stationId=amsterdam.id,
        **{"from": "2026-05-04", "to": "2026-05-05"},
    )
    assert [
        (
            d["day"],
            d["revenueExclVat"],
            d["revenueInclVat"],
            d["paidSessions"],
            d["paidInclVat"],
            d["currency"],
        )
        for d in amsterdam_days
    ] == [("2026-05-04", "4.00", "4.84", 0, "0", "EUR"), ("2026-05-05", "4.00", "4.84", 1, "4.84", "EUR")]
    one_day = await api.everything(
        "/manage/reports/daily", operator, **{"from": "2026-05-05", "to": "2026-05-05"}
    )
    assert [d["day"] for d in one_day] == ["2026-05-05"]
    paged = await api.everything(
        "/manage/reports/daily", operator, limit=1, **{"from": "2026-05-01", "to": "2026-05-31"}
    )
    assert paged == days

    backwards = await api.get("/manage/reports/daily", operator, **{"from": "2026-05-05", "to": "2026-05-04"})
    assert (backwards.status, backwards.document["errors"][0]["field"]) == (400, "from")
    too_long = await api.get("/manage/reports/daily", operator, **{"from": "2025-01-01", "to": "2026-05-04"})
    assert (too_long.status, too_long.document["errors"][0]["field"]) == (400, "from")
    not_a_day = await api.get("/manage/reports/daily", operator, to="05/04/2026")
    assert (not_a_day.status, not_a_day.document["errors"][0]["field"]) == (400, "to")
