"""AppendOnly: an immutable sequence whose views share storage without ever seeing each other's items."""

from __future__ import annotations

import copy

import pytest

from csms.domain.append_only import AppendOnly


def test_extending_returns_a_longer_sequence_and_leaves_the_original_alone() -> None:
    empty: AppendOnly[int] = AppendOnly()
    one = empty.extended([1])
    three = one.extended([2, 3])
    assert (list(empty), list(one), list(three)) == ([], [1], [1, 2, 3])
    assert (len(one), len(three)) == (1, 3)
    assert (three[0], three[-1], three[1:]) == (1, 3, (2, 3))
    with pytest.raises(IndexError):
        one[1]
    with pytest.raises(IndexError):
        one[-2]


def test_views_that_branch_from_one_state_never_see_each_others_items() -> None:
    base = AppendOnly([1, 2])
    left = base.extended([3])  # grows the shared storage
    right = base.extended([4])  # the storage is past `base` now: copies its prefix
    assert list(left) == [1, 2, 3]
    assert list(right) == [1, 2, 4]
    assert list(base) == [1, 2]
    assert list(left.extended([5])) == [1, 2, 3, 5]
    assert list(right.extended([6])) == [1, 2, 4, 6]
    assert (list(left), list(right)) == ([1, 2, 3], [1, 2, 4])


def test_extending_the_newest_view_appends_in_place() -> None:
    base = AppendOnly([1])
    grown = base.extended([2])
    assert grown._items is base._items  # no copy of what came before
    assert base.extended([]) is base


def test_it_compares_hashes_and_copies_as_its_items() -> None:
    sequence = AppendOnly([1]).extended([2])
    assert sequence == AppendOnly([1, 2]) == (1, 2)
    assert sequence != AppendOnly([1])
    assert sequence != (1,)
    assert hash(sequence) == hash((1, 2))
    assert copy.deepcopy(sequence) == sequence
    assert repr(sequence) == "AppendOnly([1, 2])"
