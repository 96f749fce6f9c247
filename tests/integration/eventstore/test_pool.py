"""The pool's connections: released without asyncpg's reset query, but never with a transaction left open."""

from __future__ import annotations

from csms.eventstore import create_pool


async def test_a_released_connection_is_not_reset_with_a_query(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            backend = await connection.fetchval("SELECT pg_backend_pid()")
            await connection.execute("SET application_name = 'left-by-the-last-user'")
        async with pool.acquire() as connection:
            # The same backend, its session setting untouched: no RESET ALL (nor the rest) ran on release.
            assert await connection.fetchval("SELECT pg_backend_pid()") == backend
            assert await connection.fetchval("SHOW application_name") == "left-by-the-last-user"
    finally:
        await pool.close()


async def test_a_transaction_left_open_is_rolled_back_on_release(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as connection:
            await connection.execute("CREATE TEMP TABLE IF NOT EXISTS scratch (n int)")
            await connection.execute("BEGIN")
            await connection.execute("INSERT INTO scratch VALUES (1)")
        async with pool.acquire() as connection:
            assert not connection.is_in_transaction()
            assert await connection.fetchval("SELECT count(*) FROM scratch") == 0
    finally:
        await pool.close()
