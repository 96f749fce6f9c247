"""Why an auth operation was refused, in terms the routes map to problem responses (no HTTP codes here)."""

from __future__ import annotations

from collections.abc import Sequence

from csms.web.problems import FieldError


class AuthError(Exception):
    """Base of every refusal the auth service explains to its caller."""


class InvalidInput(AuthError, ValueError):
    """New account data breaks a rule; `errors` name the fields (as the API spells them) and why."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.detail}" for e in errors))
        self.errors = tuple(errors)


class DuplicateEmail(AuthError):
    """An account with this email already exists."""

    def __init__(self, email: str) -> None:
        super().__init__(f"an account with email {email} already exists")
        self.email = email


class UnknownCompany(AuthError):
    """An operator account names a company that does not exist."""


class InvalidCredentials(AuthError):
    """Wrong email or password, or a disabled account: deliberately one error for all three."""


class LoginThrottled(AuthError):
    """Too many failed logins for this account or from this address; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s")
        self.retry_after = retry_after


class InvalidRefreshToken(AuthError):
    """The refresh token is unknown, expired, revoked or already used."""
