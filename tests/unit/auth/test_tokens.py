"""Access tokens: what we sign, and what the verifier makes of it, without any server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from csms.identity.errors import InvalidToken
from csms.identity.roles import Role
from csms.identity.signing_keys import SigningKeys, generate_signing_key
from csms.identity.verification import MAX_TOKEN_BYTES, LocalIssuer, TokenVerifier
from write_api.auth.access_tokens import AccessTokenIssuer
from write_api.auth.accounts import Account

KEYS = SigningKeys.of(generate_signing_key())


def issuer(ttl: timedelta = timedelta(minutes=15), at: datetime | None = None) -> AccessTokenIssuer:
    # The verifier checks `exp` against the real clock, so tokens are stamped relative to now.
    return AccessTokenIssuer(
        KEYS, issuer="csms", audience="csms-api", ttl=ttl, clock=lambda: at or datetime.now(UTC)
    )


def verifier(leeway: float = 30.0) -> TokenVerifier:
    return TokenVerifier([LocalIssuer(KEYS, issuer="csms", audience="csms-api")], leeway_seconds=leeway)


def account(role: Role) -> Account:
    return Account(
        id=uuid.uuid4(),
        email="someone@example.com",
        role=role,
        company_id=uuid.uuid4() if role is Role.OPERATOR else None,
        driver_id=uuid.uuid4() if role is Role.DRIVER else None,
        disabled=False,
        created_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("role", list(Role))
async def test_a_token_we_issue_verifies_into_its_principal(role: Role) -> None:
    holder = account(role)
    issued = issuer().issue(holder)

    principal = await verifier().verify(issued.token)

    assert principal.account_id == holder.id
    assert principal.subject == str(holder.id)
    assert principal.role is role
    assert principal.company_id == holder.company_id
    assert principal.driver_id == holder.driver_id
    assert principal.issuer == "csms"
    assert principal.token_id == issued.token_id
    assert issued.expires_in == 900


def test_the_header_names_the_key_and_the_token_type() -> None:
    header = jwt.get_unverified_header(issuer().issue(account(Role.ADMIN)).token)

    assert header == {"alg": "EdDSA", "kid": KEYS.kid, "typ": "at+jwt"}


async def test_expiry_allows_only_the_leeway() -> None:
    issued_at = datetime.now(UTC) - timedelta(seconds=80)
    token = issuer(ttl=timedelta(seconds=60), at=issued_at).issue(account(Role.ADMIN)).token

    assert (await verifier(leeway=30).verify(token)).role is Role.ADMIN
    with pytest.raises(InvalidToken, match="expired"):
        await verifier(leeway=5).verify(token)


async def test_a_huge_token_is_not_even_parsed() -> None:
    with pytest.raises(InvalidToken, match="too large"):
        await verifier().verify("e" * (MAX_TOKEN_BYTES + 1))


async def test_an_operator_token_without_its_company_is_refused() -> None:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "iss": "csms",
        "aud": "csms-api",
        "sub": str(uuid.uuid4()),
        "role": "operator",
        "iat": now,
        "exp": now + 60,
        "jti": "x",
    }
    token = jwt.encode(
        claims, KEYS.private_key, algorithm="EdDSA", headers={"kid": KEYS.kid, "typ": "at+jwt"}
    )

    with pytest.raises(InvalidToken, match="company_id"):
        await verifier().verify(token)


def test_two_issuers_may_not_share_an_iss() -> None:
    local = LocalIssuer(KEYS, issuer="csms", audience="csms-api")
    with pytest.raises(ValueError, match="share"):
        TokenVerifier([local, local])


class CountingIssuer(LocalIssuer):
    """Our issuer, counting the full verifications (each looks up the signing key)."""

    lookups = 0

    async def key(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        self.lookups += 1
        return await super().key(kid, algorithm)


async def test_a_verified_token_is_remembered_until_it_expires_and_then_refused() -> None:
    counting = CountingIssuer(KEYS, issuer="csms", audience="csms-api")
    remembering = TokenVerifier([counting], leeway_seconds=0)
    issued = issuer(ttl=timedelta(seconds=2)).issue(account(Role.DRIVER))
    first = await remembering.verify(issued.token)
    again = await remembering.verify(issued.token)
    assert again == first
    assert counting.lookups == 1  # the second answer came from memory
    # A tampered copy is another text: verified afresh, and refused.
    tampered = issued.token[:-4] + ("AAAA" if not issued.token.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidToken, match="signature"):
        await remembering.verify(tampered)

    await asyncio.sleep(2.1)  # past `exp`: memory does not outlive the token, and the full check refuses it
    with pytest.raises(InvalidToken, match="expired"):
        await remembering.verify(issued.token)


async def test_the_memory_of_verified_tokens_is_bounded() -> None:
    counting = CountingIssuer(KEYS, issuer="csms", audience="csms-api")
    remembering = TokenVerifier([counting], remember=2)
    tokens = [issuer().issue(account(Role.DRIVER)).token for _ in range(3)]
    for token in tokens:
        await remembering.verify(token)
    await remembering.verify(tokens[0])  # the oldest was forgotten: verified again
    await remembering.verify(tokens[2])  # still remembered
    assert counting.lookups == 4
