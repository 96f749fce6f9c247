"""How far a read model has got, for readers: the read API waits on it for read-your-writes."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from redis.asyncio import Redis

from projections.redis_target import generation_prefix


async def postgres_position(pool: asyncpg.Pool, name: str) -> int:
    """The position of the generation serving reads (0 before the projector first ran)."""
    value = await pool.fetchval(
        """
        SELECT t.position FROM projections p
        JOIN tracking t ON t.consumer = 'projection:' || p.name || ':g' || p.generation
        WHERE p.name = $1
        """,
        name,
    )
    return 0 if value is None else int(value)


async def redis_position(redis: Redis, key_prefix: str, name: str) -> int:
    generation = await redis.get(f"{key_prefix}rm:{name}:active")
    value = await redis.get(generation_prefix(key_prefix, name, int(generation or 1)) + "position")
    return 0 if value is None else int(value)


async def lag_seconds(pool: asyncpg.Pool, position: int, topics: Iterable[str]) -> float:
    """Age of the oldest event of `topics` after `position` (0 when there is none): how stale the model is."""
    age = await pool.fetchval(
        "SELECT extract(epoch FROM now() - recorded_at) FROM events"
        " WHERE position > $1 AND topic = ANY($2::text[]) ORDER BY position LIMIT 1",
        position,
        sorted(topics),
    )
    return 0.0 if age is None else float(age)
