"""Verifying access tokens: ours (EdDSA, checked with our public keys) and any trusted OIDC issuer's.

Verification follows RFC 8725: the issuer is looked up from `iss` first, and that issuer's configuration
(never the token's header) decides the allowed algorithms and the key, found by `kid`. `none` and HS* are
never allowed, so neither an unsigned token nor one MAC'd with our public key as the secret gets through.
`exp`, `iss`, `aud` and `sub` are required; our own tokens also need `iat`, `jti` and `typ: at+jwt` (RFC
9068), which keeps another kind of JWT signed by the same key from passing as an access token.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import jwt

from csms.identity.errors import InvalidToken
from csms.identity.principal import Principal
from csms.identity.roles import Role
from csms.identity.signing_keys import ALGORITHM, PublicKeys

_log = logging.getLogger(__name__)

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
MAX_TOKEN_BYTES = 8192  # far above any real token; refuses to parse megabytes of attacker input
_MAX_CACHED_KEYS = 64  # a kid that names no key is never cached, so a flood of made-up kids cannot grow this


class TrustedIssuer(Protocol):
    """One issuer whose tokens we accept: its `iss`, audience, algorithms, keys and claim mapping."""

    @property
    def issuer(self) -> str: ...

    @property
    def audience(self) -> str: ...

    @property
    def algorithms(self) -> Sequence[str]: ...

    @property
    def required_claims(self) -> Sequence[str]: ...

    def check_header(self, header: Mapping[str, Any]) -> None:
        """Raise InvalidToken for a header this issuer never writes."""

    async def key(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        """The key with this id, bound to `algorithm` (already one of ours), or None when there is none."""

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The caller the verified claims describe; raises InvalidToken when they describe no valid one."""


class LocalIssuer:
    """Us: tokens from the write API's `AccessTokenIssuer`, checked with our own public keys."""

    algorithms: Sequence[str] = (ALGORITHM,)
    required_claims: Sequence[str] = ("exp", "iat", "iss", "aud", "sub", "jti")

    def __init__(self, keys: PublicKeys, *, issuer: str, audience: str) -> None:
        self._keys = keys
        self._found: dict[str, jwt.PyJWK] = {}  # our keys are fixed for the process's life
        self.issuer = issuer
        self.audience = audience

    def check_header(self, header: Mapping[str, Any]) -> None:
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidToken("not an access token")

    async def key(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        found = self._found.get(kid)
        if found is None:
            found = self._keys.public_jwk(kid)
            if found is not None and len(self._found) < _MAX_CACHED_KEYS:
                self._found[kid] = found
        return found

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        account_id = _uuid_claim(claims, "sub")
        if account_id is None:
            raise InvalidToken("the token has no valid subject")
        try:
            role = Role(str(claims.get("role")))
        except ValueError:
            raise InvalidToken("the token carries no known role") from None
        company_id = _uuid_claim(claims, "company_id")
        driver_id = _uuid_claim(claims, "driver_id")
        if role is Role.OPERATOR and company_id is None:
            raise InvalidToken("an operator token needs a company_id")
        if role is Role.DRIVER and driver_id is None:
            raise InvalidToken("a driver token needs a driver_id")
        return Principal(
            subject=str(account_id),
            role=role,
            issuer=self.issuer,
            company_id=company_id if role is Role.OPERATOR else None,
            driver_id=driver_id if role is Role.DRIVER else None,
            account_id=account_id,
            token_id=str(claims["jti"]),
        )


class TokenVerifier:
    """Verify a bearer token against the issuer its `iss` names, if we trust that issuer at all.

    A token that passed is remembered (by its exact text) until it expires: a driver's app sends the same
    token with every request for its lifetime, and checking an Ed25519 signature again each time was a tenth
    of the write API's CPU under load. Only a token that verified is kept, and only as long as it would still
    verify: until its `exp` (plus the leeway) and not before its `nbf`. Access tokens are not revocable before
    they expire, by design (short-lived), so remembering one changes no answer.
    """

    def __init__(
        self,
        issuers: Sequence[TrustedIssuer],
        *,
        leeway_seconds: float = 30.0,
        remember: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        if len(self._issuers) != len(issuers):
            raise ValueError("two trusted issuers share an `iss` value")
        self._leeway = leeway_seconds
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self._remember = remember
        self._clock = clock

    async def verify(self, token: str) -> Principal:
        """The verified caller; raises InvalidToken saying briefly why not."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("the token is too large")
        known = self._verified.get(token)
        if known is not None:
            now = self._clock()
            if known.valid_from - self._leeway <= now <= known.expires_at + self._leeway:
                self._verified.move_to_end(token)
                return known.principal
            del self._verified[token]
        principal, claims = await self._verify(token)
        self._keep(token, principal, claims)
        return principal

    def _keep(self, token: str, principal: Principal, claims: Mapping[str, Any]) -> None:
        expires_at, valid_from = claims.get("exp"), claims.get("nbf", 0)
        if not isinstance(expires_at, int | float) or not isinstance(valid_from, int | float):
            return
        if self._remember <= 0:
            return
        self._verified[token] = _Verified(principal, float(expires_at), float(valid_from))
        while len(self._verified) > self._remember:
            self._verified.popitem(last=False)

    async def _verify(self, token: str) -> tuple[Principal, Mapping[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
            # Read only to choose the issuer; every claim is verified below against that issuer's key.
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise InvalidToken("the token is malformed") from None
        claimed_issuer = unverified.get("iss")
        issuer = self._issuers.get(claimed_issuer) if isinstance(claimed_issuer, str) else None
        if issuer is None:
            raise InvalidToken("the token's issuer is not trusted")
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in issuer.algorithms:
            raise InvalidToken("the token's algorithm is not allowed")
        if "crit" in header:
            raise InvalidToken("the token has critical header parameters we do not support")
        issuer.check_header(header)
        kid = header.get("kid")
        key = await issuer.key(kid, algorithm) if isinstance(kid, str) and kid else None
        if key is None:
            raise InvalidToken("the token's signing key is unknown")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(issuer.algorithms),
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=self._leeway,
                options={"require": list(issuer.required_claims), "enforce_minimum_key_length": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is meant for another audience") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the token lacks the {error.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature is invalid") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.PyJWTError as error:
            _log.debug("token rejected: %s", error)
            raise InvalidToken("the token is invalid") from None
        return issuer.principal(claims), claims


@dataclass(frozen=True, slots=True)
class _Verified:
    principal: Principal
    expires_at: float
    valid_from: float


def _uuid_claim(claims: Mapping[str, Any], name: str) -> UUID | None:
    value = claims.get(name)
    if not isinstance(value, str):
        return None
    try:
        return UUID(value)
    except ValueError:
        return None
