"""The driver-facing session routes over real HTTP, on the read model a real projection runner keeps.

Sessions are recorded through the `ChargingSession` aggregate and the event store; the runner projects them
while the tests read, so each read passes the write's position as `minPosition`. Every response is checked
against the served OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema
import jwt
import orjson
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from csms.eventstore import EventStore
from csms.eventstore.subscription import HeadWatcher
from csms.identity.roles import Role
from csms.identity.signing_keys import ALGORITHM, SigningKeys, generate_signing_key
from csms.identity.verification import ACCESS_TOKEN_TYPE
from csms.identity.verifier import build_token_verifier
from projections.positions import postgres_position
from projections.runner import ProjectionRunner
from read_api.app import ReadApiDependencies, create_read_app
from read_api.freshness import Freshness
from tests.integration.projections.session_scenarios import (
    CODEC,
    T0,
    Sessions,
    event_store,
    session_target,
)

ISSUER = "https://csms.test"
AUDIENCE = "csms-api"


@dataclass
class Answer:
    status: int
    document: Any
    headers: Any


@dataclass
class ReadApi:
    client: TestClient[web.Request, web.Application]
    spec: dict[str, Any]
    keys: SigningKeys

    def token(
        self, role: Role, *, driver_id: uuid.UUID | None = None, company_id: uuid.UUID | None = None
    ) -> str:
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
        if driver_id is not None:
            claims["driver_id"] = str(driver_id)
        if company_id is not None:
            claims["company_id"] = str(company_id)
        headers = {"kid": self.keys.kid, "typ": ACCESS_TOKEN_TYPE}
        return jwt.encode(claims, self.keys.private_key, algorithm=ALGORITHM, headers=headers)

    def driver(self, driver_id: uuid.UUID) -> str:
        return self.token(Role.DRIVER, driver_id=driver_id)

    async def get(
        self, template: str, token: str | None, *, min_position: int | None = None, **params: Any
    ) -> Answer:
        path_params = {k: v for k, v in params.items() if "{" + k + "}" in template}
        query = {k: str(v) for k, v in params.items() if k not in path_params}
        if min_position is not None:
            query["minPosition"] = str(min_position)
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await self.client.get(template.format(**path_params), params=query, headers=headers)
        document = await response.json(content_type=None)
        self.check(template, response, document)
        return Answer(response.status, document, response.headers)

    def check(self, template: str, response: ClientResponse, document: Any) -> None:
        """The answer is documented: its status, its content type, and its body's schema."""
        operation = self.spec["paths"][template]["get"]
        declared = operation["responses"].get(str(response.status))
        assert declared is not None, f"GET {template} answered {response.status}, which is not documented"
        media = declared.get("content", {}).get(response.content_type)
        assert media is not None, f"GET {template} {response.status}: undocumented {response.content_type}"
        if document is not None:
            self.validate(media["schema"], document)

    def validate(self, schema: dict[str, Any], document: Any) -> None:
        jsonschema.Draft202012Validator({**schema, "components": self.spec["components"]}).validate(document)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[EventStore]:
    async with event_store(database_url) as event_store_:
        yield event_store_


@pytest.fixture
async def projected(store: EventStore, database_url: str) -> AsyncIterator[None]:
    """The session_history projection running, as `csms serve --role projector` runs it."""
    watcher = HeadWatcher(database_url)
    await watcher.start()
    runner = ProjectionRunner(
        session_target(store.pool), store.pool, database_url, watcher, CODEC, poll_interval=0.2
    )
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await watcher.close()


@pytest.fixture
async def api(
    store: EventStore, redis: Redis, redis_key_prefix: str, projected: None
) -> AsyncIterator[ReadApi]:
    keys = SigningKeys.of(generate_signing_key())
    verifier = build_token_verifier(accept_local_tokens=True, issuer=ISSUER, audience=AUDIENCE, keys=keys)

    async def position_of(name: str) -> int:
        return await postgres_position(store.pool, name)

    app = create_read_app(
        ReadApiDependencies(
            pool=store.pool,
            redis=redis,
            key_prefix=redis_key_prefix,
            verifier=verifier,
            freshness=Freshness(position_of, max_wait=10.0),
            readiness={},
        )
    )
    async with TestClient(TestServer(app)) as client:
        spec = await (await client.get("/openapi.json")).json()
        yield ReadApi(client, spec, keys)


async def test_a_session_is_seen_by_its_driver_its_operator_and_admins_only(
    api: ReadApi, store: EventStore
) -> None:
    sessions = Sessions(store)
    driver_id = uuid.uuid4()
    session = await sessions.full(driver_id)
    position = await store.head_position()
    readers = {
        "its driver": (api.driver(driver_id), 200),
        "another driver": (api.driver(uuid.uuid4()), 404),
        "its operator": (api.token(Role.OPERATOR, company_id=sessions.company_id), 200),
        "another operator": (api.token(Role.OPERATOR, company_id=uuid.uuid4()), 404),
        "an admin": (api.token(Role.ADMIN), 200),
    }
    for who, (token, status) in readers.items():
        for template in ("/sessions/{session_id}", "/sessions/{session_id}/receipt"):
            answer = await api.get(template, token, min_position=position, session_id=session.id)
            assert answer.status == status, (who, template, answer.document)
            if status == 404:
                assert answer.document["type"] == "urn:csms:problem:session-not-found"
            else:
                assert int(answer.headers["CSMS-Position"]) >= position
        events = await api.client.get(
            f"/sessions/{session.id}/events", headers={"Authorization": f"Bearer {token}"}
        )
        assert events.status == status, who
        events.close()

    unknown = await api.get("/sessions/{session_id}", api.token(Role.ADMIN), session_id=uuid.uuid4())
    assert unknown.status == 404
    malformed = await api.get("/sessions/{session_id}", api.token(Role.ADMIN), session_id="not-a-uuid")
    assert malformed.status == 404
    anonymous = await api.get("/sessions/{session_id}", None, session_id=session.id)
    assert anonymous.status == 401


async def test_a_live_session_shows_energy_power_and_cost_so_far(api: ReadApi, store: EventStore) -> None:
    sessions = Sessions(store)
    driver_id = uuid.uuid4()
    session = sessions.started(driver_id)
    sessions.meter(session, 30, register_wh=12_000, power_w=22_000)
    position = await sessions.save(session)

    answer = await api.get(
        "/sessions/{session_id}", api.driver(driver_id), min_position=position, session_id=session.id
    )

    assert answer.status == 200
    live = answer.document
    assert live["status"] == "STARTED"
    assert live["paymentStatus"] == "none"
    assert live["energyWh"] == 11_000
    assert live["powerW"] == 22_000
    assert live["position"] == position
    # 11 kWh at 0.30 plus 30 minutes at 1.20/h, excl. VAT; 21% VAT on top.
    assert live["costSoFar"] == {"exclVat": "3.90", "inclVat": "4.72"}
    assert live["durationSeconds"] >= 30 * 60
    assert live["total"] is None


async def test_history_pages_newest_first_with_a_cursor(api: ReadApi, store: EventStore) -> None:
    sessions = Sessions(store)
    driver_id = uuid.uuid4()
    recorded = [await sessions.full(driver_id, T0 + timedelta(hours=hour)) for hour in range(5)]
    await sessions.full(uuid.uuid4())  # someone else's
    position = await store.head_position()
    token = api.driver(driver_id)

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        answer = await api.get("/me/sessions", token, min_position=position, **params)
        assert answer.status == 200
        pages += 1
        seen += [item["sessionId"] for item in answer.document["items"]]
        cursor = answer.document["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(session.id) for session in reversed(recorded)]

    for bad in ({"limit": 0}, {"limit": 101}, {"cursor": "garbage"}):
        invalid = await api.get("/me/sessions", token, **bad)
        assert invalid.status == 400
        assert invalid.document["type"] == "urn:csms:problem:invalid-query"
    operator = await api.get("/me/sessions", api.token(Role.OPERATOR, company_id=sessions.company_id))
    assert operator.status == 403


async def test_the_receipt_exists_once_the_session_is_priced(api: ReadApi, store: EventStore) -> None:
    sessions = Sessions(store)
    driver_id = uuid.uuid4()
    token = api.driver(driver_id)
    session = sessions.started(driver_id)
    sessions.meter(session, 20, register_wh=9_000)
    position = await sessions.save(session)

    early = await api.get(
        "/sessions/{session_id}/receipt", token, min_position=position, session_id=session.id
    )
    assert early.status == 409
    assert early.document["type"] == "urn:csms:problem:session-not-priced"

    sessions.stop_and_price(session, 40, meter_stop_wh=11_000)
    position = await sessions.save(session)
    receipt = await api.get(
        "/sessions/{session_id}/receipt", token, min_position=position, session_id=session.id
    )
    assert receipt.status == 200
    assert session.breakdown is not None
    document = receipt.document
    assert document["paymentStatus"] == "pending"
    assert document["energyWh"] == 10_000
    assert document["totalEnergyKwh"] == "10.000"
    assert document["durationSeconds"] == 40 * 60
    assert document["currency"] == "EUR"
    assert document["totalExclVat"] == str(session.breakdown.total_excl_vat)
    assert document["totalInclVat"] == str(session.breakdown.total_incl_vat)
    assert document["vatAmount"] == str(session.breakdown.vat_amount)
    assert {line["dimension"] for line in document["lines"]} == {"ENERGY", "TIME"}
    assert document["tariff"]["elements"][0]["priceComponents"][0] == {
        "type": "ENERGY",
        "price": "0.30",
        "stepSize": 1,
    }

    session.payment_succeeded("pi_receipt", session.breakdown.total, T0 + timedelta(hours=1))
    position = await sessions.save(session)
    paid = await api.get(
        "/sessions/{session_id}/receipt", token, min_position=position, session_id=session.id
    )
    assert paid.document["paymentStatus"] == "succeeded"
    assert paid.document["amountPaid"] == str(session.breakdown.total_incl_vat)


class EventStream:
    """A server-sent events client: parses `id`/`event`/`data` messages, skips comments."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self) -> dict[str, str] | None:
        """The next message, or None when the server ended the stream."""
        message: dict[str, str] = {}
        async with asyncio.timeout(15):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "data" in message:
                        return message
                    message = {}
                    continue
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                message[name] = value.removeprefix(" ")


@contextlib.asynccontextmanager
async def stream(
    api: ReadApi, session_id: uuid.UUID, token: str, min_position: int, last_event_id: int | None = None
) -> AsyncIterator[EventStream]:
    headers = {"Authorization": f"Bearer {token}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    response = await api.client.get(
        f"/sessions/{session_id}/events", headers=headers, params={"minPosition": str(min_position)}
    )
    api.check("/sessions/{session_id}/events", response, None)
    assert response.status == 200
    assert int(response.headers["CSMS-Position"]) >= min_position
    try:
        yield EventStream(response)
    finally:
        response.close()


async def test_the_event_stream_resumes_after_the_last_event_id(api: ReadApi, store: EventStore) -> None:
    sessions = Sessions(store)
    driver_id = uuid.uuid4()
    token = api.driver(driver_id)
    session = sessions.started(driver_id)
    first = await sessions.save(session)
    session_schema = api.spec["components"]["schemas"]["Session"]

    async def expect(events: EventStream, position: int) -> dict[str, Any]:
        message = await events.next()
        assert message is not None
        assert message["event"] == "session"
        document: dict[str, Any] = orjson.loads(message["data"])
        api.validate(session_schema, document)
        assert int(message["id"]) == document["position"] == position
        return document

    async with stream(api, session.id, token, first) as events:
        assert (await expect(events, first))["status"] == "STARTED"
        sessions.meter(session, 5, register_wh=3_000)
        second = await sessions.save(session)
        assert (await expect(events, second))["energyWh"] == 2_000

    # The client missed an update while away: reconnecting with the last id it saw sends it the current state.
    sessions.meter(session, 10, register_wh=5_000)
    third = await sessions.save(session)
    async with stream(api, session.id, token, third, last_event_id=second) as events:
        assert (await expect(events, third))["energyWh"] == 4_000

    # Up to date already: nothing until the session moves on, then every state up to the final one.
    async with stream(api, session.id, token, third, last_event_id=third) as events:
        sessions.stop_and_price(session, 15, meter_stop_wh=5_500)
        assert session.breakdown is not None
        session.payment_succeeded("pi_stream", session.breakdown.total, T0 + timedelta(minutes=20))
        final = await sessions.save(session)
        # The three events commit together; a runner batch may still end between them, so intermediate
        # states may come first, in order.
        message = await events.next()
        while message is not None and int(message["id"]) < final:
            assert int(message["id"]) > third
            message = await events.next()
        assert message is not None
        document = orjson.loads(message["data"])
        assert int(message["id"]) == final
        assert document["status"] == "PAID"
        assert document["paymentStatus"] == "succeeded"
        assert await events.next() is None  # the stream ends with the final state

    # A final session the client has fully seen ends at once.
    async with stream(api, session.id, token, final, last_event_id=final) as events:
        assert await events.next() is None
