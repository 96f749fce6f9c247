"""The auth endpoints: `/auth/{register,login,refresh,logout}` and `/.well-known/jwks.json`.

Handlers only parse, call `AuthService` and map its answer (camelCase JSON) or its refusal (a problem).
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web

from csms.web.bearer import REALM, TOKEN_VERIFIER
from csms.web.client_address import IPNetwork, client_address
from csms.web.problems import problem_error, problem_type
from write_api.auth.errors import (
    DuplicateEmail,
    InvalidCredentials,
    InvalidInput,
    InvalidRefreshToken,
    LoginThrottled,
)
from write_api.auth.service import AuthService, TokenPair
from write_api.http.json_body import Fields, read_json_object, unprocessable

AUTH_SERVICE = web.AppKey("auth_service", AuthService)
TRUSTED_PROXIES: web.AppKey[Sequence[IPNetwork]] = web.AppKey("auth_trusted_proxies")

_EMAIL_MAX = 254
_PASSWORD_MAX = 1024  # long enough for any password we accept (128 after NFKC); stops absurd bodies early
_NAME_MAX = 1000
_TOKEN_MAX = 1024
_NO_STORE = {"Cache-Control": "no-store"}  # RFC 6749 §5.1: responses carrying tokens are never cached


def add_auth_routes(
    app: web.Application, service: AuthService, *, trusted_proxies: Sequence[IPNetwork] = ()
) -> None:
    """Mount the auth endpoints on `app` and make `authenticate()` work in every handler below it."""
    app[AUTH_SERVICE] = service
    app[TOKEN_VERIFIER] = service.verifier
    app[TRUSTED_PROXIES] = tuple(trusted_proxies)
    app.router.add_post("/auth/register", register)
    app.router.add_post("/auth/login", login)
    app.router.add_post("/auth/refresh", refresh)
    app.router.add_post("/auth/logout", logout)
    app.router.add_get("/.well-known/jwks.json", jwks)


async def register(request: web.Request) -> web.Response:
    """A driver signs up: 201 {accountId, driverId}; 422 naming the fields at fault; 409 for a taken email."""
    fields = Fields(await read_json_object(request))
    email = fields.string("email", max_length=_EMAIL_MAX)
    password = fields.string("password", max_length=_PASSWORD_MAX)
    display_name = fields.string("displayName", max_length=_NAME_MAX)
    fields.check()
    try:
        registration = await request.config_dict[AUTH_SERVICE].register_driver(email, password, display_name)
    except InvalidInput as error:
        raise unprocessable(list(error.errors)) from None
    except DuplicateEmail:
        raise problem_error(
            409,
            "Email already registered",
            "An account with this email already exists.",
            type_=problem_type("email-taken"),
            field="email",
        ) from None
    body = {"accountId": str(registration.account_id), "driverId": str(registration.driver_id)}
    return web.json_response(body, status=201)


async def login(request: web.Request) -> web.Response:
    """{email, password} → 200 with a token pair; 401 for bad credentials; 429 + Retry-After if throttled."""
    fields = Fields(await read_json_object(request))
    email = fields.string("email", max_length=_EMAIL_MAX)
    password = fields.string("password", max_length=_PASSWORD_MAX)
    fields.check()
    address = client_address(request, request.config_dict[TRUSTED_PROXIES])
    try:
        pair = await request.config_dict[AUTH_SERVICE].login(email, password, address)
    except LoginThrottled as error:
        raise problem_error(
            429,
            "Too many login attempts",
            f"Too many failed logins for this account or from this address; retry in {error.retry_after} s.",
            type_=problem_type("login-throttled"),
            headers={"Retry-After": str(error.retry_after)},
            extensions={"retryAfter": error.retry_after},
        ) from None
    except InvalidCredentials:
        raise problem_error(
            401,
            "Invalid credentials",
            "The email or password is wrong.",
            type_=problem_type("invalid-credentials"),
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        ) from None
    return _tokens(pair)


async def refresh(request: web.Request) -> web.Response:
    """{refreshToken} → a new pair; the token presented is spent. 401 if it is unknown, expired or spent."""
    fields = Fields(await read_json_object(request))
    token = fields.string("refreshToken", max_length=_TOKEN_MAX)
    fields.check()
    try:
        pair = await request.config_dict[AUTH_SERVICE].refresh(token)
    except InvalidRefreshToken as error:
        raise problem_error(
            401,
            "Invalid refresh token",
            f"{str(error).capitalize()}; log in again.",
            type_=problem_type("invalid-refresh-token"),
            field="refreshToken",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        ) from None
    return _tokens(pair)


async def logout(request: web.Request) -> web.Response:
    """{refreshToken} → 204; the token's whole family is revoked (also 204 for a token we do not know)."""
    fields = Fields(await read_json_object(request))
    token = fields.string("refreshToken", max_length=_TOKEN_MAX)
    fields.check()
    await request.config_dict[AUTH_SERVICE].logout(token)
    return web.Response(status=204)


async def jwks(request: web.Request) -> web.Response:
    """Our public signing keys, for anyone verifying our access tokens without asking us."""
    return web.json_response(
        request.config_dict[AUTH_SERVICE].jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


def _tokens(pair: TokenPair) -> web.Response:
    body = {
        "accessToken": pair.access_token,
        "refreshToken": pair.refresh_token,
        "tokenType": "Bearer",
        "expiresIn": pair.expires_in,
    }
    return web.json_response(body, headers=_NO_STORE)
