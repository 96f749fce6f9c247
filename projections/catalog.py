"""Every projector this system runs, each paired with the store its read model lives in."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from projections.fleet_registry import FleetRegistry
from projections.postgres_target import PostgresTarget
from projections.redis_target import RedisTarget
from projections.runner import Target
from projections.session_history import SessionHistoryProjector
from projections.station_discovery import StationDiscoveryProjector
from projections.station_revenue import StationRevenue


def projection_targets(pool: asyncpg.Pool, redis: Redis, key_prefix: str) -> list[Target]:
    return [
        RedisTarget(StationDiscoveryProjector(), redis, key_prefix),
        PostgresTarget(SessionHistoryProjector(), pool),
        PostgresTarget(FleetRegistry(), pool),
        PostgresTarget(StationRevenue(), pool),
    ]
