"""Object-level authorization of the write API: each route x role x own or foreign object, its status.

Another company's (or driver's) object answers 404, exactly like a missing one, so ids cannot be probed; a
role that may not act at all gets 403; no token gets 401.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from csms.settings import Settings
from write_api.auth.routes import AUTH_SERVICE
from write_api.http.runtime import write_api_app

_PASSWORD = "correct horse battery staple"


@dataclass
class World:
    http: aiohttp.ClientSession
    base: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    async def call(self, who: str | None, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        headers = {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.http.request(
            method, self.base + path.format(**self.ids), json=body, headers=headers
        ) as r:
            if r.status >= 400:
                assert r.content_type == "application/problem+json", await r.text()
            return r.status

    async def json(self, who: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        async with self.http.request(
            method, self.base + path.format(**self.ids), json=body, headers=headers
        ) as r:
            assert r.status in (200, 201), await r.text()
            result: dict[str, Any] = await r.json()
            return result

    async def login(self, who: str, email: str) -> None:
        async with self.http.post(
            self.base + "/auth/login", json={"email": email, "password": _PASSWORD}
        ) as r:
            assert r.status == 200, await r.text()
            self.tokens[who] = (await r.json())["accessToken"]


def _station(**extra: Any) -> dict[str, Any]:
    return {
        "name": "Depot",
        "timeZone": "Europe/Amsterdam",
        "address": {"street": "Weg 1", "city": "Delft", "postalCode": "2611 AA", "country": "NLD"},
        "coordinates": {"latitude": "52.01", "longitude": "4.36"},
        **extra,
    }


_TARIFF = {
    "name": "T",
    "currency": "EUR",
    "vatPercent": "21",
    "elements": [{"priceComponents": [{"type": "FLAT", "price": "1.00"}]}],
}


@pytest.fixture(scope="module")
async def world(
    database_url: str, redis_url: str, redis_key_prefix: str, tmp_path_factory: Any
) -> AsyncIterator[World]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("data")), redis_key_prefix=redis_key_prefix)
    async with write_api_app(settings, database_url, redis_url) as app:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                w = World(http, f"http://127.0.0.1:{server.port}")
                run = uuid.uuid4().hex[:6]
                accounts = app[AUTH_SERVICE].accounts
                await accounts.create_admin(f"admin-{run}@example.com", _PASSWORD)
                await w.login("admin", f"admin-{run}@example.com")
                for company in ("A", "B"):
                    created = await w.json("admin", "POST", "/companies", {"name": f"Company {company}"})
                    w.ids[f"company{company}"] = created["companyId"]
                    email = f"op{company}-{run}@example.com"
                    await accounts.create_operator(email, _PASSWORD, uuid.UUID(created["companyId"]))
                    await w.login(f"op{company}", email)
                    station = await w.json(f"op{company}", "POST", "/stations", _station())
                    w.ids[f"station{company}"] = station["stationId"]
                    tariff = await w.json(f"op{company}", "POST", "/tariffs", _TARIFF)
                    w.ids[f"tariff{company}"] = tariff["tariffId"]
                    charger_id = f"AUTHZ-{company}-{run}"
                    evses = ["1:IEC_62196_T2:22"]
                    charger = {"chargerId": charger_id, "stationId": station["stationId"], "evses": evses}
                    await w.json(f"op{company}", "POST", "/chargers", charger)
                    w.ids[f"charger{company}"] = charger_id
                for driver in ("d1", "d2"):
                    email = f"{driver}-{run}@example.com"
                    async with http.post(
                        w.base + "/auth/register",
                        json={"email": email, "password": _PASSWORD, "displayName": driver},
                    ) as r:
                        assert r.status == 201, await r.text()
                    await w.login(driver, email)
                w.ids["token1"] = f"CARD1{run}".upper()
                await w.json("d1", "POST", "/me/id-tokens", {"idToken": w.ids["token1"]})
                yield w
        finally:
            await server.close()


CASES: list[tuple[str, str, str, dict[str, Any] | None, dict[str | None, int]]] = [
    (
        "POST",
        "/companies",
        "create a company",
        {"name": "X"},
        {None: 401, "admin": 201, "opA": 403, "d1": 403},
    ),
    ("POST", "/companies/{companyA}/suspend", "suspend", {"reason": "audit"}, {"opA": 403, "d1": 403}),
    (
        "POST",
        "/companies/{companyA}/operators",
        "operator account",
        {"email": "x@example.com", "password": _PASSWORD},
        {"opA": 403, "d1": 403},
    ),
    ("POST", "/stations", "own station", _station(), {None: 401, "opA": 201, "d1": 403}),
    ("POST", "/stations", "station for another company", _station(companyId="{companyB}"), {"opA": 404}),
    (
        "PATCH",
        "/stations/{stationA}",
        "rename a station",
        {"name": "Renamed"},
        {"opA": 200, "opB": 404, "d1": 403, "admin": 200},
    ),
    ("PATCH", "/stations/{stationA}", "another company's tariff", {"tariffId": "{tariffB}"}, {"opA": 404}),
    ("PATCH", "/stations/{stationA}", "own tariff", {"tariffId": "{tariffA}"}, {"opA": 200}),
    (
        "PATCH",
        "/stations/{stationA}",
        "opening hours",
        {"openingHours": {"regularHours": [{"weekday": 1, "periodBegin": "07:00", "periodEnd": "22:00"}]}},
        {"opA": 200},
    ),
    (
        "PATCH",
        "/stations/{stationA}",
        "bad opening hours",
        {"openingHours": {"regularHours": "always"}},
        {"opA": 422},
    ),
    ("POST", "/tariffs", "tariff", _TARIFF, {"opB": 201, "d1": 403, None: 401}),
    (
        "POST",
        "/chargers",
        "charger at another company's station",
        {"chargerId": "X-1", "stationId": "{stationB}", "evses": ["1:IEC_62196_T2:22"]},
        {"opA": 404, "d1": 403},
    ),
    ("POST", "/chargers/{chargerA}/rotate-password", "rotate", None, {"opA": 200, "opB": 404, "d1": 403}),
    (
        "POST",
        "/chargers/{chargerA}/commands/reset",
        "command an offline charger",
        {"type": "Soft"},
        {"opA": 503, "opB": 404, "d1": 403},
    ),
    (
        "POST",
        "/id-tokens/{token1}/block",
        "block a card",
        {"reason": "lost"},
        {"d2": 404, "d1": 200, "opA": 200},
    ),
    ("POST", "/id-tokens/{token1}/unblock", "unblock a card", None, {"d2": 404, "d1": 200}),
    ("POST", "/me/id-tokens", "link a card", {"idToken": "{token1}"}, {"opA": 403, "d2": 409}),
    ("POST", "/sessions/start", "start", {"chargerId": "{chargerA}"}, {"opA": 403, None: 401}),
    (
        "POST",
        "/sessions/stop",
        "stop an unknown session",
        {"sessionId": str(uuid.UUID(int=1))},
        {"d1": 404, "opA": 404},
    ),
]


def _fill(body: Any, ids: dict[str, str]) -> Any:
    if isinstance(body, str):
        return body.format(**ids) if "{" in body else body
    if isinstance(body, dict):
        return {k: _fill(v, ids) for k, v in body.items()}
    if isinstance(body, list):
        return [_fill(v, ids) for v in body]
    return body


@pytest.mark.parametrize(("method", "path", "what", "body", "expected"), CASES, ids=[c[2] for c in CASES])
async def test_route_role_object(
    world: World,
    method: str,
    path: str,
    what: str,
    body: dict[str, Any] | None,
    expected: dict[str | None, int],
) -> None:
    answers = {who: await world.call(who, method, path, _fill(body, world.ids)) for who in expected}
    assert answers == expected
