"""The write side's directories: token holders and transactions, remembered once known (rows never change)."""

from __future__ import annotations

import uuid

import asyncpg

from csms.directories import IdTokenDirectory, TransactionDirectory


async def test_a_token_is_held_by_the_first_driver_to_claim_it_whatever_its_case(pool: asyncpg.Pool) -> None:
    tokens = IdTokenDirectory(pool)
    first, second = uuid.uuid4(), uuid.uuid4()
    token = f"card-{uuid.uuid4().hex[:12]}"

    assert await tokens.claim(token, first)
    assert await tokens.claim(token.upper(), first)  # claiming one's own token again is fine
    assert not await tokens.claim(token, second)
    assert not await IdTokenDirectory(pool).claim(token, second)  # another process learns it from the table
    assert await IdTokenDirectory(pool).owner(token.upper()) == first
    assert await tokens.owner(f"unknown-{uuid.uuid4().hex[:12]}") is None


async def test_a_known_holder_is_answered_without_a_read(pool: asyncpg.Pool) -> None:
    tokens = IdTokenDirectory(pool)
    driver = uuid.uuid4()
    token = f"CARD-{uuid.uuid4().hex[:12].upper()}"
    assert await tokens.claim(token, driver)
    fresh = IdTokenDirectory(pool)
    assert await fresh.owner(token) == driver
    # Rows never change in production; removing one here shows that neither directory reads it again.
    await pool.execute("DELETE FROM id_token_owners WHERE token = $1", token)

    assert await tokens.owner(token) == driver
    assert await fresh.owner(token) == driver
    assert not await fresh.claim(token, uuid.uuid4())
    assert await IdTokenDirectory(pool).owner(token) is None  # a directory that never saw it reads the table


async def test_a_transaction_allocated_here_is_found_without_a_read(pool: asyncpg.Pool) -> None:
    transactions = TransactionDirectory(pool)
    charger, session = uuid.uuid4(), uuid.uuid4()
    ref = await transactions.allocate_16(charger, f"start-{uuid.uuid4().hex}", session)
    linked = await transactions.link(charger, f"TX-{uuid.uuid4().hex[:8]}", uuid.uuid4())
    assert ref.created
    assert ref.session_id == session
    # Rows never change in production; removing them here shows that the readings' lookups need no read.
    await pool.execute("DELETE FROM charger_transactions WHERE charger_id = $1", charger)

    assert await transactions.find(charger, ref.transaction_id) == session
    assert await transactions.find(charger, linked.transaction_id) == linked.session_id
    assert await TransactionDirectory(pool).find(charger, ref.transaction_id) is None
