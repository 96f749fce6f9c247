"""Where a Postgres projector's read model lives: generation tables behind stable views.

Readers query views named after the tables. A generation's rows and its tracking position commit together, and
each batch first takes the registry row `FOR SHARE`: a swap (`UPDATE ... generation`) waits for the batch in
flight, and the batch after it sees the new generation and moves over. So exactly one generation is written
by the active instance, and a rebuild writes only the generation that is not yet serving.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from csms.eventstore.recorder import Connection, load_tracking, save_tracking
from projections.projector import PostgresProjector, ProjectedEvent, Tables


def tracking_consumer(name: str, generation: int) -> str:
    """The `tracking` row of one generation: each has its own position, so a rebuild starts from 0."""
    return f"projection:{name}:g{generation}"


class PostgresTarget:
    kind = "postgres"

    def __init__(self, projector: PostgresProjector, pool: asyncpg.Pool) -> None:
        self.projector = projector
        self._pool = pool

    @property
    def name(self) -> str:
        return self.projector.name

    def tables(self, generation: int) -> Tables:
        return Tables(list(self.projector.tables), generation)

    async def active_generation(self) -> int:
        """The generation serving reads, creating its tables and views if they do not exist yet."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", self.name
            )
            generation = int(
                await connection.fetchval(
                    "SELECT generation FROM projections WHERE name = $1 FOR UPDATE", self.name
                )
            )
            first_table = self.tables(generation).items()[0][1]
            if await connection.fetchval("SELECT to_regclass($1)", first_table) is None:
                await self._create_tables(connection, generation, replace=True)
                await self._point_views(connection, generation)
            return generation

    async def position(self, generation: int) -> int:
        return await load_tracking(self._pool, tracking_consumer(self.name, generation))

    async def apply(
        self,
        generation: int,
        events: Sequence[ProjectedEvent],
        from_position: int,
        to_position: int,
        *,
        rebuilding: bool = False,
    ) -> bool:
        """Apply `events` to `generation` and move its position from `from_position` to `to_position`, in one
        transaction.

        False (nothing written) when `generation` is no longer the one this writer may fill (the active
        instance after a swap, or a rebuild that another rebuild replaced) or its position is not
        `from_position` (another instance got ahead): the runner then reloads both.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            # A read model may lose its last few batches in a crash, as long as it loses their position with
            # them: asynchronous commit keeps each transaction atomic and in order, so a restart re-applies
            # exactly what was lost. It spares the read side an fsync per batch, which the event store's
            # appends need far more.
            await connection.execute("SET LOCAL synchronous_commit = off")
            row = await connection.fetchrow(
                "SELECT generation, rebuilding FROM projections WHERE name = $1 FOR SHARE", self.name
            )
            if row is None:
                return False
            expected = row["rebuilding"] if rebuilding else row["generation"]
            if expected != generation:
                return False
            consumer = tracking_consumer(self.name, generation)
            stored = await connection.fetchval(
                "SELECT position FROM tracking WHERE consumer = $1 FOR UPDATE", consumer
            )
            if (stored or 0) != from_position:
                return False
            if events:
                await self.projector.apply(connection, self.tables(generation), events)
            # Two writers starting from an empty row both pass the check above; the second one's insert
            # raises TrackingConflictError here and rolls back.
            await save_tracking(connection, consumer, to_position)
            return True

    async def rebuilding_generation(self) -> int | None:
        value = await self._pool.fetchval("SELECT rebuilding FROM projections WHERE name = $1", self.name)
        return None if value is None else int(value)

    async def start_rebuild(self) -> int:
        """Allocate a fresh generation with empty tables; the current one keeps serving."""
        await self.active_generation()
        async with self._pool.acquire() as connection, connection.transaction():
            current = await connection.fetchrow(
                "SELECT generation, rebuilding FROM projections WHERE name = $1 FOR UPDATE", self.name
            )
            assert current is not None
            newest = max(current["generation"], current["rebuilding"] or 0)
            generation = int(newest) + 1
            if current["rebuilding"] is not None:
                await self._drop_tables(connection, int(current["rebuilding"]))
            await self._create_tables(connection, generation, replace=True)
            await connection.execute(
                "DELETE FROM tracking WHERE consumer = $1", tracking_consumer(self.name, generation)
            )
            await connection.execute(
                "UPDATE projections SET rebuilding = $2, updated_at = now() WHERE name = $1",
                self.name,
                generation,
            )
            return generation

    async def activate(self, generation: int) -> int:
        """Swap the views to `generation` and make it the active one; returns the generation it replaces.

        Readers see the old tables until this commits, the new ones after.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            row = await connection.fetchrow(
                "SELECT generation, rebuilding FROM projections WHERE name = $1 FOR UPDATE", self.name
            )
            if row is None or row["rebuilding"] != generation:
                raise RuntimeError(f"{self.name}: generation {generation} is not the one being rebuilt")
            previous = int(row["generation"])
            await self._point_views(connection, generation)
            await connection.execute(
                "UPDATE projections SET generation = $2, rebuilding = NULL, updated_at = now()"
                " WHERE name = $1",
                self.name,
                generation,
            )
            return previous

    async def retire(self, generation: int) -> None:
        """Drop a replaced generation's tables and position (waits for reads still running on them)."""
        async with self._pool.acquire() as connection, connection.transaction():
            active = await connection.fetchval(
                "SELECT generation FROM projections WHERE name = $1", self.name
            )
            if active == generation:
                raise RuntimeError(f"{self.name}: refusing to drop the active generation {generation}")
            await self._drop_tables(connection, generation)
            await connection.execute(
                "DELETE FROM tracking WHERE consumer = $1", tracking_consumer(self.name, generation)
            )

    async def _create_tables(self, connection: Connection, generation: int, *, replace: bool) -> None:
        if replace:
            await self._drop_tables(connection, generation)
        for name, physical in self.tables(generation).items():
            for statement in self.projector.tables[name]:
                await connection.execute(statement.format(table=physical))

    async def _drop_tables(self, connection: Connection, generation: int) -> None:
        for physical in self.tables(generation).physical():
            await connection.execute(f"DROP TABLE IF EXISTS {physical} CASCADE")

    async def _point_views(self, connection: Connection, generation: int) -> None:
        # DROP + CREATE rather than CREATE OR REPLACE: a rebuild is often for a changed schema, and OR REPLACE
        # refuses to drop or retype columns. Both run in the caller's transaction, so readers never miss it.
        for name, physical in self.tables(generation).items():
            await connection.execute(f"DROP VIEW IF EXISTS {name}")
            await connection.execute(f"CREATE VIEW {name} AS SELECT * FROM {physical}")
