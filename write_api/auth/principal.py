"""Who is calling: the bearer token verified into a `Principal`; 401 without one, 403 for the wrong role."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from aiohttp import web

from write_api.access import Actor
from write_api.auth.errors import InvalidToken
from write_api.auth.roles import Role
from write_api.http.problems import problem_error, problem_type

REALM = "csms"
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)  # RFC 6750 §2.1 b64token


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. What they may touch is then decided by role and ownership (company, driver)."""

    subject: str  # the token's `sub`: our account id, or the external provider's user id
    role: Role
    issuer: str
    company_id: UUID | None = None  # operators: the one company they act for
    driver_id: UUID | None = None  # drivers: their Driver aggregate
    account_id: UUID | None = None  # set for our own accounts only
    token_id: str | None = None


class BearerVerifier(Protocol):
    async def verify(self, token: str) -> Principal: ...


TOKEN_VERIFIER = web.AppKey("token_verifier", BearerVerifier)


async def authenticate(request: web.Request) -> Principal:
    """The caller of `request`, from `Authorization: Bearer <token>`; raises a 401 problem otherwise.

    Looks the verifier up through the app chain (`config_dict`), so sub-apps inherit the parent's.
    """
    header = request.headers.get("Authorization")
    if header is None:
        raise _unauthorized("A bearer access token is required.", challenge=f'Bearer realm="{REALM}"')
    match = _BEARER.match(header)
    if match is None:
        raise _invalid_token("The Authorization header is not `Bearer <token>`.")
    try:
        return await request.config_dict[TOKEN_VERIFIER].verify(match[1])
    except InvalidToken as error:
        raise _invalid_token(str(error)) from None


async def authenticated_actor(request: web.Request) -> Actor:
    """The write side's `Actor` for the caller: an `ActorResolver` for `write_api.http.context.ACTOR`."""
    principal = await authenticate(request)
    return Actor(
        role=principal.role.value,
        account_id=principal.account_id,
        driver_id=principal.driver_id,
        company_id=principal.company_id,
    )


def require_role(principal: Principal, *roles: Role) -> None:
    """Raise a 403 problem unless the principal has one of `roles`."""
    if principal.role not in roles:
        allowed = ", ".join(role.value for role in roles)
        raise problem_error(
            403,
            "Forbidden",
            f"This action needs the role {allowed}; the caller is {principal.role.value}.",
            type_=problem_type("forbidden-role"),
        )


def _invalid_token(reason: str) -> web.HTTPException:
    # RFC 6750 §3: error_description is printable ASCII without `"` or `\`.
    description = "".join(c for c in reason if " " <= c <= "~" and c not in '"\\')
    challenge = f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
    return _unauthorized(reason, challenge=challenge)


def _unauthorized(detail: str, *, challenge: str) -> web.HTTPException:
    return problem_error(
        401,
        "Unauthorized",
        detail,
        type_=problem_type("unauthorized"),
        headers={"WWW-Authenticate": challenge},
    )
