"""The offline queue keeps transaction messages in order, drops only periodic samples, retries then skips."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from loadtests.simulator.offline_queue import OfflineQueue, QueuedMessage


def message(n: int) -> QueuedMessage:
    return QueuedMessage("MeterValues", {"n": n}, None, offline=True)


@given(st.lists(st.booleans(), max_size=60), st.integers(min_value=1, max_value=20))
def test_messages_come_out_in_the_order_they_went_in(droppable: list[bool], limit: int) -> None:
    queue = OfflineQueue(limit)
    kept = [n for n, can_drop in enumerate(droppable) if queue.push(message(n), droppable=can_drop)]
    assert [m.payload["n"] for m in queue] == kept
    assert [queue.pop().payload["n"] for _ in range(len(queue))] == kept
    assert queue.dropped == len(droppable) - len(kept)


@given(st.lists(st.booleans(), max_size=60), st.integers(min_value=1, max_value=20))
def test_starts_and_stops_are_never_dropped(droppable: list[bool], limit: int) -> None:
    queue = OfflineQueue(limit)
    for n, can_drop in enumerate(droppable):
        accepted = queue.push(message(n), droppable=can_drop)
        assert accepted or can_drop
        if can_drop and not accepted:
            assert len(queue) >= limit


def test_an_empty_queue_allocates_nothing() -> None:
    queue = OfflineQueue(10)
    assert len(queue) == 0
    assert queue.peek() is None
    assert list(queue) == []
    assert queue._items is None


def test_a_failing_message_is_retried_later_then_skipped() -> None:
    queue = OfflineQueue(10)
    queue.push(message(1), droppable=False)
    queue.push(message(2), droppable=False)
    assert not queue.failed(now=100.0, max_attempts=3, retry_interval=10.0)
    head = queue.peek()
    assert head is not None
    assert head.not_before == 110.0  # first retry after one interval
    assert not queue.failed(now=110.0, max_attempts=3, retry_interval=10.0)
    assert head.not_before == 130.0  # then after twice the interval (OCPP 1.6 3.7.1)
    assert queue.failed(now=130.0, max_attempts=3, retry_interval=10.0)
    assert [m.payload["n"] for m in queue] == [2]
    assert queue.dropped == 1
