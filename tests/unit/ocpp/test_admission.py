"""Boot admission: beyond the pace, each Pending charger is told when its slot comes, and gets it then."""

from __future__ import annotations

import pytest

from write_api.ocpp.admission import MAX_INTERVAL_SECONDS, BootAdmission


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_storm_is_admitted_at_the_pace_with_every_charger_told_its_turn() -> None:
    clock = Clock()
    admission = BootAdmission(per_second=10, burst=5, clock=clock)
    answers = {f"CP-{n}": admission.admit(f"CP-{n}") for n in range(25)}

    assert [answers[f"CP-{n}"] for n in range(5)] == [None] * 5  # the burst
    intervals = [answers[f"CP-{n}"] for n in range(5, 25)]
    # 20 queued at 10 per second: back within 1..2 s, in queue order, never beyond their slot.
    assert intervals == sorted(intervals)  # type: ignore[type-var]
    assert intervals[0] == 1
    assert intervals[-1] == 2
    assert admission.waiting == 20

    clock.now += 2.0  # everyone comes back when told
    assert all(admission.admit(f"CP-{n}") is None for n in range(5, 25))
    assert admission.waiting == 0
    assert admission.pending_answers == 20


def test_slots_are_kept_for_those_who_queued_first() -> None:
    clock = Clock()
    admission = BootAdmission(per_second=1, burst=1, clock=clock)
    assert admission.admit("first") is None
    assert admission.admit("queued") == 1
    clock.now += 0.5
    # A newcomer does not take the token the queued charger was promised: it queues behind it.
    assert admission.admit("newcomer") == 2
    # Coming back far too early is answered with the time still to wait, and keeps the slot.
    assert admission.admit("newcomer") == 2
    clock.now += 0.6
    assert admission.admit("queued") is None
    clock.now += 1.0
    assert admission.admit("newcomer") is None


def test_an_unclaimed_slot_lapses_and_the_wait_is_bounded() -> None:
    clock = Clock()
    admission = BootAdmission(per_second=0.001, burst=1, slot_grace=60, clock=clock)
    assert admission.admit("a") is None
    assert admission.admit("b") == MAX_INTERVAL_SECONDS  # 1,000 s away, capped: it will ask again
    assert admission.waiting == 1
    clock.now += 2000  # b never came back: its slot lapses
    assert admission.admit("c") is None
    assert admission.waiting == 0


def test_a_pace_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        BootAdmission(per_second=0, burst=1)
