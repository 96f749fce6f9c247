"""Test infrastructure: every run gets its own fresh Postgres database and Redis key prefix.

The servers are `CSMS_DATABASE_URL` / `CSMS_REDIS_URL` when set (CI), otherwise embedded ones started once per
session under the project's data folder (shared with a running `csms dev`, which they do not disturb: the run
works in its own database and under its own key prefix, and never flushes anything).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from csms.connectivity import DependencyUnavailable, wait_for_servers
from csms.embedded import resolve_database, resolve_redis
from csms.localstripe import free_loopback_port, running_localstripe
from csms.migrations import migrate
from csms.settings import Settings


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def test_settings(pytestconfig: pytest.Config) -> Settings:
    """Settings from the environment, with a relative data folder anchored at the project root."""
    settings = Settings.from_env()
    if settings.data_dir.is_absolute():
        return settings
    return dataclasses.replace(settings, data_dir=pytestconfig.rootpath / settings.data_dir)


@pytest.fixture(scope="session")
def project_data_dir(test_settings: Settings) -> Path:
    """The data folder (`.data/` under the project unless CSMS_DATA_DIR says otherwise)."""
    test_settings.data_dir.mkdir(parents=True, exist_ok=True)
    return test_settings.data_dir


async def _resolve(
    resolve: Callable[[Settings], AbstractContextManager[str]], settings: Settings, stack: ExitStack
) -> str:
    # Starting an embedded server blocks for a moment: do it off the event loop.
    return await asyncio.to_thread(stack.enter_context, resolve(settings))


@pytest.fixture(scope="session")
async def server_database_url(test_settings: Settings) -> AsyncIterator[str]:
    """A Postgres server to create test databases on: CSMS_DATABASE_URL's, or an embedded one."""
    with ExitStack() as stack:
        url = await _resolve(resolve_database, test_settings, stack)
        try:
            await wait_for_servers(database_url=url, retry_seconds=test_settings.startup_retry_seconds)
        except DependencyUnavailable as error:
            pytest.fail(str(error), pytrace=False)
        yield url
        await asyncio.to_thread(stack.close)


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
async def database_url(server_database_url: str, run_id: str) -> AsyncIterator[str]:
    """A database created for this test run, migrated, and dropped at the end."""
    name = f"csms_test_{run_id}"
    admin = await asyncpg.connect(_with_database(server_database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(server_database_url, name)
    await migrate(url)
    yield url
    admin = await asyncpg.connect(_with_database(server_database_url, "postgres"))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=20)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def redis_key_prefix(run_id: str) -> str:
    """Every Redis key a test writes starts with this, unique to the run."""
    return f"csms-test-{run_id}:"


@pytest.fixture(scope="session")
async def redis_url(test_settings: Settings) -> AsyncIterator[str]:
    """A Redis server: CSMS_REDIS_URL's, or an embedded one. Shared: write only under `redis_key_prefix`."""
    with ExitStack() as stack:
        url = await _resolve(resolve_redis, test_settings, stack)
        try:
            await wait_for_servers(redis_url=url, retry_seconds=test_settings.startup_retry_seconds)
        except DependencyUnavailable as error:
            pytest.fail(str(error), pytrace=False)
        yield url
        await asyncio.to_thread(stack.close)


@pytest.fixture
async def redis(redis_url: str, redis_key_prefix: str) -> AsyncIterator[Redis]:
    """A client on the test Redis; every key under this run's prefix is deleted after each test.

    The server may be shared (CI, a developer's `csms dev`): nothing is ever flushed, only this run's keys go.
    """
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        pattern = _glob_escape(redis_key_prefix) + "*"
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
        await client.aclose()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """localstripe (a Stripe-compatible server) for the run: a subprocess on a free loopback port."""
    with running_localstripe(free_loopback_port()) as url:
        yield url
