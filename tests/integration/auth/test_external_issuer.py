"""An external OIDC provider's tokens (Keycloak-shaped), verified against its JWKS served over real HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from csms.identity.external_issuers import external_driver_id
from csms.identity.issuers_config import ExternalIssuerConfig
from csms.identity.roles import Role
from tests.integration.auth.conftest import AuthServer, AuthServerFactory
from tests.integration.auth.jwt_forgery import assemble
from write_api.auth.config import AuthConfig

ISSUER = "https://idp.example/realms/csms"
AUDIENCE = "csms-api"


@dataclasses.dataclass
class Provider:
    """A stand-in identity provider: RSA keys, a JWKS endpoint, and tokens signed like Keycloak's."""

    jwks_url: str
    keys: dict[str, rsa.RSAPrivateKey]
    fetches: int = 0

    def add_key(self) -> str:
        kid = f"rsa-{uuid.uuid4().hex[:8]}"
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        return kid

    def token(self, kid: str | None = None, **overrides: Any) -> str:
        kid = kid or next(iter(self.keys))
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "f3d1c1e2-0000-4000-8000-00000000abcd",
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "realm_access": {"roles": ["offline_access", "csms-operator"]},
            "company_id": "9a0d4c1e-1111-4000-8000-000000000001",
        }
        claims.update(overrides)
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    state = Provider(jwks_url="", keys={})
    state.add_key()

    async def jwks(request: web.Request) -> web.Response:
        state.fetches += 1
        return web.json_response(state.jwks())

    app = web.Application()
    app.router.add_get("/protocol/openid-connect/certs", jwks)
    async with TestServer(app) as server:
        state.jwks_url = str(server.make_url("/protocol/openid-connect/certs"))
        yield state


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def external_config(auth_config: AuthConfig, provider: Provider, **changes: Any) -> AuthConfig:
    external = ExternalIssuerConfig(
        issuer=ISSUER,
        jwks_url=provider.jwks_url,
        audience=AUDIENCE,
        role_claim="realm_access.roles",
        role_map={"csms-admin": Role.ADMIN, "csms-operator": Role.OPERATOR, "csms-driver": Role.DRIVER},
        company_claim="company_id",
        jwks_min_refresh_seconds=0.0,
    )
    return dataclasses.replace(auth_config, external_issuers=(dataclasses.replace(external, **changes),))


@pytest.fixture
async def server(
    make_auth_server: AuthServerFactory,
    auth_config: AuthConfig,
    provider: Provider,
    http: aiohttp.ClientSession,
) -> AuthServer:
    return await make_auth_server(external_config(auth_config, provider), http=http)


async def test_an_external_operator_token_is_accepted_with_its_mapped_role(
    server: AuthServer, provider: Provider
) -> None:
    response = await server.whoami(provider.token())

    assert response.status == 200
    assert await response.json() == {
        "subject": "f3d1c1e2-0000-4000-8000-00000000abcd",
        "role": "operator",
        "issuer": ISSUER,
        "accountId": None,
        "companyId": "9a0d4c1e-1111-4000-8000-000000000001",
        "driverId": None,
    }
    assert (await server.whoami(provider.token(), "/test/operator-only")).status == 200
    assert (await server.whoami(provider.token(), "/test/admin-only")).status == 403


async def test_roles_map_by_precedence_and_drivers_get_a_stable_id(
    server: AuthServer, provider: Provider
) -> None:
    admin = provider.token(realm_access={"roles": ["csms-driver", "csms-admin"]})
    driver = provider.token(realm_access={"roles": ["csms-driver"]}, sub="user-42")

    assert (await server.whoami(admin, "/test/admin-only")).status == 200
    me = await (await server.whoami(driver)).json()
    assert me["role"] == "driver"
    assert me["driverId"] == str(external_driver_id(ISSUER, "user-42"))
    assert external_driver_id(ISSUER, "user-42") != external_driver_id(ISSUER + "/other", "user-42")


async def test_our_own_tokens_still_work_beside_the_external_issuer(server: AuthServer) -> None:
    tokens = await server.tokens((await server.register())["email"])

    assert (await server.whoami(tokens["accessToken"])).status == 200


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"realm_access": {"roles": ["offline_access"]}}, "no role"),
        ({"realm_access": {"roles": ["csms-operator"]}, "company_id": None}, "needs a company"),
        ({"aud": "account"}, "another audience"),  # Keycloak's default audience, not ours
        ({"exp": int(time.time()) - 300}, "expired"),
        ({"iss": ISSUER + "/other"}, "issuer is not trusted"),
    ],
    ids=["unmapped-role", "operator-without-company", "wrong-audience", "expired", "other-issuer"],
)
async def test_external_tokens_that_do_not_qualify_are_refused(
    server: AuthServer, provider: Provider, overrides: dict[str, Any], reason: str
) -> None:
    response = await server.whoami(provider.token(**overrides))

    assert response.status == 401
    assert reason in (await response.json())["detail"]


async def test_a_token_maced_with_the_providers_public_key_is_refused(
    server: AuthServer, provider: Provider
) -> None:
    kid = next(iter(provider.keys))
    public_pem = (
        provider.keys[kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    header = {"alg": "HS256", "kid": kid}
    forged = assemble(header, claims, lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())

    assert (await server.whoami(forged)).status == 401
    assert (await server.whoami(assemble({"alg": "none", "kid": kid}, claims, lambda _: b""))).status == 401


async def test_a_rotated_provider_key_is_fetched_when_a_token_names_it(
    server: AuthServer, provider: Provider
) -> None:
    assert (await server.whoami(provider.token())).status == 200
    fetches = provider.fetches

    new_kid = provider.add_key()

    assert (await server.whoami(provider.token(new_kid))).status == 200
    assert provider.fetches == fetches + 1
    assert (await server.whoami(provider.token(new_kid))).status == 200
    assert provider.fetches == fetches + 1  # cached


async def test_external_tokens_are_refused_when_the_issuer_is_not_configured(
    auth_server: AuthServer, provider: Provider
) -> None:
    response = await auth_server.whoami(provider.token())

    assert response.status == 401
    assert "issuer is not trusted" in (await response.json())["detail"]
    assert provider.fetches == 0


async def test_the_external_issuer_alone_can_be_trusted(
    make_auth_server: AuthServerFactory,
    auth_config: AuthConfig,
    provider: Provider,
    http: aiohttp.ClientSession,
) -> None:
    config = dataclasses.replace(external_config(auth_config, provider), accept_local_tokens=False)
    server = await make_auth_server(config, http=http)
    tokens = await server.tokens((await server.register())["email"])

    assert (await server.whoami(provider.token())).status == 200
    assert (await server.whoami(tokens["accessToken"])).status == 401
