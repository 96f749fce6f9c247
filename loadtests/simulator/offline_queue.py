"""Transaction-related messages in chronological order: held while offline, replayed in order after reconnect.

OCPP 1.6 section 3.7 (and 2.0.1's E04): a charger queues StartTransaction, StopTransaction and periodic
MeterValues (2.0.1: TransactionEvent) while it cannot reach the CSMS and delivers them oldest first, each with
the timestamp of the moment it describes; new transaction-related messages wait behind the queue even when
online, so the same queue carries them all. When storage runs out, periodic meter values go first; starts
and stops stay.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from loadtests.simulator.frames import Payload
    from loadtests.simulator.session import Session


class QueuedMessage:
    __slots__ = ("action", "attempts", "not_before", "offline", "payload", "session")

    def __init__(self, action: str, payload: Payload, session: Session | None, offline: bool) -> None:
        self.action = action
        self.payload = payload
        #: The session the message belongs to: 1.6 fills in its transactionId when the message is sent, since
        #: a start queued offline learns its id only when replayed.
        self.session = session
        self.offline = offline
        self.attempts = 0
        self.not_before = 0.0


class OfflineQueue:
    """A FIFO with a soft limit; the deque is created on first use so idle chargers stay small."""

    __slots__ = ("_items", "dropped", "limit")

    def __init__(self, limit: int) -> None:
        self._items: deque[QueuedMessage] | None = None
        self.limit = limit
        self.dropped = 0

    def __len__(self) -> int:
        return 0 if self._items is None else len(self._items)

    def push(self, message: QueuedMessage, *, droppable: bool) -> bool:
        """Append a message; a droppable one (a periodic meter value) is refused once the queue is full."""
        items = self._items
        if items is None:
            items = self._items = deque()
        elif droppable and len(items) >= self.limit:
            self.dropped += 1
            return False
        items.append(message)
        return True

    def peek(self) -> QueuedMessage | None:
        return self._items[0] if self._items else None

    def pop(self) -> QueuedMessage:
        assert self._items, "pop from an empty offline queue"
        return self._items.popleft()

    def failed(self, now: float, max_attempts: int, retry_interval: float) -> bool:
        """The head failed to be processed (CALLERROR or timeout): retry later, or drop it after max_attempts.

        Returns True when the message was dropped. The n-th retry waits n * retry_interval (OCPP 1.6 3.7.1).
        """
        head = self.peek()
        assert head is not None, "no message to retry"
        head.attempts += 1
        if head.attempts >= max_attempts:
            self.pop()
            self.dropped += 1
            return True
        head.not_before = now + retry_interval * head.attempts
        return False

    def __iter__(self) -> Iterator[QueuedMessage]:
        return iter(()) if self._items is None else iter(self._items)
