"""Access tokens we sign for our own accounts: short-lived EdDSA JWTs that `csms.identity` verifies."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from csms.identity.signing_keys import ALGORITHM, SigningKeys
from csms.identity.verification import ACCESS_TOKEN_TYPE
from write_api.auth.accounts import Account


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int  # seconds
    token_id: str


class AccessTokenIssuer:
    """Signs access tokens for our accounts with the current signing key."""

    def __init__(
        self,
        keys: SigningKeys,
        *,
        issuer: str,
        audience: str,
        ttl: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._ttl = ttl
        self._clock = clock

    def issue(self, account: Account) -> AccessToken:
        now = self._clock()
        token_id = uuid.uuid4().hex
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(account.id),
            "role": account.role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self._ttl).timestamp()),
            "jti": token_id,
        }
        if account.company_id is not None:
            claims["company_id"] = str(account.company_id)
        if account.driver_id is not None:
            claims["driver_id"] = str(account.driver_id)
        headers = {"kid": self._keys.kid, "typ": ACCESS_TOKEN_TYPE}
        token = jwt.encode(claims, self._keys.private_key, algorithm=ALGORITHM, headers=headers)
        return AccessToken(token, int(self._ttl.total_seconds()), token_id)
