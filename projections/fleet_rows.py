"""Batch folding for Postgres projectors whose rows each follow one aggregate's stream.

A batch loads the rows its events touch in one query, folds the events into them in memory, and writes the
changed rows back in one `executemany`: a charger reporting a hundred status changes costs two round trips,
not a hundred. Every row remembers the stream version of the last event folded into it, and an event at or
below that version changes nothing, so applying a batch twice leaves the rows as the first time left them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from csms.eventstore.recorder import Connection
from projections.projector import ProjectedEvent

Row = dict[str, Any]
Fold = Callable[[Row | None, ProjectedEvent], Row | None]
"""The row after one event: None when the event neither creates nor finds a row (nothing to write)."""


@dataclass(frozen=True, slots=True)
class RowTable:
    """One read-model table keyed by a stream id, with a `version` column (the last stream version folded in).

    JSON columns are passed and read as text so the SQL works the same on a connection with or without the
    event store's jsonb codec (the runner's pool has it, other pools may not).
    """

    key: str
    columns: tuple[str, ...]
    json_columns: frozenset[str] = frozenset()

    async def load(self, connection: Connection, table: str, ids: Iterable[UUID]) -> dict[UUID, Row]:
        selected = ", ".join(f"{c}::text AS {c}" if c in self.json_columns else c for c in self.columns)
        records = await connection.fetch(
            f"SELECT {selected} FROM {table} WHERE {self.key} = ANY($1::uuid[])", list(ids)
        )
        return {record[self.key]: self._decode(record) for record in records}

    async def save(self, connection: Connection, table: str, rows: Iterable[Row]) -> None:
        values = [tuple(self._encode(column, row[column]) for column in self.columns) for row in rows]
        if not values:
            return
        placeholders = ", ".join(
            f"${n}::text::jsonb" if column in self.json_columns else f"${n}"
            for n, column in enumerate(self.columns, start=1)
        )
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in self.columns if c != self.key)
        # The version guard makes the write itself idempotent too, whatever the caller folded.
        await connection.executemany(
            f"INSERT INTO {table} ({', '.join(self.columns)}) VALUES ({placeholders})"
            f" ON CONFLICT ({self.key}) DO UPDATE SET {updates} WHERE {table}.version < EXCLUDED.version",
            values,
        )

    def _decode(self, record: asyncpg.Record) -> Row:
        return {
            column: orjson.loads(record[column])
            if column in self.json_columns and record[column] is not None
            else record[column]
            for column in self.columns
        }

    def _encode(self, column: str, value: Any) -> Any:
        if column in self.json_columns and value is not None:
            return orjson.dumps(value).decode()
        return value


async def fold_into(
    connection: Connection, table: RowTable, physical: str, events: Sequence[ProjectedEvent], fold: Fold
) -> None:
    """Fold `events` (one table's, in log order) into the rows of `physical` and write back what changed."""
    if not events:
        return
    rows: dict[UUID, Row | None] = dict(
        await table.load(connection, physical, {event.stream_id for event in events})
    )
    changed: set[UUID] = set()
    for event in events:
        row = rows.get(event.stream_id)
        if row is not None and event.stream_version <= row["version"]:
            continue  # already in the row: a batch applied again
        new = fold(None if row is None else dict(row), event)
        if new is None:
            continue
        new["version"] = event.stream_version
        rows[event.stream_id] = new
        changed.add(event.stream_id)
    await table.save(connection, physical, [row for key in changed if (row := rows[key]) is not None])
