"""An immutable sequence that grows by appending, at the cost of what is appended, not of its length."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class AppendOnly(Sequence[T], Generic[T]):
    """A sequence that never changes; `extended` returns a longer one.

    A charging session records its meter readings one MeterValues at a time: rebuilt as a tuple, every message
    would copy all the readings before it (a session charging 8 hours at 10 s intervals holds about 2,900),
    and each new tuple is a large young object for the garbage collector to walk. Here the views share one
    list and each knows its own length: extending the newest view appends to the list in place; extending an
    older one (a sibling view got there first, say a command that was then not saved) copies its prefix, so
    no view ever sees another's items.
    """

    __slots__ = ("_items", "_length")

    def __init__(self, items: Iterable[T] = ()) -> None:
        self._items: list[T] = list(items)
        self._length = len(self._items)

    @classmethod
    def _view(cls, items: list[T], length: int) -> AppendOnly[T]:
        view: AppendOnly[T] = cls.__new__(cls)
        view._items = items
        view._length = length
        return view

    def extended(self, more: Iterable[T]) -> AppendOnly[T]:
        """This sequence followed by `more`."""
        added = list(more)
        if not added:
            return self
        if len(self._items) == self._length:
            self._items.extend(added)
            return self._view(self._items, self._length + len(added))
        items = self._items[: self._length] + added
        return self._view(items, len(items))

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...

    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            return tuple(self._items[position] for position in range(self._length)[index])
        position = index + self._length if index < 0 else index
        if not 0 <= position < self._length:
            raise IndexError("index out of range")
        return self._items[position]

    def __iter__(self) -> Iterator[T]:
        return islice(self._items, self._length)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AppendOnly):
            return self._length == other._length and tuple(self) == tuple(other)
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"AppendOnly({list(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (AppendOnly, (tuple(self),))
