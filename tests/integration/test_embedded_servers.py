"""The embedded Postgres and Redis start from nothing, serve, share a data folder, and stop what they started.

Each test uses its own folder under the project's data folder, never /tmp: run as root, the Postgres server
opens read and traverse permissions on every parent of its data folder (see csms/embedded.py).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
from redis.asyncio import Redis

from csms.embedded import (
    Servers,
    embedded_postgres,
    embedded_redis,
    resolve_servers,
)
from csms.migrations import migrate
from csms.settings import Settings


@pytest.fixture
def folder(project_data_dir: Path) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="test-embedded-", dir=project_data_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class _Servers:
    """Enter and leave embedded servers off the event loop (starting one blocks for a moment)."""

    def __init__(self) -> None:
        self._stacks: list[ExitStack] = []

    async def enter(self, server: AbstractContextManager[str]) -> str:
        stack = ExitStack()
        url = await asyncio.to_thread(stack.enter_context, server)
        self._stacks.append(stack)
        return url

    async def leave_last(self) -> None:
        await asyncio.to_thread(self._stacks.pop().close)

    async def leave_all(self) -> None:
        while self._stacks:
            await self.leave_last()


@pytest.fixture
async def servers() -> AsyncIterator[_Servers]:
    entered = _Servers()
    try:
        yield entered
    finally:
        await entered.leave_all()


async def _postgres_round_trip(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TEMPORARY TABLE round_trip (note text)")
        await connection.execute("INSERT INTO round_trip VALUES ($1)", "hello")
        note: str = await connection.fetchval("SELECT note FROM round_trip")
        return note
    finally:
        await connection.close()


async def _redis_round_trip(url: str) -> object:
    client = Redis.from_url(url)
    try:
        await client.set("round-trip", "hello")
        return await client.get("round-trip")
    finally:
        await client.aclose()


async def _redis_answers(url: str) -> bool:
    client = Redis.from_url(url)
    try:
        return bool(await client.ping())
    except Exception:  # refused, socket gone: either way, not answering
        return False
    finally:
        await client.aclose()


def _postmaster_pid(folder: Path) -> int:
    return int((folder / "postgres" / "pgdata" / "postmaster.pid").read_text().splitlines()[0])


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.mark.embedded
async def test_embedded_servers_start_migrate_serve_and_stop(folder: Path, servers: _Servers) -> None:
    database_url = await servers.enter(embedded_postgres(folder / "postgres"))
    redis_url = await servers.enter(embedded_redis(folder / "redis"))
    postmaster = _postmaster_pid(folder)
    redis_pid = int((folder / "redis" / "redis.pid").read_text())

    assert await migrate(database_url), "a fresh database has migrations to apply"
    assert await migrate(database_url) == []
    assert await _postgres_round_trip(database_url) == "hello"
    assert await _redis_round_trip(redis_url) == b"hello"

    await servers.leave_all()

    assert not _running(postmaster)
    assert not _running(redis_pid)
    assert not await _redis_answers(redis_url)


@pytest.mark.embedded
async def test_a_shared_server_stops_only_when_its_last_user_leaves(folder: Path, servers: _Servers) -> None:
    first_database_url = await servers.enter(embedded_postgres(folder / "postgres"))
    first_redis_url = await servers.enter(embedded_redis(folder / "redis"))
    second_database_url = await servers.enter(embedded_postgres(folder / "postgres"))
    second_redis_url = await servers.enter(embedded_redis(folder / "redis"))
    assert (second_database_url, second_redis_url) == (first_database_url, first_redis_url)
    postmaster = _postmaster_pid(folder)

    await servers.leave_last()  # the second Redis user
    await servers.leave_last()  # the second Postgres user
    assert await _postgres_round_trip(first_database_url) == "hello"
    assert await _redis_round_trip(first_redis_url) == b"hello"

    await servers.leave_all()
    assert not _running(postmaster)
    assert not await _redis_answers(first_redis_url)


@pytest.mark.embedded
async def test_a_user_that_died_without_leaving_does_not_keep_the_server_running(
    folder: Path, servers: _Servers
) -> None:
    redis_folder = folder / "redis"
    redis_folder.mkdir()
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    (redis_folder / "users.json").write_text(f'["{dead.pid}:crashed"]')

    url = await servers.enter(embedded_redis(redis_folder))
    await servers.leave_all()

    assert not await _redis_answers(url)


def test_configured_servers_are_used_as_they_are(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://csms@db.example:5432/csms",
        redis_url="redis://cache.example:6379/0",
        data_dir=tmp_path,  # nothing embedded may start, so nothing is written here
    )
    with resolve_servers(settings) as servers:
        assert servers == Servers("postgresql://csms@db.example:5432/csms", "redis://cache.example:6379/0")
        assert urlsplit(servers.database_url).hostname == "db.example"
    assert list(tmp_path.iterdir()) == []
