"""Forged, stale and misdirected access tokens are refused with 401, whatever trick they try."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from csms.identity.signing_keys import SigningKeys, generate_signing_key, key_id
from tests.integration.auth.conftest import AuthServer
from tests.integration.auth.jwt_forgery import assemble, b64

Forge = Callable[[SigningKeys, dict[str, Any]], str]


def signed(keys: SigningKeys, claims: dict[str, Any], **header: Any) -> str:
    headers = {"kid": keys.kid, "typ": "at+jwt", **header}
    return jwt.encode(claims, keys.private_key, algorithm="EdDSA", headers=headers)


def alg_none(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return assemble({"alg": "none", "typ": "at+jwt", "kid": keys.kid}, claims, lambda _: b"")


def alg_none_uppercase(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return assemble({"alg": "NONE", "typ": "at+jwt", "kid": keys.kid}, claims, lambda _: b"")


def hs256_with_public_pem(keys: SigningKeys, claims: dict[str, Any]) -> str:
    """The classic key-confusion attack: MAC the token with the published public key as the secret."""
    public_pem = keys.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keys.kid}
    return assemble(header, claims, lambda data: hmac.new(public_pem, data, hashlib.sha256).digest())


def hs256_with_public_jwk_x(keys: SigningKeys, claims: dict[str, Any]) -> str:
    raw = keys.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": keys.kid}
    return assemble(header, claims, lambda data: hmac.new(raw, data, hashlib.sha256).digest())


def expired(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {**claims, "iat": claims["iat"] - 3600, "exp": int(time.time()) - 120})


def wrong_audience(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {**claims, "aud": "some-other-api"})


def wrong_issuer(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {**claims, "iss": "https://evil.example"})


def unknown_kid(keys: SigningKeys, claims: dict[str, Any]) -> str:
    other = generate_signing_key()
    return jwt.encode(
        claims, other, algorithm="EdDSA", headers={"kid": key_id(other.public_key()), "typ": "at+jwt"}
    )


def another_key_claiming_our_kid(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return jwt.encode(
        claims, generate_signing_key(), algorithm="EdDSA", headers={"kid": keys.kid, "typ": "at+jwt"}
    )


def no_kid(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, keys.private_key, algorithm="EdDSA", headers={"typ": "at+jwt"})


def tampered_claims(keys: SigningKeys, claims: dict[str, Any]) -> str:
    """A genuine token whose payload is swapped for one promoting its holder to admin."""
    header, _, signature = signed(keys, claims).split(".")
    return f"{header}.{b64(json.dumps({**claims, 'role': 'admin'}).encode())}.{signature}"


def tampered_signature(keys: SigningKeys, claims: dict[str, Any]) -> str:
    header, payload, signature = signed(keys, claims).split(".")
    flipped = base64.urlsafe_b64decode(signature + "==")
    flipped = bytes([flipped[0] ^ 1]) + flipped[1:]
    return f"{header}.{payload}.{b64(flipped)}"


def without_exp(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {k: v for k, v in claims.items() if k != "exp"})


def without_aud(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {k: v for k, v in claims.items() if k != "aud"})


def without_sub(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {k: v for k, v in claims.items() if k != "sub"})


def not_an_access_token(keys: SigningKeys, claims: dict[str, Any]) -> str:
    """Signed by our key, but not typed as an access token (e.g. some other JWT we might sign one day)."""
    return signed(keys, claims, typ="JWT")


def not_yet_valid(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, {**claims, "nbf": int(time.time()) + 3600})


def critical_header(keys: SigningKeys, claims: dict[str, Any]) -> str:
    return signed(keys, claims, crit=["exp"])


ATTACKS: list[Forge] = [
    alg_none,
    alg_none_uppercase,
    hs256_with_public_pem,
    hs256_with_public_jwk_x,
    expired,
    wrong_audience,
    wrong_issuer,
    unknown_kid,
    another_key_claiming_our_kid,
    no_kid,
    tampered_claims,
    tampered_signature,
    without_exp,
    without_aud,
    without_sub,
    not_an_access_token,
    not_yet_valid,
    critical_header,
]


async def genuine_claims(server: AuthServer) -> dict[str, Any]:
    tokens = await server.tokens((await server.register())["email"])
    claims: dict[str, Any] = jwt.decode(tokens["accessToken"], options={"verify_signature": False})
    return claims


async def test_the_genuine_token_is_accepted_and_a_resigned_copy_too(auth_server: AuthServer) -> None:
    """The control: the forging helpers produce accepted tokens when they do not cheat."""
    claims = await genuine_claims(auth_server)

    response = await auth_server.whoami(signed(auth_server.keys, claims))

    assert response.status == 200


@pytest.mark.parametrize("forge", ATTACKS, ids=lambda forge: forge.__name__)
async def test_a_forged_token_is_refused(auth_server: AuthServer, forge: Forge) -> None:
    claims = await genuine_claims(auth_server)

    response = await auth_server.whoami(forge(auth_server.keys, claims), "/test/admin-only")

    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


async def test_an_expired_token_says_so(auth_server: AuthServer) -> None:
    claims = await genuine_claims(auth_server)

    response = await auth_server.whoami(expired(auth_server.keys, claims))

    assert "expired" in (await response.json())["detail"]
    assert 'error_description="the token has expired"' in response.headers["WWW-Authenticate"]
