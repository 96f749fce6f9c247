"""Trusting an external OIDC provider's access tokens (Cognito, Keycloak): its JWKS, fetched and cached,
and its claims mapped onto our roles.

The JWKS is refetched when its cache ages out, or when a token names a key we do not have (the provider
rotated); an unknown kid refetches at most once per `jwks_min_refresh_seconds`, so random kids cannot make us
hammer the provider. A failed fetch keeps the keys we had.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from uuid import UUID

import aiohttp
import jwt
import orjson

from csms.identity.errors import InvalidToken
from csms.identity.issuers_config import ExternalIssuerConfig
from csms.identity.principal import Principal
from csms.identity.roles import Role

_log = logging.getLogger(__name__)

MAX_JWKS_BYTES = 1 << 20
# Drivers who sign in through an external provider get a stable driver id derived from (issuer, subject); the
# write side creates their Driver aggregate under that id the first time they act.
EXTERNAL_DRIVER_NAMESPACE = UUID("0b9b8f3e-5a43-4f0e-9a59-2f1c8a3a6d11")
# With several mapped roles (a user in two groups), the most capable wins.
_PRECEDENCE = (Role.ADMIN, Role.OPERATOR, Role.DRIVER)


class RemoteJwks:
    """A provider's published keys, fetched over HTTP with the caller's session and kept for a while."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        cache_seconds: float = 300.0,
        min_refresh_seconds: float = 30.0,
        timeout_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refresh_seconds = min_refresh_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()

    async def jwk(self, kid: str) -> dict[str, Any] | None:
        """The JWK with this kid, refreshing the set first when it is stale or lacks the kid."""
        if self._needs_refresh(kid):
            async with self._lock:
                if self._needs_refresh(kid):  # someone else may have refreshed while we waited
                    await self._refresh()
        return self._keys.get(kid)

    def _needs_refresh(self, kid: str) -> bool:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._cache_seconds:
            return self._attempted_at is None or now - self._attempted_at >= self._min_refresh_seconds
        if kid not in self._keys:
            return self._attempted_at is None or now - self._attempted_at >= self._min_refresh_seconds
        return False

    async def _refresh(self) -> None:
        self._attempted_at = self._clock()
        try:
            async with self._session.get(self._url, timeout=self._timeout) as response:
                response.raise_for_status()
                body = await response.content.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError("JWKS document too large")
            document = orjson.loads(body)
            keys = document.get("keys") if isinstance(document, dict) else None
            if not isinstance(keys, list):
                raise ValueError("no `keys` array")
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            _log.warning("cannot fetch JWKS from %s: %s", self._url, error)
            return
        self._keys = {
            jwk["kid"]: jwk
            for jwk in keys
            if isinstance(jwk, dict)
            and isinstance(jwk.get("kid"), str)
            and jwk.get("use", "sig") == "sig"
            and jwk.get("kty") in {"RSA", "EC"}  # never a symmetric ("oct") key
        }
        self._fetched_at = self._attempted_at


class ExternalIssuer:
    """A `TrustedIssuer` for one configured OIDC provider."""

    required_claims: Sequence[str] = ("exp", "iss", "aud", "sub")

    def __init__(self, config: ExternalIssuerConfig, session: aiohttp.ClientSession) -> None:
        self._config = config
        self.issuer = config.issuer
        self.audience = config.audience
        self.algorithms: Sequence[str] = config.algorithms
        self._jwks = RemoteJwks(
            session,
            config.jwks_url,
            cache_seconds=config.jwks_cache_seconds,
            min_refresh_seconds=config.jwks_min_refresh_seconds,
            timeout_seconds=config.http_timeout_seconds,
        )

    def check_header(self, header: Mapping[str, Any]) -> None:
        return (
            None  # providers differ (`JWT`, `at+jwt`, none); the issuer and audience checks carry the weight
        )

    async def key(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        data = await self._jwks.jwk(kid)
        if data is None:
            return None
        declared = data.get("alg")
        if declared is not None and declared != algorithm:
            return None
        try:
            return jwt.PyJWK(data, algorithm=algorithm)
        except jwt.PyJWTError:  # an RSA key named by an ES256 token, a malformed key, ...
            return None

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token has no valid subject")
        role = map_role(claim_value(claims, self._config.role_claim), self._config.role_map)
        if role is None:
            raise InvalidToken("the token carries no role this service recognises")
        company_id = None
        if role is Role.OPERATOR:
            company = claim_value(claims, self._config.company_claim) if self._config.company_claim else None
            try:
                company_id = UUID(company) if isinstance(company, str) else None
            except ValueError:
                company_id = None
            if company_id is None:
                raise InvalidToken("an operator token needs a company id")
        driver_id = external_driver_id(self.issuer, subject) if role is Role.DRIVER else None
        token_id = claims.get("jti")
        return Principal(
            subject=subject,
            role=role,
            issuer=self.issuer,
            company_id=company_id,
            driver_id=driver_id,
            token_id=token_id if isinstance(token_id, str) else None,
        )


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """`claims[name]` if present, else the dotted path (`realm_access.roles`), else None."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def map_role(value: Any, role_map: Mapping[str, Role]) -> Role | None:
    """Our role for a claim holding one name, a list of names, or a space-separated string of them."""
    if isinstance(value, str):
        names = value.split()
    elif isinstance(value, list):
        names = [item for item in value if isinstance(item, str)]
    else:
        return None
    mapped = {role_map[name] for name in names if name in role_map}
    return next((role for role in _PRECEDENCE if role in mapped), None)


def external_driver_id(issuer: str, subject: str) -> UUID:
    """The driver id of an externally authenticated driver: the same for every token of that user."""
    return uuid.uuid5(EXTERNAL_DRIVER_NAMESPACE, f"{issuer}\n{subject}")
