"""Demo data for `csms dev`: one company with stations and chargers, so a first run shows a working system."""

from __future__ import annotations


async def seed_demo(database_url: str) -> None:
    """Record the demo company, its stations and chargers in the event store at `database_url`.

    Idempotent: `csms dev` calls it on every start, so it records nothing when the demo company exists.
    """
