"""Load aggregates from their streams and save their new events with the right expected version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import reduce
from typing import Any, TypeVar, overload
from uuid import UUID

from csms.eventstore.codec import EventCodec
from csms.eventstore.errors import AggregateNotFoundError, ConcurrencyError
from csms.eventstore.recorder import Submission
from csms.eventstore.records import AppendResult, RecordedEvent
from csms.eventstore.store import EventStore

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
R = TypeVar("R")


class AggregateCache:
    """Aggregates kept in memory by the process that owns them (their single writer).

    Only committed state is cached: `Repository.save` puts an aggregate back after its events commit,
    and evicts it when the commit fails, so a cached aggregate never holds events the log lacks.

    The default size holds a large gateway's whole fleet with its running sessions (ended ones are
    forgotten), so that a charger idle for hours is not read whole again when it next reports (a Charger
    with two EVSEs, connected and booted, takes about 1.7 KiB).
    """

    def __init__(self, max_size: int = 50_000) -> None:
        self._items: OrderedDict[UUID, Any] = OrderedDict()
        self._max_size = max_size

    def get(self, aggregate_id: UUID) -> Any | None:
        item = self._items.get(aggregate_id)
        if item is not None:
            self._items.move_to_end(aggregate_id)
        return item

    def put(self, aggregate_id: UUID, aggregate: Any) -> None:
        self._items[aggregate_id] = aggregate
        self._items.move_to_end(aggregate_id)
        while len(self._items) > self._max_size:
            self._items.popitem(last=False)

    def evict(self, aggregate_id: UUID) -> None:
        self._items.pop(aggregate_id, None)

    def __len__(self) -> int:
        return len(self._items)


class Repository:
    """Aggregates in, events out: the write side's only way to the event store."""

    def __init__(self, store: EventStore, codec: EventCodec, cache: AggregateCache | None = None) -> None:
        self._store = store
        self._codec = codec
        self._cache = cache

    async def get(self, aggregate_id: UUID, cls: type[A], *, refresh: bool = False) -> A:
        """The aggregate rebuilt from its events (or from the owner's cache), at its latest version.

        With `refresh`, a cached aggregate is first brought up to date with any events other
        processes appended since (one indexed read of the stream's tail, usually empty).

        Every caller gets its own copy: commands run concurrently in one process (a charger's messages,
        an API request about it), and each must start from committed state, never from another one's
        half-made changes. The cache itself only ever holds committed state.
        """
        if self._cache is not None:
            cached = self._cache.get(aggregate_id)
            if cached is not None:
                if refresh:
                    newer = await self._store.read_stream(aggregate_id, after_version=cached.version)
                    cached = self._caught_up(aggregate_id, cached, newer)
                return _detached(_checked(cached, cls, aggregate_id))
        return self._rebuilt(aggregate_id, cls, await self._store.read_stream(aggregate_id))

    @overload
    async def get_many(self, first: tuple[UUID, type[A]], second: tuple[UUID, type[B]], /) -> tuple[A, B]: ...

    @overload
    async def get_many(
        self, first: tuple[UUID, type[A]], second: tuple[UUID, type[B]], third: tuple[UUID, type[C]], /
    ) -> tuple[A, B, C]: ...

    async def get_many(self, *wanted: tuple[UUID, type[Any]]) -> tuple[Any, ...]:
        """Several aggregates at their latest versions, as `get(..., refresh=True)` gives each, but read in
        one round trip: the tails of the cached ones and the whole streams of the others.

        Raises AggregateNotFoundError for the first one that has no events.
        """
        ids = [aggregate_id for aggregate_id, _ in wanted]
        if len(set(ids)) != len(ids):
            raise ValueError("an aggregate is asked for twice")
        latest = await self._latest(wanted)
        found: list[Any] = []
        for aggregate_id, cls in wanted:
            aggregate = _checked(latest[aggregate_id], cls, aggregate_id)
            found.append(_detached(aggregate) if self._cache is not None else aggregate)
        return tuple(found)

    async def read_ahead(self, *wanted: tuple[UUID, type[Any]]) -> frozenset[UUID]:
        """Bring several aggregates up to date in the cache with one round trip, so that the `get`s which
        follow need no read of their own: the tails of the cached ones, the whole streams of the others.

        Returns the ids now current in the cache; an aggregate that does not exist (or is of another type)
        is left out, for its `get` to report. Without a cache there is nowhere to keep them: nothing is read.
        """
        if self._cache is None or not wanted:
            return frozenset()
        latest = await self._latest(wanted)
        return frozenset(a_id for a_id, cls in wanted if isinstance(latest[a_id], cls))

    async def _latest(self, wanted: Sequence[tuple[UUID, type[Any]]]) -> dict[UUID, Any]:
        """Each aggregate at its latest version (None when it has no events), read in one round trip: the
        cached ones brought up to date in the cache, the others rebuilt (and cached, if of the type asked)."""
        cached = {
            aggregate_id: self._cache.get(aggregate_id) if self._cache is not None else None
            for aggregate_id, _ in wanted
        }
        recorded = await self._store.read_streams(
            {aggregate_id: (c.version if c is not None else 0) for aggregate_id, c in cached.items()}
        )
        latest: dict[UUID, Any] = {}
        for aggregate_id, cls in wanted:
            known = cached[aggregate_id]
            if known is not None:
                latest[aggregate_id] = self._caught_up(aggregate_id, known, recorded[aggregate_id])
            elif recorded[aggregate_id]:
                aggregate = self._replayed(recorded[aggregate_id])
                if self._cache is not None and isinstance(aggregate, cls):
                    self._keep(aggregate)
                latest[aggregate_id] = aggregate
            else:
                latest[aggregate_id] = None
        return latest

    def peek(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        """The cached copy as last committed here, perhaps behind the log, or None when none is cached.

        Only to know which other aggregates to read together with it (the company a charger belongs to, the
        tariff a station had): never decide on it, and never change it.
        """
        if self._cache is None:
            return None
        cached = self._cache.get(aggregate_id)
        return cached if isinstance(cached, cls) else None

    def forget(self, aggregate_id: UUID) -> None:
        """Drop the cached copy of an aggregate this process is done with (a session that ended), so that
        the cache keeps what is still in use; a later `get` reads it whole again."""
        if self._cache is not None:
            self._cache.evict(aggregate_id)

    def _caught_up(self, aggregate_id: UUID, cached: Any, newer: Sequence[RecordedEvent]) -> Any:
        """The cached aggregate with `newer` applied. Another caller may have refreshed (or saved) while
        this one read: apply only what the cached state still lacks. No await between check and mutation."""
        assert self._cache is not None
        current = self._cache.get(aggregate_id) or cached
        for recorded_event in newer:
            if recorded_event.stream_version == current.version + 1:
                current = self._codec.decode(recorded_event).mutate(current)
        return current

    def _rebuilt(self, aggregate_id: UUID, cls: type[A], recorded: Sequence[RecordedEvent]) -> A:
        """The aggregate from its whole stream, kept in the cache (as a copy) when there is one."""
        if not recorded:
            raise AggregateNotFoundError(aggregate_id)
        aggregate = _checked(self._replayed(recorded), cls, aggregate_id)
        if self._cache is not None:
            self._keep(aggregate)
            return _detached(aggregate)
        return aggregate

    def _replayed(self, recorded: Sequence[RecordedEvent]) -> Any:
        events = [self._codec.decode(r) for r in recorded]
        return reduce(lambda agg, event: event.mutate(agg), events, None)

    async def save(
        self, *aggregates: Any, metadata: Mapping[str, Any] | None = None, handover: bool = False
    ) -> list[AppendResult]:
        """Append the aggregates' pending events atomically; all commit or none do.

        With `handover` the caller gives the aggregates up: once committed, the cache keeps them as they are
        instead of copies, and the caller must not touch them again (a hot path that loads, commands, saves
        and forgets saves a copy per command).

        Raises `ConcurrencyError` if any aggregate's stream moved on since it was loaded.
        """
        submissions: list[Submission] = []
        for aggregate in aggregates:
            pending = aggregate.collect_events()
            if not pending:
                continue
            expected = pending[0].originator_version - 1
            encoded = [self._codec.encode(event, metadata) for event in pending]
            submissions.append(Submission(aggregate.id, expected, encoded))
        if not submissions:
            return []
        try:
            results = await self._store.append_all(submissions)
        except ConcurrencyError:
            # Nothing was written and the cache holds committed (if now stale) copies: a refresh brings
            # them up to date with one tail read, where evicting would cost a whole stream's read.
            raise
        except BaseException:
            # The outcome is unknown (say, the connection broke during the commit): start over from the log.
            if self._cache is not None:
                for aggregate in aggregates:
                    self._cache.evict(aggregate.id)
            raise
        if self._cache is not None:
            for aggregate in aggregates:
                self._keep(aggregate if handover else _detached(aggregate))
        return results

    def _keep(self, aggregate: Any) -> None:
        """Cache committed state, unless the cache already holds a newer version (a refresh got there)."""
        assert self._cache is not None
        current = self._cache.get(aggregate.id)
        if current is None or current.version <= aggregate.version:
            self._cache.put(aggregate.id, aggregate)

    async def execute(
        self,
        aggregate_id: UUID,
        cls: type[A],
        command: Callable[[A], Awaitable[R] | R],
        *,
        metadata: Mapping[str, Any] | None = None,
        retries: int = 3,
    ) -> R:
        """Load, run `command` on the aggregate, save; on a concurrency conflict catch up and retry."""
        for attempt in range(retries + 1):
            aggregate = await self.get(aggregate_id, cls, refresh=attempt > 0)
            try:
                result = command(aggregate)
                if isinstance(result, Awaitable):
                    result = await result
                await self.save(aggregate, metadata=metadata)
            except ConcurrencyError:
                if attempt == retries:
                    raise
                continue
            except BaseException:
                # A command that failed half-way may have left uncommitted events on the instance.
                if self._cache is not None:
                    self._cache.evict(aggregate_id)
                raise
            return result
        raise AssertionError("unreachable")


def _detached(aggregate: A) -> A:
    """A copy that shares nothing mutable with `aggregate`.

    Aggregate state is immutable values (frozen value objects, tuples, strings) held in attributes, plus a few
    dicts, lists and sets that commands change in place: copying those one level deep is enough, and keeps the
    cost independent of history (a session's growing readings, an immutable `MeterReadings`, are shared, never
    copied). This runs on every command, so it builds the clone directly rather than through `copy.copy`'s
    reduce protocol, copies the attribute dict in one call and replaces only the containers (matched by exact
    type, which is what aggregates hold: half the time of an `isinstance` test per attribute).
    """
    clone: A = object.__new__(type(aggregate))
    state = vars(aggregate).copy()
    for name, value in state.items():
        if type(value) in _MUTABLE_CONTAINERS:
            state[name] = value.copy()
    object.__setattr__(clone, "__dict__", state)  # as eventsourcing rebuilds aggregates from snapshots
    return clone


_MUTABLE_CONTAINERS = frozenset((dict, list, set))


def _checked(aggregate: Any, cls: type[A], aggregate_id: UUID) -> A:
    if not isinstance(aggregate, cls):
        raise AggregateNotFoundError(aggregate_id)
    return aggregate
