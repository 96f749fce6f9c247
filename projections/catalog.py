"""Every projector this system runs, each paired with the store its read model lives in."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from projections.runner import Target


def projection_targets(pool: asyncpg.Pool, redis: Redis, key_prefix: str) -> list[Target]:
    return []
