"""Migrations: applied once, in order, even when several processes migrate the same database at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from csms.migrations import MigrationError, load_migrations, migrate


@pytest.fixture
async def empty_database(server_database_url: str) -> AsyncIterator[str]:
    name = f"csms_test_migrations_{uuid.uuid4().hex[:8]}"
    admin_url = urlunsplit(urlsplit(server_database_url)._replace(path="/postgres"))
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_database_url)._replace(path="/" + name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_concurrent_migrations_apply_each_file_once(empty_database: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database) for _ in range(4)))

    expected = [f"{m.version:04d}_{m.name}" for m in load_migrations()]
    assert sorted(results, key=len, reverse=True)[0] == expected
    assert sum(len(r) for r in results) == len(expected)  # the others found nothing to do
    connection = await asyncpg.connect(empty_database)
    try:
        rows = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    assert [r["version"] for r in rows] == [m.version for m in load_migrations()]


async def test_an_applied_migration_that_changed_is_refused(empty_database: str) -> None:
    await migrate(empty_database)
    connection = await asyncpg.connect(empty_database)
    try:
        await connection.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    finally:
        await connection.close()

    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(empty_database)
