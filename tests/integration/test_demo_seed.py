"""`csms dev`'s demo data: recorded once, passwords handed out once and stored only as hashes."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import asyncpg

from csms.credentials import verify_charger_password
from csms.demo import DEMO_COMPANY_ID, seed_demo
from csms.domain import Charger, Company, Station
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool


async def test_demo_seed_is_idempotent_and_hands_out_passwords_once(
    database_url: str, tmp_path: Path
) -> None:
    credentials = tmp_path / "demo-chargers.txt"

    created = await seed_demo(database_url, credentials)
    again = await seed_demo(database_url, tmp_path / "second.txt")

    assert created == ["DEMO-CP-1", "DEMO-CP-2", "DEMO-CP-3", "DEMO-CP-4", "DEMO-CP-5"]
    assert again == []
    assert not (tmp_path / "second.txt").exists()
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    lines = [line.split() for line in credentials.read_text().splitlines()]
    assert [charger_id for charger_id, _ in lines] == created
    assert all(re.fullmatch(r"[0-9a-f]{40}", password) for _, password in lines)

    pool = await create_pool(database_url)
    store = EventStore(pool, database_url)
    try:
        repository = Repository(store, EventCodec(EVENT_TYPES))
        company = await repository.get(DEMO_COMPANY_ID, Company)
        assert company.is_active
        rows = await pool.fetch("SELECT DISTINCT stream_id FROM events WHERE topic = 'Charger.Registered'")
        chargers = [await repository.get(row["stream_id"], Charger) for row in rows]
        passwords = dict(lines)
        demo = [c for c in chargers if c.charge_point_id in passwords]
        assert len(demo) == 5
        for charger in demo:
            assert passwords[charger.charge_point_id] not in charger.password_hash
            assert verify_charger_password(passwords[charger.charge_point_id], charger.password_hash)
            station = await repository.get(charger.station_id, Station)
            assert station.published
            assert station.company_id == DEMO_COMPANY_ID
    finally:
        await store.close()
        await pool.close()


async def test_nothing_is_recorded_twice(pool: asyncpg.Pool, database_url: str, tmp_path: Path) -> None:
    await seed_demo(database_url, tmp_path / "a.txt")
    before = await pool.fetchval("SELECT count(*) FROM events")
    await seed_demo(database_url, tmp_path / "b.txt")
    assert await pool.fetchval("SELECT count(*) FROM events") == before
