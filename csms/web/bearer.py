"""Bearer authentication shared by every API: the caller as a `Principal`, else 401; 403 for a wrong role."""

from __future__ import annotations

import re
from typing import Protocol

from aiohttp import web

from csms.identity.errors import InvalidToken
from csms.identity.principal import Principal
from csms.identity.roles import Role
from csms.web.problems import problem_error, problem_type

REALM = "csms"
_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)  # RFC 6750 §2.1 b64token


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
