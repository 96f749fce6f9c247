"""The SQL of the event store: writing batches in commit order, reading streams and the log, tracking."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from csms.eventstore.errors import ConcurrencyError, TrackingConflictError
from csms.eventstore.records import AppendResult, NewEvent, RecordedEvent

NOTIFY_CHANNEL = "csms_events"

APPEND_LOCK = "hashtextextended('csms:event-store-append', 0)"
"""The advisory lock every append holds from position assignment to commit (migration 0008), as an SQL
expression: `SELECT pg_advisory_xact_lock(...)` in a transaction holds the appends back until it ends."""

APPEND_LOCK_ROWS = (
    f"locktype = 'advisory' AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = {APPEND_LOCK}"
)
"""A condition on `pg_locks` for the append lock's rows (a bigint key shows as its two 32-bit halves): with
`NOT granted`, the appends waiting for it."""

Connection = asyncpg.Connection | PoolConnectionProxy
"""A connection, or one borrowed from a pool."""
Executor = Connection | asyncpg.Pool
"""Anything that runs a query: a connection, or a pool that lends one."""

_COLUMNS = "position, stream_id, stream_version, topic, schema_version, data, metadata, recorded_at"

# The whole append (lock, head, versions, insert, notify) is one server-side function, so a batch costs one
# round trip: see migration 0007 for its arguments and the locking it does. Under the lock the head is one
# backward step on the primary key and each stream's version one backward step on the (stream_id,
# stream_version) index: the correlated LIMIT 1 form keeps those index probes even under a generic plan built
# from stale statistics, where `stream_id = ANY($1) GROUP BY` can degrade into a scan of the whole table.
_APPEND = """
SELECT head_before, stale_commits, stale_streams, stale_expected, stale_actual
FROM event_store_append($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], $6::text[], $7::smallint[],
                        $8::jsonb[], $9::jsonb[])
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

    A transaction-scoped advisory lock (`APPEND_LOCK`, migration 0008) serialises writers (across
    processes) from position assignment to commit, while readers are never blocked. Because Postgres
    makes a commit visible before it releases the transaction's locks, a later writer can only take
    positions above every committed one: readers tailing by position see a gap-free log and never skip
    an event that commits late.

    It is one statement, `event_store_append` (migration 0007): outside a transaction block it runs in an
    implicit transaction that has committed, durably, when this returns (the server answers after the
    commit); inside the caller's transaction it takes the lock and inserts, and the caller commits.

    A commit with a stale expected version is answered with a `ConcurrencyError` and left out; the
    others in the batch still commit.
    """
    rows = _Rows()
    for index, commit in enumerate(batch, start=1):
        for submission in commit:
            rows.add(index, submission)
    row = await connection.fetchrow(_APPEND, *rows.columns())
    assert row is not None
    failures = zip(
        row["stale_commits"], row["stale_streams"], row["stale_expected"], row["stale_actual"], strict=True
    )
    stale = {
        commit: ConcurrencyError(stream_id, expected, actual)
        for commit, stream_id, expected, actual in failures
    }
    # Number the events as the function did: positions follow on from the head over the commits that went in.
    head: int = row["head_before"]
    outcomes: list[Outcome] = []
    for index, commit in enumerate(batch, start=1):
        error = stale.get(index)
        if error is not None:
            outcomes.append(error)
            continue
        results: list[AppendResult] = []
        for submission in commit:
            head += len(submission.events)
            version = submission.expected_version + len(submission.events)
            results.append(AppendResult(submission.stream_id, version, head))
        outcomes.append(results)
    return outcomes


class _Rows:
    """The arrays `event_store_append` takes (see migration 0007)."""

    __slots__ = (
        "commit_of",
        "data",
        "expected",
        "metadata",
        "schema_versions",
        "stream_index",
        "stream_of",
        "submission_of",
        "topics",
    )

    def __init__(self) -> None:
        self.stream_index: dict[UUID, int] = {}
        self.commit_of: list[int] = []
        self.stream_of: list[int] = []
        self.expected: list[int] = []
        self.submission_of: list[int] = []
        self.topics: list[str] = []
        self.schema_versions: list[int] = []
        self.data: list[bytes] = []
        self.metadata: list[object] = []

    def add(self, commit: int, submission: Submission) -> None:
        stream = self.stream_index.setdefault(submission.stream_id, len(self.stream_index) + 1)
        self.commit_of.append(commit)
        self.stream_of.append(stream)
        self.expected.append(submission.expected_version)
        number = len(self.commit_of)
        for event in submission.events:
            self.submission_of.append(number)
            self.topics.append(event.topic)
            self.schema_versions.append(event.schema_version)
            self.data.append(event.data)
            self.metadata.append(event.metadata)

    def columns(self) -> tuple[list[Any], ...]:
        return (
            list(self.stream_index),
            self.commit_of,
            self.stream_of,
            self.expected,
            self.submission_of,
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


async def read_streams(
    connection: Executor, after_versions: Mapping[UUID, int]
) -> dict[UUID, list[RecordedEvent]]:
    """Several streams' events above the given version each (0: the whole stream), in one round trip.

    Each stream is one index range scan (`stream_id = s AND stream_version > v`), as in `read_stream`: the
    LATERAL form keeps it so under any plan. A plain join let the planner pick a hash join over the whole
    table, which grew with the log (a session benchmark's Postgres CPU per session rose fivefold in a minute).
    """
    ids = list(after_versions)
    rows = await connection.fetch(
        f"SELECT {_COLUMNS}"
        " FROM unnest($1::uuid[], $2::int[]) WITH ORDINALITY AS wanted(wanted_id, after_version, n)"
        " CROSS JOIN LATERAL ("
        f"   SELECT {_COLUMNS} FROM events"
        "    WHERE stream_id = wanted.wanted_id AND stream_version > wanted.after_version"
        "    ORDER BY stream_version"
        " ) AS found"
        " ORDER BY wanted.n, found.stream_version",
        ids,
        [after_versions[stream_id] for stream_id in ids],
    )
    found: dict[UUID, list[RecordedEvent]] = {stream_id: [] for stream_id in ids}
    for row in rows:
        found[row["stream_id"]].append(_recorded(row))
    return found


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
