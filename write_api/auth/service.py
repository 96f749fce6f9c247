"""The auth use cases (register, login, refresh, logout) over the stores, the throttle and the issuer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from csms.identity.signing_keys import SigningKeys
from csms.identity.verification import TokenVerifier
from write_api.auth.access_tokens import AccessTokenIssuer
from write_api.auth.accounts import Account, Accounts
from write_api.auth.errors import InvalidCredentials, InvalidRefreshToken
from write_api.auth.refresh_tokens import RefreshTokens
from write_api.auth.throttle import LoginThrottle


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int  # the access token's lifetime, seconds


@dataclass(frozen=True, slots=True)
class Registration:
    account_id: UUID
    driver_id: UUID


class AuthService:
    """Everything identity: routes call the use cases; the write API also uses `accounts` and `verifier`."""

    def __init__(
        self,
        accounts: Accounts,
        refresh_tokens: RefreshTokens,
        access_tokens: AccessTokenIssuer,
        verifier: TokenVerifier,
        throttle: LoginThrottle,
        keys: SigningKeys,
    ) -> None:
        self.accounts = accounts
        self.refresh_tokens = refresh_tokens
        self.verifier = verifier
        self._access_tokens = access_tokens
        self._throttle = throttle
        self._keys = keys

    async def register_driver(self, email: str, password: str, display_name: str) -> Registration:
        account = await self.accounts.register_driver(email, password, display_name)
        assert account.driver_id is not None
        return Registration(account.id, account.driver_id)

    async def login(self, email: str, password: str, client_address: str) -> TokenPair:
        """Tokens for the right password, else InvalidCredentials (unknown email, wrong password or disabled
        account alike); LoginThrottled once the account or the address has used up its attempts.
        """
        await self._throttle.attempt(email, client_address)
        account = await self.accounts.authenticate(email, password)
        if account is None:
            raise InvalidCredentials("wrong email or password")
        await self._throttle.succeeded(email, client_address)
        refresh = await self.refresh_tokens.issue(account.id)
        return self._pair(account, refresh.token)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for a valid refresh token, which is spent.

        The account is re-read, so a changed role or a disabled account takes effect at the next refresh.
        """
        successor = await self.refresh_tokens.rotate(refresh_token)
        account = await self.accounts.get(successor.account_id)
        if account is None or account.disabled:
            await self.refresh_tokens.revoke_family(successor.family_id)
            raise InvalidRefreshToken("the account may no longer log in")
        return self._pair(account, successor.token)

    async def logout(self, refresh_token: str) -> None:
        """Revoke the refresh token's family; unknown tokens are ignored (logging out is idempotent)."""
        await self.refresh_tokens.revoke(refresh_token)

    def jwks(self) -> dict[str, Any]:
        return dict(self._keys.jwks())

    def _pair(self, account: Account, refresh_token: str) -> TokenPair:
        access = self._access_tokens.issue(account)
        return TokenPair(access.token, refresh_token, access.expires_in)
