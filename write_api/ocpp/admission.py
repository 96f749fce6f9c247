"""Admission control for reconnect storms: boots beyond the node's pace are told to come back later.

After a restart or a network outage thousands of chargers reconnect and boot at once. Each accepted
BootNotification costs event-store writes, and each connected charger then sends status and meter values.
Past a configured pace, a boot is answered `Pending` with a randomised retry interval (OCPP 1.6 §4.2 and
2.0.1 B02: the charger retries after `interval` seconds and sends nothing else meanwhile). Pending boots
write nothing, so the node stays responsive for the chargers it already serves, and the storm spreads out.
"""

from __future__ import annotations

import random
import time


class BootAdmission:
    def __init__(
        self,
        per_second: float,
        burst: int,
        retry_after: tuple[int, int] = (10, 60),
        rng: random.Random | None = None,
    ) -> None:
        self._rate = per_second
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = time.monotonic()
        self._retry_after = retry_after
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.pending_answers = 0

    def admit(self) -> int | None:
        """None to accept this boot now; otherwise the interval (seconds) to answer with `Pending`."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        self.pending_answers += 1
        low, high = self._retry_after
        return self._rng.randint(low, high)
