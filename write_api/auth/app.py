"""Assembling the auth service from clients the caller owns, and mounting it on an aiohttp app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from csms.eventstore import Repository
from csms.identity.signing_keys import SigningKeys, load_signing_keys
from csms.identity.verifier import build_token_verifier
from csms.web.client_address import parse_networks
from csms.web.problems import problem_middleware
from csms.web.request_id import echo_request_id, request_id_middleware
from write_api.auth.access_tokens import AccessTokenIssuer
from write_api.auth.accounts import Accounts
from write_api.auth.config import AuthConfig
from write_api.auth.passwords import PasswordHasher
from write_api.auth.refresh_tokens import RefreshTokens
from write_api.auth.routes import add_auth_routes
from write_api.auth.service import AuthService
from write_api.auth.throttle import LoginThrottle, ThrottleLimits


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_auth_service(
    config: AuthConfig,
    *,
    pool: asyncpg.Pool,
    redis: Redis,
    repository: Repository,
    http: aiohttp.ClientSession | None = None,
    keys: SigningKeys | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> AuthService:
    """The service on the caller's pool (with the event store's JSON codecs), Redis client and repository.

    `http` is needed only with external issuers (to fetch their JWKS). `keys` default to the configured key
    file, or the development key under the data dir (reading it is a small blocking file read: call this at
    start-up, not per request).
    """
    if config.external_issuers and http is None:  # checked before a development key file is written
        raise ValueError("external issuers need an aiohttp ClientSession to fetch their JWKS")
    if keys is None:
        keys = load_signing_keys(config.signing_key_file, config.data_dir, config.verification_key_files)
    verifier = build_token_verifier(
        accept_local_tokens=config.accept_local_tokens,
        issuer=config.issuer,
        audience=config.audience,
        keys=keys,
        external_issuers=config.external_issuers,
        http=http,
        leeway_seconds=config.leeway_seconds,
    )
    hasher = PasswordHasher(config.argon2, max_concurrency=config.max_concurrent_hashes)
    throttle_limits = ThrottleLimits(
        max_per_account=config.login_max_failures_per_account,
        max_per_address=config.login_max_failures_per_address,
        window_seconds=config.login_window_seconds,
    )
    return AuthService(
        accounts=Accounts(pool, hasher, repository, clock),
        refresh_tokens=RefreshTokens(
            pool, ttl=timedelta(seconds=config.refresh_token_ttl_seconds), clock=clock
        ),
        access_tokens=AccessTokenIssuer(
            keys,
            issuer=config.issuer,
            audience=config.audience,
            ttl=timedelta(seconds=config.access_token_ttl_seconds),
            clock=clock,
        ),
        verifier=verifier,
        throttle=LoginThrottle(redis, config.redis_key_prefix, throttle_limits),
        keys=keys,
    )


def mount_auth(app: web.Application, config: AuthConfig, service: AuthService) -> None:
    """Add the auth routes to `app` (the write API's), trusting the proxies `config` names."""
    add_auth_routes(app, service, trusted_proxies=parse_networks(config.trusted_proxies))


def create_auth_app(
    config: AuthConfig,
    pool: asyncpg.Pool,
    redis: Redis,
    repository: Repository,
    *,
    http: aiohttp.ClientSession | None = None,
    keys: SigningKeys | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> web.Application:
    """A stand-alone app with only the auth endpoints, every error a problem (tests, a separate role)."""
    service = build_auth_service(
        config, pool=pool, redis=redis, repository=repository, http=http, keys=keys, clock=clock
    )
    app = web.Application(middlewares=[request_id_middleware, problem_middleware])
    app.on_response_prepare.append(echo_request_id)
    mount_auth(app, config, service)
    return app
