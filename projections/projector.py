"""What a projector is: a name, the topics it handles, and an idempotent apply into one kind of read model.

Two kinds exist because the two stores make "exactly once" differently. A Postgres projector writes its rows
in the runner's transaction, which also records the position: both commit or neither does. A Redis projector
queues its writes on a MULTI/EXEC pipeline that the runner finishes with the position, and reads whatever it
needs through the plain client first; the runner never hands it an event at or below the stored position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from csms.eventstore.recorder import Connection


@dataclass(frozen=True, slots=True)
class ProjectedEvent:
    """One event of the log as a projector sees it: decoded to its domain class, upcast, with its position."""

    position: int
    recorded_at: datetime
    stream_id: UUID
    stream_version: int
    topic: str
    event: Any  # the domain event (`ChargingSession.Started` ...), upcast to the current schema
    metadata: Mapping[str, Any]


class Tables:
    """The physical table names of one generation of a Postgres read model, by the names readers use.

    Readers query a view named after the table (`session_history`); the projector writes the generation's
    table behind it (`session_history__g3`), so a rebuild can fill a fresh one and swap the view.
    """

    def __init__(self, names: Sequence[str], generation: int) -> None:
        self.generation = generation
        self._physical = {name: f"{name}__g{generation}" for name in names}

    def __getitem__(self, name: str) -> str:
        return self._physical[name]

    def items(self) -> list[tuple[str, str]]:
        return list(self._physical.items())

    def physical(self) -> list[str]:
        return list(self._physical.values())


class PostgresProjector(Protocol):
    """A read model in Postgres tables."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> frozenset[str]: ...

    @property
    def tables(self) -> Mapping[str, Sequence[str]]:
        """DDL per table: statements with `{table}` where the generation's table name goes.

        The first statement creates the table; the rest (indexes) follow it. Unnamed indexes only, so two
        generations can live side by side.
        """

    async def apply(self, connection: Connection, tables: Tables, events: Sequence[ProjectedEvent]) -> None:
        """Apply `events` (in log order) inside the runner's transaction."""


class RedisView:
    """A Redis projector's handle on one generation: keys under its prefix, reads now, writes at EXEC."""

    def __init__(self, redis: Redis, pipeline: Pipeline, prefix: str) -> None:
        self.redis = redis  # for reads; they see the state before this batch's writes
        self.tx = pipeline  # queue writes here: they run atomically with the new position
        self.prefix = prefix

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(part) for part in parts)


class RedisProjector(Protocol):
    """A read model in Redis keys."""

    @property
    def name(self) -> str: ...

    @property
    def topics(self) -> frozenset[str]: ...

    async def apply(self, view: RedisView, events: Sequence[ProjectedEvent]) -> None:
        """Queue the writes for `events` (in log order) on `view.tx`.

        Reads through `view.redis` do not see writes queued earlier in the same call: a projector that needs
        them keeps them in a local dict for the batch.
        """


Projector = PostgresProjector | RedisProjector
