"""The repository: aggregates rebuilt from the real store, saved with the right expected version."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate, event

from csms.eventstore import (
    AggregateCache,
    AggregateNotFoundError,
    ConcurrencyError,
    EventCodec,
    EventStore,
    Repository,
)
from csms.eventstore.codec import Upcaster
from csms.eventstore.repository import _detached

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class Counter(Aggregate):
    @event("Opened")
    def __init__(self, id: UUID, name: str, timestamp: datetime) -> None:
        self.name = name
        self.total = 0

    def add(self, amount: int, at: datetime) -> None:
        if amount <= 0:
            raise ValueError("amount must be positive")
        self._added(amount=amount, timestamp=at)

    @event("Added")
    def _added(self, amount: int, timestamp: datetime) -> None:
        self.total += amount


@dataclass(frozen=True)
class Spec:
    topic: str
    cls: type[Any]
    version: int = 1
    upcasters: Mapping[int, Upcaster] = field(default_factory=dict)


CODEC = EventCodec(
    [Spec("Counter.Opened", vars(Counter)["Opened"]), Spec("Counter.Added", vars(Counter)["Added"])]
)


async def test_saved_aggregates_load_back_equal(store: EventStore) -> None:
    repository = Repository(store, CODEC)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    counter.add(5, AT + timedelta(seconds=1))
    (result,) = await repository.save(counter, metadata={"correlation_id": "req-1"})

    loaded = await repository.get(counter.id, Counter)

    assert result.version == 2
    assert loaded == counter
    assert loaded.total == 5
    stored = await store.read_stream(counter.id)
    assert [e.topic for e in stored] == ["Counter.Opened", "Counter.Added"]
    assert stored[1].metadata == {"correlation_id": "req-1"}


async def test_missing_aggregate_is_reported(store: EventStore) -> None:
    missing = uuid.uuid4()
    with pytest.raises(AggregateNotFoundError, match=str(missing)):
        await Repository(store, CODEC).get(missing, Counter)


async def test_two_writers_from_the_same_version_conflict(store: EventStore) -> None:
    repository = Repository(store, CODEC)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    await repository.save(counter)
    first, second = await repository.get(counter.id, Counter), await repository.get(counter.id, Counter)
    first.add(1, AT)
    second.add(2, AT)
    await repository.save(first)

    with pytest.raises(ConcurrencyError):
        await repository.save(second)
    assert (await repository.get(counter.id, Counter)).total == 1


async def test_execute_retries_a_command_after_a_conflict(store: EventStore) -> None:
    repository = Repository(store, CODEC)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    await repository.save(counter)

    def adder(amount: int) -> Callable[[Counter], None]:
        return lambda c: c.add(amount, AT)

    # Five concurrent commands from one version: each round, one wins and the rest reload and retry.
    await asyncio.gather(*(repository.execute(counter.id, Counter, adder(n), retries=5) for n in range(1, 6)))

    assert (await repository.get(counter.id, Counter)).total == 15
    assert len(await store.read_stream(counter.id)) == 6


async def test_saving_several_aggregates_is_atomic(store: EventStore) -> None:
    repository = Repository(store, CODEC)
    a = Counter(id=uuid.uuid4(), name="a", timestamp=AT)
    await repository.save(a)
    stale = await repository.get(a.id, Counter)
    a.add(1, AT)
    await repository.save(a)
    b = Counter(id=uuid.uuid4(), name="b", timestamp=AT)
    stale.add(5, AT)

    with pytest.raises(ConcurrencyError):
        await repository.save(b, stale)
    with pytest.raises(AggregateNotFoundError):
        await repository.get(b.id, Counter)


async def test_cache_serves_the_owner_and_never_holds_uncommitted_events(store: EventStore) -> None:
    cache = AggregateCache(max_size=2)
    repository = Repository(store, CODEC, cache)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    await repository.save(counter)
    served = await repository.get(counter.id, Counter)
    assert served == counter
    assert served is not counter  # each caller gets its own copy of the committed state

    # Another process appends behind the owner's back: the owner's save conflicts, and the retry inside
    # `execute` catches the cached copy up with the stream's tail.
    outsider = Repository(store, CODEC)
    other = await outsider.get(counter.id, Counter)
    other.add(10, AT)
    await outsider.save(other)

    await repository.execute(counter.id, Counter, lambda c: c.add(1, AT))
    assert (await repository.get(counter.id, Counter)).total == 11

    with pytest.raises(ValueError, match="positive"):
        await repository.execute(counter.id, Counter, lambda c: c.add(0, AT))
    assert cache.get(counter.id) is None
    assert (await repository.get(counter.id, Counter)).total == 11


async def test_a_handed_over_aggregate_is_cached_as_it_is(store: EventStore) -> None:
    cache = AggregateCache()
    repository = Repository(store, CODEC, cache)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    await repository.save(counter)
    assert cache.get(counter.id) is not counter  # kept: a copy the caller cannot change behind its back

    loaded = await repository.get(counter.id, Counter)
    loaded.add(3, AT)
    await repository.save(loaded, handover=True)
    assert cache.get(counter.id) is loaded  # given up by the caller: no second copy
    served = await repository.get(counter.id, Counter)
    assert (served.total, served.version) == (3, 2)
    assert served is not loaded


def test_a_detached_copy_shares_no_container_with_its_original() -> None:
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    counter.tags = {"a"}  # type: ignore[attr-defined]
    counter.limits = {"max": 1}  # type: ignore[attr-defined]
    counter.log = [1]  # type: ignore[attr-defined]
    clone = _detached(counter)
    assert vars(clone) == vars(counter)
    for name in ("tags", "limits", "log", "_pending_events"):
        assert getattr(clone, name) is not getattr(counter, name)
    assert clone.name is counter.name  # immutable values are shared


async def test_refresh_brings_a_cached_aggregate_up_to_date(store: EventStore) -> None:
    cache = AggregateCache()
    owner = Repository(store, CODEC, cache)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    await owner.save(counter)
    outsider = Repository(store, CODEC)
    other = await outsider.get(counter.id, Counter)
    other.add(4, AT)
    await outsider.save(other)

    assert (await owner.get(counter.id, Counter)).total == 0  # the cache alone is stale
    refreshed = await owner.get(counter.id, Counter, refresh=True)
    assert (refreshed.total, refreshed.version) == (4, 2)


async def test_concurrent_refreshes_and_commands_on_one_cached_aggregate(store: EventStore) -> None:
    """Several coroutines of the owning process work on the same aggregate at once (a charger's message and an
    API request about it): each starts from committed state, none sees another's uncommitted events."""
    cache = AggregateCache()
    owner = Repository(store, CODEC, cache)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    await owner.save(counter)
    outsider = Repository(store, CODEC)
    for amount in (1, 2):
        other = await outsider.get(counter.id, Counter)
        other.add(amount, AT)
        await outsider.save(other)

    refreshed = await asyncio.gather(*(owner.get(counter.id, Counter, refresh=True) for _ in range(5)))
    assert {(c.version, c.total) for c in refreshed} == {(3, 3)}

    first, second = await owner.get(counter.id, Counter), await owner.get(counter.id, Counter)
    first.add(10, AT)  # uncommitted: must not show up in `second` or in the cache
    assert second.total == 3
    assert (await owner.get(counter.id, Counter)).total == 3
    await owner.save(first)
    second.add(20, AT)
    with pytest.raises(ConcurrencyError):
        await owner.save(second)
    assert (await owner.get(counter.id, Counter, refresh=True)).total == 13


async def test_get_many_reads_cached_tails_and_whole_streams_at_once(store: EventStore) -> None:
    writer = Repository(store, CODEC)
    fresh, stale, unseen = (Counter(id=uuid.uuid4(), name=name, timestamp=AT) for name in "abc")
    await writer.save(fresh, stale, unseen)
    cache = AggregateCache()
    reader = Repository(store, CODEC, cache)
    await reader.get(fresh.id, Counter)
    await reader.get(stale.id, Counter)
    stale.add(5, AT)  # another process moves one cached aggregate on; `unseen` is not cached at all
    unseen.add(7, AT)
    await writer.save(stale, unseen)

    got_fresh, got_stale, got_unseen = await reader.get_many(
        (fresh.id, Counter), (stale.id, Counter), (unseen.id, Counter)
    )

    assert (got_fresh.total, got_stale.total, got_unseen.total) == (0, 5, 7)
    assert (got_stale.version, got_unseen.version) == (2, 2)
    cached_stale, cached_unseen = cache.get(stale.id), cache.get(unseen.id)
    assert cached_stale is not None
    assert cached_unseen is not None
    assert (cached_stale.total, cached_unseen.total) == (5, 7)  # the cache caught up too
    got_stale.add(1, AT)  # the caller's copy is its own
    assert cached_stale.total == 5
    with pytest.raises(AggregateNotFoundError):
        await reader.get_many((fresh.id, Counter), (uuid.uuid4(), Counter))
    with pytest.raises(ValueError, match="twice"):
        await reader.get_many((fresh.id, Counter), (fresh.id, Counter))


async def test_read_ahead_brings_several_aggregates_up_to_date_for_the_gets_that_follow(
    store: EventStore,
) -> None:
    writer = Repository(store, CODEC)
    stale, unseen = (Counter(id=uuid.uuid4(), name=name, timestamp=AT) for name in "ab")
    await writer.save(stale, unseen)
    cache = AggregateCache()
    reader = Repository(store, CODEC, cache)
    await reader.get(stale.id, Counter)
    stale.add(5, AT)  # moved on by another process since `reader` cached it
    unseen.add(7, AT)
    await writer.save(stale, unseen)
    missing = uuid.uuid4()

    current = await reader.read_ahead((stale.id, Counter), (unseen.id, Counter), (missing, Counter))

    assert current == {stale.id, unseen.id}  # the missing one is left for its `get` to report
    got_stale, got_unseen = await reader.get(stale.id, Counter), await reader.get(unseen.id, Counter)
    assert (got_stale.total, got_stale.version, got_unseen.total, got_unseen.version) == (5, 2, 7, 2)
    with pytest.raises(AggregateNotFoundError):
        await reader.get(missing, Counter)
    peeked = reader.peek(stale.id, Counter)
    assert peeked is not None
    assert peeked.total == 5
    assert reader.peek(missing, Counter) is None
    assert reader.peek(stale.id, Aggregate.Event) is None  # another type is not this aggregate


async def test_read_ahead_without_a_cache_reads_nothing(store: EventStore) -> None:
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    uncached = Repository(store, CODEC)
    await uncached.save(counter)

    assert await uncached.read_ahead((counter.id, Counter)) == frozenset()
    assert uncached.peek(counter.id, Counter) is None


async def test_a_forgotten_aggregate_is_read_whole_again(store: EventStore) -> None:
    cache = AggregateCache()
    repository = Repository(store, CODEC, cache)
    counter = Counter(id=uuid.uuid4(), name="kWh", timestamp=AT)
    counter.add(2, AT)
    await repository.save(counter)
    assert repository.peek(counter.id, Counter) is not None

    repository.forget(counter.id)

    assert repository.peek(counter.id, Counter) is None
    again = await repository.get(counter.id, Counter)
    assert (again.total, again.version) == (2, 2)
    Repository(store, CODEC).forget(counter.id)  # without a cache there is nothing to forget
