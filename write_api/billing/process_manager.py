"""The billing process manager: follows the log and settles every priced session with Stripe, exactly once.

It is a position-tracked consumer of the event log with one active instance (a Postgres advisory lock held
on a connection of its own; standbys retry and take over within seconds when the holder dies). Sessions are
settled concurrently, but the tracked position only moves past an event once that event's session is
settled and its outcome recorded: a process killed at any point resumes from an event whose outcome is not
yet in the log, finds the attempt recorded before the Stripe call, and repeats it with the same idempotency
key, so nothing is charged twice and nothing is left unpaid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from uuid import UUID

import asyncpg

from csms.domain import DomainError
from csms.eventstore import EventStore, RecordedEvent, TrackingConflictError
from csms.observability.logging import log_context
from write_api.billing import metrics
from write_api.billing.settlement import Settlement
from write_api.billing.stripe_gateway import StripeUnavailable

_log = logging.getLogger(__name__)

CONSUMER = "billing"
TOPICS = (
    "ChargingSession.Priced",  # a session to charge
    "ChargingSession.PaymentAttempted",  # a driver paying again from the app
    "ChargingSession.RefundRequested",  # an operator's refund
)
_LOCK = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))"


class BillingProcessManager:
    def __init__(
        self,
        store: EventStore,
        settlement: Settlement,
        database_url: str,
        *,
        concurrency: int = 16,
        retry_pause: float = 1.0,
        max_retry_pause: float = 30.0,
        standby_retry: float = 2.0,
        lag_interval: float = 1.0,
        consumer: str = CONSUMER,
    ) -> None:
        self._store = store
        self._settlement = settlement
        self._database_url = database_url
        self._concurrency = concurrency
        self._retry_pause = retry_pause
        self._max_retry_pause = max_retry_pause
        self._standby_retry = standby_retry
        self._lag_interval = lag_interval
        self._consumer = consumer
        self._session_locks: dict[UUID, asyncio.Lock] = {}
        self.leading = asyncio.Event()

    async def run(self) -> None:
        """Lead (or stand by) until cancelled."""
        while True:
            connection = await asyncpg.connect(self._database_url)
            try:
                if await connection.fetchval(_LOCK, f"csms.process-manager:{self._consumer}"):
                    _log.info("billing: leading", extra={"consumer": self._consumer})
                    self.leading.set()
                    metrics.ACTIVE.inc()
                    await self._lead(connection)
            except TrackingConflictError:
                _log.warning("billing: another instance moved the position on; standing by")
            finally:
                if self.leading.is_set():
                    metrics.ACTIVE.dec()
                    metrics.LAG_SECONDS.set(0)
                self.leading.clear()
                with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.wait_for(connection.close(), 5.0)  # releases the lock
            await asyncio.sleep(self._standby_retry)

    async def _lead(self, lock_connection: asyncpg.Connection) -> None:
        position = await self._store.load_tracking(self._consumer)
        metrics.POSITION.set(position)
        window: deque[tuple[RecordedEvent, asyncio.Task[None]]] = deque()
        saved = position
        slots = asyncio.Semaphore(self._concurrency)
        saving = asyncio.Lock()

        async def advance() -> None:
            # The position moves past an event only when it and every event before it are settled.
            nonlocal saved
            async with saving:
                done = saved
                while window and window[0][1].done():
                    done = window.popleft()[0].position
                if done > saved:
                    async with self._store.pool.acquire() as connection, connection.transaction():
                        await self._store.save_tracking(connection, self._consumer, done)
                    saved = done
                    metrics.POSITION.set(saved)

        async def report_lag() -> None:
            # A task of its own: with every slot taken by sessions waiting for Stripe, the loop below waits
            # for a slot, and the lag must keep growing meanwhile rather than freeze.
            while True:
                waiting = next((event for event, task in window if not task.done()), None)
                age = 0.0 if waiting is None else time.time() - waiting.recorded_at.timestamp()
                metrics.LAG_SECONDS.set(max(0.0, age))
                await asyncio.sleep(self._lag_interval)

        async def handle(event: RecordedEvent) -> None:
            try:
                # Every line about settling it (retries, Stripe's answers) names the session.
                with log_context(session_id=str(event.stream_id)):
                    await self._settle(event.stream_id)
            finally:
                slots.release()

        reporting = asyncio.create_task(report_lag())
        try:
            async with await self._store.subscribe(
                self._consumer, topics=TOPICS, start_after=position
            ) as subscription:
                while True:
                    batch_task = asyncio.ensure_future(subscription.next_batch())
                    while not batch_task.done():
                        # Keep saving progress (and proving the lock's connection alive) while waiting.
                        await asyncio.wait([batch_task], timeout=0.5)
                        await advance()
                        await lock_connection.execute("SELECT 1", timeout=5.0)
                    for event in batch_task.result():
                        await slots.acquire()
                        window.append((event, asyncio.create_task(handle(event))))
                    await advance()
        finally:
            reporting.cancel()
            for _, task in window:
                task.cancel()
            await asyncio.gather(reporting, *(task for _, task in window), return_exceptions=True)

    async def _settle(self, session_id: UUID) -> None:
        """Settle one session, retrying (with growing pauses) for as long as Stripe or Postgres is down."""
        lock = self._session_locks.setdefault(session_id, asyncio.Lock())
        pause = self._retry_pause
        try:
            async with lock:
                while True:
                    try:
                        await self._settlement.settle(session_id)
                        return
                    except DomainError:
                        # A rule refused what the log asked for: nothing to retry. Leave a trace to act on.
                        metrics.BILLING_ERRORS.inc()
                        _log.exception("billing: session not settled")
                        return
                    except Exception as error:
                        # Stripe or Postgres unreachable, a conflict that outlasted its retries, a bug: the
                        # session keeps the position where it is until it is settled. Money waits; it is
                        # never charged on a guess.
                        level = logging.WARNING if isinstance(error, StripeUnavailable) else logging.ERROR
                        _log.log(
                            level,
                            "billing: will retry",
                            exc_info=level == logging.ERROR,
                            extra={"error": str(error), "pause": pause},
                        )
                        await asyncio.sleep(pause)
                        pause = min(pause * 2, self._max_retry_pause)
        finally:
            if not lock.locked():
                self._session_locks.pop(session_id, None)
