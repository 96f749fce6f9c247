"""The SQL of the event store: writing batches in commit order, reading streams and the log, tracking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from csms.eventstore.errors import ConcurrencyError, TrackingConflictError
from csms.eventstore.records import AppendResult, NewEvent, RecordedEvent

NOTIFY_CHANNEL = "csms_events"

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, or one borrowed from a pool."""
Executor = Connection | asyncpg.Pool
"""Anything that runs a query: a connection, or a pool that lends one."""

_COLUMNS = "position, stream_id, stream_version, topic, schema_version, data, metadata, recorded_at"

# Under the lock these are stable. The head is one backward step on the primary key; each stream's
# version is one backward step on the (stream_id, stream_version) index. The correlated LIMIT 1 form
# keeps those index probes even under a generic prepared plan built from stale statistics, where
# `stream_id = ANY($1) GROUP BY` can degrade into a scan of the whole table. One round trip for both.
_HEADS = """
SELECT NULL::uuid AS stream_id, (SELECT position FROM events ORDER BY position DESC LIMIT 1) AS head
UNION ALL
SELECT s.id, (SELECT e.stream_version FROM events e WHERE e.stream_id = s.id
              ORDER BY e.stream_version DESC LIMIT 1)
FROM unnest($1::uuid[]) AS s(id)
"""

# One statement inserts the whole batch from arrays and notifies listeners; the data-modifying CTE
# runs even though the outer query does not read it. NOTIFY is delivered only if the transaction commits.
_INSERT = f"""
WITH inserted AS (
    INSERT INTO events (position, stream_id, stream_version, topic, schema_version, data, metadata)
    SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::int[], $4::text[], $5::smallint[],
                         $6::jsonb[], $7::jsonb[])
)
SELECT pg_notify('{NOTIFY_CHANNEL}', $8::text)
"""


@dataclass(frozen=True, slots=True)
class Submission:
    """Events for one stream, valid only if the stream is at `expected_version`."""

    stream_id: UUID
    expected_version: int
    events: Sequence[NewEvent]


Commit = Sequence[Submission]
"""Submissions that commit together or not at all (one command touching several aggregates)."""

Outcome = list[AppendResult] | ConcurrencyError


async def write_batch(connection: Connection, batch: Sequence[Commit]) -> list[Outcome]:
    """Append every commit whose expected versions all hold, in one transaction; one outcome each.

    LOCK TABLE ... IN EXCLUSIVE MODE serialises writers (across processes) from position assignment to
    commit, while readers (ACCESS SHARE) are never blocked. Because Postgres makes a commit visible before
    it releases the transaction's locks, a later writer can only take positions above every committed
    one: readers tailing by position see a gap-free log and never skip an event that commits late.

    A commit with a stale expected version is answered with a `ConcurrencyError` and left out; the
    others in the batch still commit.
    """
    outcomes: list[Outcome] = []
    async with connection.transaction():
        await connection.execute("LOCK TABLE events IN EXCLUSIVE MODE")
        stream_ids = list({s.stream_id for commit in batch for s in commit})
        versions: dict[UUID, int] = {}
        head = 0
        for row in await connection.fetch(_HEADS, stream_ids):
            if row["stream_id"] is None:
                head = row["head"] or 0
            elif row["head"] is not None:
                versions[row["stream_id"]] = row["head"]

        rows = _Rows()
        for commit in batch:
            stale = _first_stale(commit, versions)
            if stale is not None:
                outcomes.append(stale)
                continue
            results: list[AppendResult] = []
            for submission in commit:
                version = versions.get(submission.stream_id, 0)
                for event in submission.events:
                    head += 1
                    version += 1
                    rows.add(head, submission.stream_id, version, event)
                # Later commits in the same batch see these events (two commands on one stream).
                versions[submission.stream_id] = version
                results.append(AppendResult(submission.stream_id, version, head))
            outcomes.append(results)

        if rows.positions:
            await connection.execute(_INSERT, *rows.columns(), str(head))
    return outcomes


def _first_stale(commit: Commit, versions: dict[UUID, int]) -> ConcurrencyError | None:
    seen: dict[UUID, int] = {}
    for submission in commit:
        current = seen.get(submission.stream_id, versions.get(submission.stream_id, 0))
        if current != submission.expected_version:
            return ConcurrencyError(submission.stream_id, submission.expected_version, current)
        seen[submission.stream_id] = current + len(submission.events)
    return None


class _Rows:
    """Column arrays for the unnest() bulk insert."""

    __slots__ = ("data", "ids", "metadata", "positions", "schema_versions", "topics", "versions")

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.ids: list[UUID] = []
        self.versions: list[int] = []
        self.topics: list[str] = []
        self.schema_versions: list[int] = []
        self.data: list[bytes] = []
        self.metadata: list[object] = []

    def add(self, position: int, stream_id: UUID, version: int, event: NewEvent) -> None:
        self.positions.append(position)
        self.ids.append(stream_id)
        self.versions.append(version)
        self.topics.append(event.topic)
        self.schema_versions.append(event.schema_version)
        self.data.append(event.data)
        self.metadata.append(event.metadata)

    def columns(self) -> tuple[list[Any], ...]:
        return (
            self.positions,
            self.ids,
            self.versions,
            self.topics,
            self.schema_versions,
            self.data,
            self.metadata,
        )


def _recorded(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        position=row["position"],
        stream_id=row["stream_id"],
        stream_version=row["stream_version"],
        topic=row["topic"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=row["metadata"],
        recorded_at=row["recorded_at"],
    )


async def read_stream(
    connection: Executor,
    stream_id: UUID,
    *,
    after_version: int = 0,
    to_version: int | None = None,
) -> list[RecordedEvent]:
    """The events of one stream in version order, optionally a version range (after, to]."""
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE stream_id = $1 AND stream_version > $2"
        " AND ($3::int IS NULL OR stream_version <= $3) ORDER BY stream_version",
        stream_id,
        after_version,
        to_version,
    )
    return [_recorded(row) for row in rows]


async def read_all(
    connection: Executor,
    after_position: int = 0,
    limit: int = 1000,
    topics: Sequence[str] | None = None,
) -> list[RecordedEvent]:
    """Up to `limit` events of the global log with positions above `after_position`, in order."""
    if topics is None:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE position > $1 ORDER BY position LIMIT $2",
            after_position,
            limit,
        )
    else:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE position > $1 AND topic = ANY($3::text[])"
            " ORDER BY position LIMIT $2",
            after_position,
            limit,
            list(topics),
        )
    return [_recorded(row) for row in rows]


async def head_position(connection: Executor) -> int:
    """The position of the last committed event (0 for an empty log)."""
    value = await connection.fetchval("SELECT coalesce(max(position), 0) FROM events")
    return int(value)


async def load_tracking(connection: Executor, consumer: str) -> int:
    """The last position `consumer` recorded as processed (0 if it never ran)."""
    value = await connection.fetchval("SELECT position FROM tracking WHERE consumer = $1", consumer)
    return 0 if value is None else int(value)


async def save_tracking(connection: Connection, consumer: str, position: int) -> None:
    """Record `position` as processed by `consumer`, inside the caller's transaction.

    Run it in the same transaction as the consumer's own writes: both commit or neither does. Raises
    `TrackingConflictError` if the stored position is already at or beyond `position`, which means the
    event was processed elsewhere and the caller's transaction must be rolled back.
    """
    status = await connection.execute(
        """
        INSERT INTO tracking (consumer, position) VALUES ($1, $2)
        ON CONFLICT (consumer) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
        WHERE tracking.position < EXCLUDED.position
        """,
        consumer,
        position,
    )
    if status.endswith(" 0"):
        raise TrackingConflictError(consumer, position)
