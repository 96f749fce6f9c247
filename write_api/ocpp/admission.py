"""Admission control for reconnect storms: boots beyond the node's pace are told when to come back.

After a restart or a network outage thousands of chargers reconnect and boot at once. Each accepted
BootNotification costs event-store writes, and each connected charger then sends status and meter values.
Past a configured pace, a boot is answered `Pending` with a retry interval (OCPP 1.6 §4.2 and 2.0.1 B02:
the charger retries after `interval` seconds and sends nothing else meanwhile). Pending boots write nothing,
so the node stays responsive for the chargers it already serves.

The interval is not a guess: a Pending charger is given the next free slot at the pace (a token bucket whose
tokens may be promised ahead, so the balance goes negative), and its boot is accepted when it comes back for
it, whoever else is booting then. So a storm of N boots at a pace of R per second is through in about N / R
seconds, with every charger told when its turn is; a fixed random interval (10-60 s) left the last chargers
waiting a minute on a node that had long been idle. A charger that comes back early hears Pending again with
the time still to wait; a slot not claimed within `slot_grace` seconds lapses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

MAX_INTERVAL_SECONDS = 600
"""Never tell a charger to wait longer than this, however long the queue (it then comes back and asks)."""


class BootAdmission:
    def __init__(
        self,
        per_second: float,
        burst: int,
        *,
        slot_grace: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("the boot pace and burst must be positive")
        self._rate = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._updated = clock()
        self._slot_grace = slot_grace
        self._slots: dict[str, float] = {}  # charge point id -> when its promised slot comes
        self._last_prune = self._updated
        self.pending_answers = 0

    def admit(self, charge_point_id: str) -> int | None:
        """None to accept this boot now; otherwise the interval (whole seconds) to answer `Pending` with."""
        now = self._clock()
        self._refill(now)
        slot = self._slots.get(charge_point_id)
        if slot is not None:
            if now >= slot - 1.0:  # its turn (intervals are whole seconds: allow the rounding)
                del self._slots[charge_point_id]
                return None  # its token was taken when the slot was promised
            self.pending_answers += 1
            return _interval(slot - now)
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        # Promise the next free slot: the token it will use is taken now, so later boots queue behind it.
        self._tokens -= 1
        slot = now + (1 - self._tokens) / self._rate - 1 / self._rate
        self._slots[charge_point_id] = slot
        self.pending_answers += 1
        return _interval(slot - now)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if now - self._last_prune >= self._slot_grace:
            self._last_prune = now
            lapsed = [cp for cp, slot in self._slots.items() if now > slot + self._slot_grace]
            for charge_point_id in lapsed:
                del self._slots[charge_point_id]

    @property
    def waiting(self) -> int:
        """Chargers holding a promised slot."""
        return len(self._slots)


def _interval(seconds: float) -> int:
    return min(MAX_INTERVAL_SECONDS, max(1, math.ceil(seconds)))
