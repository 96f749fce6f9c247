"""Every projector this system runs, each paired with the store its read model lives in."""

from __future__ import annotations

import asyncpg
from redis.asyncio import Redis

from projections.fleet_registry import FleetRegistry
from projections.postgres_target import PostgresTarget
from projections.runner import Target
from projections.session_history import SessionHistoryProjector
from projections.station_revenue import StationRevenue


def projection_targets(pool: asyncpg.Pool, redis: Redis, key_prefix: str) -> list[Target]:
    return [
        PostgresTarget(SessionHistoryProjector(), pool),
        PostgresTarget(FleetRegistry(), pool),
        PostgresTarget(StationRevenue(), pool),
    ]
