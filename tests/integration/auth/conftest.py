"""The auth endpoints over real HTTP on the run's Postgres and Redis, with tiny routes that need a role."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.identity.roles import Role
from csms.identity.signing_keys import SigningKeys, generate_signing_key
from csms.web.bearer import authenticate, require_role
from write_api.auth.app import create_auth_app
from write_api.auth.config import Argon2Parameters, AuthConfig
from write_api.auth.routes import AUTH_SERVICE
from write_api.auth.service import AuthService

# Cheap enough for tests (production defaults meet OWASP; see Argon2Parameters).
FAST_ARGON2 = Argon2Parameters(time_cost=1, memory_kib=1024, parallelism=1)
PASSWORD = "correct horse battery staple"


class Clock:
    """A clock tests can move; it starts at the real time so tokens it stamps are valid now."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclasses.dataclass
class AuthServer:
    client: TestClient[web.Request, web.Application]
    service: AuthService
    keys: SigningKeys
    config: AuthConfig

    async def post(self, path: str, body: Any, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.client.post(path, json=body, **kwargs)

    async def register(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        email = email or f"driver-{uuid.uuid4().hex[:10]}@example.com"
        response = await self.post(
            "/auth/register", {"email": email, "password": password, "displayName": "Test Driver"}
        )
        assert response.status == 201, await response.text()
        body: dict[str, Any] = await response.json()
        return {**body, "email": email}

    async def login(self, email: str, password: str = PASSWORD, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.post("/auth/login", {"email": email, "password": password}, **kwargs)

    async def tokens(self, email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await self.login(email, password)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body

    async def whoami(self, access_token: str, path: str = "/test/whoami") -> aiohttp.ClientResponse:
        return await self.client.get(path, headers={"Authorization": f"Bearer {access_token}"})


class AuthServerFactory(Protocol):
    def __call__(
        self,
        config: AuthConfig | None = None,
        *,
        http: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Awaitable[AuthServer]: ...


async def whoami(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return web.json_response(
        {
            "subject": principal.subject,
            "role": principal.role.value,
            "issuer": principal.issuer,
            "accountId": None if principal.account_id is None else str(principal.account_id),
            "companyId": None if principal.company_id is None else str(principal.company_id),
            "driverId": None if principal.driver_id is None else str(principal.driver_id),
        }
    )


async def admin_only(request: web.Request) -> web.Response:
    require_role(await authenticate(request), Role.ADMIN)
    return web.json_response({"ok": True})


async def operator_only(request: web.Request) -> web.Response:
    require_role(await authenticate(request), Role.OPERATOR, Role.ADMIN)
    return web.json_response({"ok": True})


@pytest.fixture
async def event_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool with the event store's JSON codecs (the `pool` fixture has none)."""
    pool = await create_pool(database_url, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
async def repository(event_pool: asyncpg.Pool, database_url: str) -> AsyncIterator[Repository]:
    store = EventStore(event_pool, database_url)
    yield Repository(store, EventCodec(EVENT_TYPES))
    await store.close()


@pytest.fixture
def signing_keys() -> SigningKeys:
    return SigningKeys.of(generate_signing_key())


@pytest.fixture
def auth_config(tmp_path: Path, redis_key_prefix: str) -> AuthConfig:
    return AuthConfig(argon2=FAST_ARGON2, data_dir=tmp_path, redis_key_prefix=redis_key_prefix)


@pytest.fixture
async def make_auth_server(
    event_pool: asyncpg.Pool,
    redis: Redis,
    repository: Repository,
    signing_keys: SigningKeys,
    auth_config: AuthConfig,
) -> AsyncIterator[AuthServerFactory]:
    """Start auth servers (with the test routes) on loopback ports; all stopped after the test."""
    async with AsyncExitStack() as stack:

        async def make(
            config: AuthConfig | None = None,
            *,
            http: aiohttp.ClientSession | None = None,
            clock: Callable[[], datetime] | None = None,
        ) -> AuthServer:
            config = config or auth_config
            app = create_auth_app(
                config,
                event_pool,
                redis,
                repository,
                http=http,
                keys=signing_keys,
                clock=clock or (lambda: datetime.now(UTC)),
            )
            app.router.add_get("/test/whoami", whoami)
            app.router.add_get("/test/admin-only", admin_only)
            app.router.add_get("/test/operator-only", operator_only)
            client = await stack.enter_async_context(TestClient(TestServer(app)))
            return AuthServer(client, app[AUTH_SERVICE], signing_keys, config)

        yield make


@pytest.fixture
async def auth_server(make_auth_server: AuthServerFactory) -> AuthServer:
    return await make_auth_server()
