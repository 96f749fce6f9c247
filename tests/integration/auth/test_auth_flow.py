"""A driver registers, logs in, calls a protected route, refreshes, has a stolen token detected, logs out."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any
from uuid import UUID

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from csms.domain import Company, Driver
from csms.eventstore import Repository
from csms.web.bearer import TOKEN_VERIFIER
from tests.integration.auth.conftest import PASSWORD, AuthServer, AuthServerFactory, Clock
from write_api.auth.actor import authenticated_actor
from write_api.auth.errors import UnknownCompany

PROBLEM = "application/problem+json"


def claims_of(access_token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return claims


async def test_register_login_refresh_reuse_logout(auth_server: AuthServer, repository: Repository) -> None:
    registered = await auth_server.register("New.Driver@Example.com")
    driver = await repository.get(UUID(registered["driverId"]), Driver)
    assert driver.email == "new.driver@example.com"
    assert driver.display_name == "Test Driver"

    login = await auth_server.login("new.driver@example.com")
    assert login.status == 200
    assert login.headers["Cache-Control"] == "no-store"
    first = await login.json()
    assert first["tokenType"] == "Bearer"
    assert first["expiresIn"] == 900
    claims = claims_of(first["accessToken"])
    assert claims["sub"] == registered["accountId"]
    assert claims["role"] == "driver"
    assert claims["driver_id"] == registered["driverId"]
    assert claims["exp"] - claims["iat"] == 900
    assert {"iss", "aud", "jti"} <= claims.keys()

    me = await auth_server.whoami(first["accessToken"])
    assert me.status == 200
    assert await me.json() == {
        "subject": registered["accountId"],
        "role": "driver",
        "issuer": "csms",
        "accountId": registered["accountId"],
        "companyId": None,
        "driverId": registered["driverId"],
    }
    forbidden = await auth_server.whoami(first["accessToken"], "/test/admin-only")
    assert forbidden.status == 403
    assert forbidden.content_type == PROBLEM
    assert (await forbidden.json())["status"] == 403

    rotated = await auth_server.post("/auth/refresh", {"refreshToken": first["refreshToken"]})
    assert rotated.status == 200
    second = await rotated.json()
    assert second["refreshToken"] != first["refreshToken"]
    assert (await auth_server.whoami(second["accessToken"])).status == 200

    # The first refresh token was spent: presenting it again means someone kept a copy.
    reused = await auth_server.post("/auth/refresh", {"refreshToken": first["refreshToken"]})
    assert reused.status == 401
    assert reused.content_type == PROBLEM
    assert (await reused.json())["errors"][0]["field"] == "refreshToken"
    # ... so the whole family is revoked, the legitimate holder's current token included.
    revoked = await auth_server.post("/auth/refresh", {"refreshToken": second["refreshToken"]})
    assert revoked.status == 401

    third = await auth_server.tokens("new.driver@example.com")
    logout = await auth_server.post("/auth/logout", {"refreshToken": third["refreshToken"]})
    assert logout.status == 204
    after_logout = await auth_server.post("/auth/refresh", {"refreshToken": third["refreshToken"]})
    assert after_logout.status == 401
    again = await auth_server.post("/auth/logout", {"refreshToken": third["refreshToken"]})
    assert again.status == 204


async def test_a_wrong_password_looks_exactly_like_an_unknown_email(auth_server: AuthServer) -> None:
    registered = await auth_server.register()

    wrong_password = await auth_server.login(registered["email"], "not the password at all")
    unknown_email = await auth_server.login("nobody-" + registered["email"], PASSWORD)

    assert wrong_password.status == unknown_email.status == 401
    assert wrong_password.content_type == unknown_email.content_type == PROBLEM
    assert await wrong_password.json() == await unknown_email.json()
    assert wrong_password.headers["WWW-Authenticate"] == unknown_email.headers["WWW-Authenticate"]


async def test_bad_requests_name_the_field_at_fault(auth_server: AuthServer) -> None:
    missing = await auth_server.post("/auth/register", {"email": "a@example.com"})
    assert missing.status == 422
    body = await missing.json()
    assert missing.content_type == PROBLEM
    assert {e["field"] for e in body["errors"]} == {"password", "displayName"}
    assert body["errors"][0]["pointer"].startswith("#/")

    cases = [
        ({"email": "not-an-email", "password": PASSWORD, "displayName": "D"}, "email"),
        ({"email": "short@example.com", "password": "too short", "displayName": "D"}, "password"),
        ({"email": "common@example.com", "password": "Password1234", "displayName": "D"}, "password"),
        ({"email": "long@example.com", "password": "x" * 129 + "y", "displayName": "D"}, "password"),
        ({"email": "blank@example.com", "password": PASSWORD, "displayName": "   "}, "displayName"),
        ({"email": "type@example.com", "password": 123456789012345, "displayName": "D"}, "password"),
    ]
    for request, field in cases:
        response = await auth_server.post("/auth/register", request)
        assert response.status == 422, request
        assert [e["field"] for e in (await response.json())["errors"]] == [field], request

    malformed = await auth_server.client.post(
        "/auth/login", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status == 400
    assert malformed.content_type == PROBLEM
    not_an_object = await auth_server.post("/auth/login", ["email", "password"])
    assert not_an_object.status == 400
    form = await auth_server.client.post("/auth/login", data={"email": "a@example.com", "password": "x"})
    assert form.status == 415
    assert form.content_type == PROBLEM

    unknown_route = await auth_server.client.get("/auth/nothing-here")
    assert unknown_route.status == 404
    assert unknown_route.content_type == PROBLEM
    wrong_method = await auth_server.client.get("/auth/login")
    assert wrong_method.status == 405
    assert wrong_method.content_type == PROBLEM
    assert "POST" in wrong_method.headers["Allow"]


async def test_an_email_registers_once_whatever_its_case(auth_server: AuthServer) -> None:
    registered = await auth_server.register()

    duplicate = await auth_server.post(
        "/auth/register",
        {"email": registered["email"].upper(), "password": PASSWORD, "displayName": "Twin"},
    )

    assert duplicate.status == 409
    body = await duplicate.json()
    assert body["errors"][0]["field"] == "email"
    assert body["type"] == "urn:csms:problem:email-taken"


async def test_protected_routes_need_a_valid_bearer_token(auth_server: AuthServer) -> None:
    missing = await auth_server.client.get("/test/whoami")
    assert missing.status == 401
    assert missing.content_type == PROBLEM
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="csms"'

    for header in ("Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer a.b.c"):
        response = await auth_server.client.get("/test/whoami", headers={"Authorization": header})
        assert response.status == 401, header
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"], header
        assert (await response.json())["status"] == 401


async def test_an_operator_token_carries_the_company(auth_server: AuthServer, repository: Repository) -> None:
    company = Company.create(uuid.uuid4(), "Operator Co", Clock()())
    await repository.save(company)
    email = f"operator-{uuid.uuid4().hex[:8]}@example.com"
    account = await auth_server.service.accounts.create_operator(email, PASSWORD, company.id)
    assert account.company_id == company.id

    tokens = await auth_server.tokens(email)

    assert claims_of(tokens["accessToken"])["company_id"] == str(company.id)
    me = await (await auth_server.whoami(tokens["accessToken"])).json()
    assert (me["role"], me["companyId"], me["driverId"]) == ("operator", str(company.id), None)
    assert (await auth_server.whoami(tokens["accessToken"], "/test/operator-only")).status == 200
    assert (await auth_server.whoami(tokens["accessToken"], "/test/admin-only")).status == 403


async def test_an_operator_needs_an_existing_company(auth_server: AuthServer) -> None:
    with pytest.raises(UnknownCompany):
        await auth_server.service.accounts.create_operator("ghost@example.com", PASSWORD, uuid.uuid4())
    assert await auth_server.service.accounts.find_by_email("ghost@example.com") is None


async def test_a_disabled_account_can_neither_log_in_nor_refresh(auth_server: AuthServer) -> None:
    registered = await auth_server.register()
    tokens = await auth_server.tokens(registered["email"])

    assert await auth_server.service.accounts.disable(UUID(registered["accountId"]))

    assert (await auth_server.login(registered["email"])).status == 401
    refreshed = await auth_server.post("/auth/refresh", {"refreshToken": tokens["refreshToken"]})
    assert refreshed.status == 401


async def test_a_refresh_token_expires(make_auth_server: AuthServerFactory) -> None:
    clock = Clock()
    server = await make_auth_server(clock=clock)
    registered = await server.register()
    tokens = await server.tokens(registered["email"])

    clock.now += timedelta(seconds=server.config.refresh_token_ttl_seconds + 1)

    expired = await server.post("/auth/refresh", {"refreshToken": tokens["refreshToken"]})
    assert expired.status == 401
    assert "expired" in (await expired.json())["detail"]


async def test_the_jwks_publishes_public_keys_only(auth_server: AuthServer) -> None:
    response = await auth_server.client.get("/.well-known/jwks.json")

    assert response.status == 200
    (key,) = (await response.json())["keys"]
    assert key == {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": key["x"],
        "kid": auth_server.keys.kid,
        "alg": "EdDSA",
        "use": "sig",
    }
    tokens = await auth_server.tokens((await auth_server.register())["email"])
    assert jwt.get_unverified_header(tokens["accessToken"])["kid"] == key["kid"]
    # Anyone can verify our tokens from the published key alone.
    claims = jwt.decode(
        tokens["accessToken"], jwt.PyJWK(key), algorithms=["EdDSA"], audience="csms-api", issuer="csms"
    )
    assert claims["role"] == "driver"


async def test_the_write_side_actor_is_the_verified_caller(auth_server: AuthServer) -> None:
    registered = await auth_server.register()
    tokens = await auth_server.tokens(registered["email"])

    async def actor_route(request: web.Request) -> web.Response:
        actor = await authenticated_actor(request)
        return web.json_response({"role": actor.role, "driverId": str(actor.driver_id)})

    app = web.Application()
    app[TOKEN_VERIFIER] = auth_server.service.verifier
    app.router.add_get("/actor", actor_route)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/actor", headers={"Authorization": f"Bearer {tokens['accessToken']}"})
        assert await response.json() == {"role": "driver", "driverId": registered["driverId"]}
        assert (await client.get("/actor")).status == 401


async def test_expired_refresh_tokens_can_be_purged(make_auth_server: AuthServerFactory) -> None:
    clock = Clock()
    server = await make_auth_server(clock=clock)
    registered = await server.register()
    # Tokens issued "long ago", so only they are expired now (other tests' tokens stay).
    clock.now -= timedelta(seconds=server.config.refresh_token_ttl_seconds + 60)
    first = await server.tokens(registered["email"])
    second = await (await server.post("/auth/refresh", {"refreshToken": first["refreshToken"]})).json()

    assert await server.service.refresh_tokens.delete_expired(Clock()()) >= 2

    clock.now = Clock()()
    refreshed = await server.post("/auth/refresh", {"refreshToken": second["refreshToken"]})
    assert refreshed.status == 401
    assert "unknown" in (await refreshed.json())["detail"].lower()
