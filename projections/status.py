"""How far each projection has got: position, lag behind the log, and which instance is applying events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from csms.eventstore.recorder import head_position
from projections.runner import Target


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    kind: str
    generation: int
    rebuilding: int | None
    position: int
    head: int
    lag_events: int  # events in the log after the position (of any topic: an upper bound on the work left)
    lag_seconds: float  # age of the oldest event of its topics not yet applied; 0 when caught up
    holder: str | None
    heartbeat_age_seconds: float | None

    @property
    def state(self) -> str:
        if self.rebuilding is not None:
            return f"rebuilding into generation {self.rebuilding}"
        if self.holder is None or self.heartbeat_age_seconds is None:
            return "never run"
        if self.heartbeat_age_seconds > 15:  # three missed heartbeats
            return "stopped"
        return "running"


async def projection_status(pool: asyncpg.Pool, targets: Sequence[Target]) -> list[ProjectionStatus]:
    head = await head_position(pool)
    statuses = []
    for target in targets:
        generation = await target.active_generation()
        position = await target.position(generation)
        row = await pool.fetchrow(
            "SELECT holder, extract(epoch FROM now() - heartbeat_at) AS heartbeat_age"
            " FROM projections WHERE name = $1",
            target.name,
        )
        lag = await pool.fetchval(
            "SELECT extract(epoch FROM now() - recorded_at) FROM events"
            " WHERE position > $1 AND topic = ANY($2::text[]) ORDER BY position LIMIT 1",
            position,
            sorted(target.projector.topics),
        )
        statuses.append(
            ProjectionStatus(
                name=target.name,
                kind=target.kind,
                generation=generation,
                rebuilding=await target.rebuilding_generation(),
                position=position,
                head=head,
                lag_events=max(0, head - position),
                lag_seconds=_seconds(lag) or 0.0,
                holder=row["holder"] if row else None,
                heartbeat_age_seconds=_seconds(row["heartbeat_age"]) if row else None,
            )
        )
    return statuses


def _seconds(value: object) -> float | None:
    return None if value is None else float(str(value))
