"""`build_token_verifier`: the one call both APIs make, trusting our tokens, an OIDC provider's, or both."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import aiohttp
import jwt
import pytest

from csms.identity.errors import InvalidToken
from csms.identity.issuers_config import ExternalIssuerConfig
from csms.identity.roles import Role
from csms.identity.signing_keys import SigningKeys, generate_signing_key
from csms.identity.verification import ACCESS_TOKEN_TYPE
from csms.identity.verifier import build_token_verifier

KEYS = SigningKeys.of(generate_signing_key())
PROVIDER = ExternalIssuerConfig(
    issuer="https://sso.example.com",
    jwks_url="https://sso.example.com/jwks",
    audience="csms-api",
    role_map={"admins": Role.ADMIN},
)


def our_token() -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": "csms",
        "aud": "csms-api",
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iat": now,
        "exp": now + 60,
        "jti": "t",
    }
    headers = {"kid": KEYS.kid, "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(claims, KEYS.private_key, algorithm="EdDSA", headers=headers)


async def test_our_own_tokens_verify_when_local_tokens_are_accepted() -> None:
    verifier = build_token_verifier(accept_local_tokens=True, issuer="csms", audience="csms-api", keys=KEYS)

    principal = await verifier.verify(our_token())

    assert principal.role is Role.ADMIN
    assert principal.issuer == "csms"


async def test_our_own_tokens_are_refused_when_only_a_provider_is_trusted() -> None:
    async with aiohttp.ClientSession() as http:
        verifier = build_token_verifier(
            accept_local_tokens=False,
            issuer="csms",
            audience="csms-api",
            keys=KEYS,
            external_issuers=[PROVIDER],
            http=http,
        )

        with pytest.raises(InvalidToken, match="issuer is not trusted"):
            await verifier.verify(our_token())


def test_external_issuers_need_a_session_to_fetch_their_keys() -> None:
    with pytest.raises(ValueError, match="ClientSession"):
        build_token_verifier(
            accept_local_tokens=True,
            issuer="csms",
            audience="csms-api",
            keys=KEYS,
            external_issuers=[PROVIDER],
        )


async def test_the_leeway_is_passed_on() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": "csms",
        "aud": "csms-api",
        "sub": str(uuid.uuid4()),
        "role": "admin",
        "iat": now - 80,
        "exp": now - 20,  # expired 20 s ago
        "jti": "t",
    }
    headers = {"kid": KEYS.kid, "typ": ACCESS_TOKEN_TYPE}
    token = jwt.encode(claims, KEYS.private_key, algorithm="EdDSA", headers=headers)

    lenient = build_token_verifier(
        accept_local_tokens=True, issuer="csms", audience="csms-api", keys=KEYS, leeway_seconds=30
    )
    strict = build_token_verifier(
        accept_local_tokens=True, issuer="csms", audience="csms-api", keys=KEYS, leeway_seconds=5
    )

    assert (await lenient.verify(token)).role is Role.ADMIN
    with pytest.raises(InvalidToken, match="expired"):
        await strict.verify(token)
