"""The app's drivers in benchmarks: register, save a card, start and stop sessions over the write API, and
learn of Started and Priced from one event-store subscription (NOTIFY-driven), not by polling an API.

`csms bench lifecycle` and `csms bench mixed` drive sessions with these, and `csms bench locust-setup`
prepares the locust files' drivers with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import aiohttp

from csms.eventstore import EventStore, create_pool
from csms.eventstore.subscription import Subscription
from csms.localstripe import LOCALSTRIPE_PUBLISHABLE_KEY
from loadtests.scratch import Channel

T = TypeVar("T")

STARTED: Final = "ChargingSession.Started"
PRICED: Final = "ChargingSession.Priced"
PASSWORD: Final = "benchmark driver passphrase"  # noqa: S105 (scratch accounts, dropped with the database)
# After a failed call a driver pauses this long, so that a failing system is not also hammered.
ERROR_PAUSE_SECONDS: Final = 0.5
# How long a driver waits for Started or Priced before it counts an error and moves on.
_EVENT_TIMEOUT_SECONDS = 30.0
# The drivers' subscription wakes on every commit's NOTIFY; gathering them for this long keeps its reads
# (two statements per wake) from weighing on the Postgres being measured. It delays what the drivers see
# by at most this much.
_SUBSCRIPTION_GATHER_SECONDS = 0.02
_STOP_ATTEMPTS = 5
# Registration and login each cost an argon2 hash in the write API (two at a time): more in flight only queue.
_SIGN_UP_CONCURRENCY = 4


class SessionWatch:
    """Which sessions have reached Started and Priced, from one subscription to the event store."""

    def __init__(self) -> None:
        self._seen: dict[tuple[uuid.UUID, str], float] = {}
        self._waiters: dict[tuple[uuid.UUID, str], asyncio.Future[float]] = {}

    async def follow(self, subscription: Subscription) -> None:
        async with subscription as events:
            while True:
                batch = await events.next_batch()
                now = time.perf_counter()
                for event in batch:
                    key = (event.stream_id, event.topic)
                    self._seen[key] = now
                    waiter = self._waiters.pop(key, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(now)
                await asyncio.sleep(_SUBSCRIPTION_GATHER_SECONDS)

    async def wait(self, session_id: uuid.UUID, topic: str, within: float) -> float:
        """When the drivers' subscription saw `topic` on the session (perf_counter); TimeoutError if not."""
        key = (session_id, topic)
        seen = self._seen.get(key)
        if seen is not None:
            return seen
        waiter = self._waiters.setdefault(key, asyncio.get_running_loop().create_future())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), within)
        finally:
            if not waiter.done():
                self._waiters.pop(key, None)


@dataclass
class Window:
    """The measurement window on the drivers' clock: set by the benchmark's "window" and "stop" messages."""

    opened: float = math.inf
    closed: float = math.inf

    def holds(self, at: float) -> bool:
        return self.opened <= at < self.closed

    @property
    def closing(self) -> bool:
        return self.closed != math.inf


@dataclass
class DriverFigures:
    """What the drivers measured; latencies are of calls made (or sessions completed) inside the window."""

    start_s: list[float] = field(default_factory=list)
    start_at: list[float] = field(default_factory=list)
    """When each of `start_s` was sent, in seconds into the window."""
    stop_s: list[float] = field(default_factory=list)
    to_started_s: list[float] = field(default_factory=list)
    to_priced_s: list[float] = field(default_factory=list)
    session_s: list[float] = field(default_factory=list)
    priced_at: list[float] = field(default_factory=list)
    """When each session completed in the window was seen priced, in seconds into the window."""
    calls: list[tuple[str, str, float, float]] = field(default_factory=list)
    """(charger, "start" or "stop", sent, answered) of the window's calls (perf_counter)."""
    completed_in_window: int = 0
    completed_total: int = 0
    started_total: int = 0
    errors: Counter[str] = field(default_factory=Counter)


async def post(
    http: aiohttp.ClientSession, url: str, body: dict[str, str], headers: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """(status, JSON body): the status as text, or the exception's name when no answer came."""
    try:
        async with http.post(url, json=body, headers=headers) as response:
            document = await response.json(content_type=None)
            return str(response.status), document if isinstance(document, dict) else {}
    except (aiohttp.ClientError, TimeoutError) as error:
        return type(error).__name__, {}


async def register_and_log_in(http: aiohttp.ClientSession, api: str, email: str) -> str:
    """Register a driver and log in: its access token."""
    status, body = await post(
        http,
        f"{api}/auth/register",
        {"email": email, "password": PASSWORD, "displayName": "Benchmark driver"},
        {},
    )
    if status != "201":
        raise RuntimeError(f"registering {email}: {status} {body}")
    status, body = await post(http, f"{api}/auth/login", {"email": email, "password": PASSWORD}, {})
    if status != "200":
        raise RuntimeError(f"logging in {email}: {status} {body}")
    return str(body["accessToken"])


async def add_card(http: aiohttp.ClientSession, api: str, stripe_url: str, token: str) -> None:
    """Save a test card as the app does: tokenized at Stripe with the publishable key, its id sent to us."""
    async with http.post(
        f"{stripe_url}/v1/payment_methods",
        data={"type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
              "card[exp_year]": "2034", "card[cvc]": "123"},
        headers={"Authorization": f"Bearer {LOCALSTRIPE_PUBLISHABLE_KEY}"},
    ) as response:  # fmt: skip
        if response.status != 200:
            raise RuntimeError(f"tokenizing a card: {response.status} {await response.text()}")
        method_id = str((await response.json())["id"])
    status, body = await post(
        http,
        f"{api}/me/payment-methods",
        {"paymentMethodId": method_id},
        {"Authorization": f"Bearer {token}"},
    )
    if status != "201":
        raise RuntimeError(f"saving a card: {status} {body}")


async def drive_session(
    http: aiohttp.ClientSession,
    api: str,
    token: str,
    charger_id: str,
    watch: SessionWatch,
    window: Window,
    figures: DriverFigures,
    *,
    charge_seconds: float,
    charging: Callable[[uuid.UUID, int], Awaitable[None]] | None = None,
) -> None:
    """One session on `charger_id`: start, wait for Started, charge (sleep `charge_seconds`, or run
    `charging(session_id, position)` with the start answer's log position), stop, wait for Priced; what
    happened goes into `figures`."""
    authorization = f"Bearer {token}"
    errors = figures.errors
    began = time.perf_counter()
    status, body = await post(
        http,
        f"{api}/sessions/start",
        {"chargerId": charger_id},
        # As the app sends it: a retried start must not start a second session.
        {"Authorization": authorization, "Idempotency-Key": str(uuid.uuid4())},
    )
    answered = time.perf_counter()
    if window.holds(began):
        figures.start_s.append(answered - began)
        figures.start_at.append(began - window.opened)
        figures.calls.append((charger_id, "start", began, answered))
    # STARTED: the charger's StartTransaction was recorded before the write API recorded its answer.
    if status != "201" or body.get("status") not in ("ACCEPTED", "STARTED"):
        detail = body.get("status") if status == "201" else body.get("title", "")
        errors[f"start {status} {detail}".strip()] += 1
        await asyncio.sleep(ERROR_PAUSE_SECONDS)
        return
    figures.started_total += 1
    session_id = uuid.UUID(body["sessionId"])
    position = int(body.get("position") or 0)
    try:
        started = await watch.wait(session_id, STARTED, _EVENT_TIMEOUT_SECONDS)
    except TimeoutError:
        errors[f"{STARTED} not recorded within {_EVENT_TIMEOUT_SECONDS:.0f} s"] += 1
        started = time.perf_counter()
    if window.holds(began):
        # From the call, not its answer: the charger's start is often recorded before the answer.
        figures.to_started_s.append(started - began)
    if charging is None:
        await asyncio.sleep(charge_seconds)
    else:
        await charging(session_id, position)
    # A failed stop is retried, as the app would: a session left running would hold the charger.
    first_stop = time.perf_counter()
    for _ in range(_STOP_ATTEMPTS):
        stopping = time.perf_counter()
        status, body = await post(
            http,
            f"{api}/sessions/stop",
            {"sessionId": str(session_id)},
            {"Authorization": authorization},
        )
        stopped = time.perf_counter()
        if window.holds(stopping):
            figures.stop_s.append(stopped - stopping)
            figures.calls.append((charger_id, "stop", stopping, stopped))
        if status == "200":
            break
        errors[f"stop {status} {body.get('title', '')}".strip()] += 1
        await asyncio.sleep(ERROR_PAUSE_SECONDS)
    try:
        priced = await watch.wait(session_id, PRICED, _EVENT_TIMEOUT_SECONDS)
    except TimeoutError:
        errors[f"{PRICED} not recorded within {_EVENT_TIMEOUT_SECONDS:.0f} s"] += 1
        return
    figures.completed_total += 1
    if window.holds(priced):
        figures.completed_in_window += 1
        figures.to_priced_s.append(priced - first_stop)
        figures.session_s.append(priced - began)
        figures.priced_at.append(priced - window.opened)


@dataclass
class Pace:
    """Starts due in the measurement window at the asked rate, and those skipped because every driver's
    charger was busy (the asked rate was then not delivered)."""

    asked: int = 0
    skipped: int = 0


async def paced_sessions(
    channel: Channel,
    rate: float,
    free: deque[T],
    session: Callable[[T], Awaitable[None]],
    window: Window,
) -> tuple[Pace, set[asyncio.Task[None]]]:
    """Open-loop load, from the benchmark's "go" (already received) until its "stop": every 1/`rate` s a
    session is started on a free driver (`free`, given back when its session ends), whether or not the
    earlier ones are done, as phones arrive at chargers. "window" opens the measurement window (the counts
    start again). Returns the window's counts and the sessions still under way, to drain."""
    sessions: set[asyncio.Task[None]] = set()
    pace = Pace()

    async def one(driver: T) -> None:
        try:
            await session(driver)
        finally:
            free.append(driver)

    message = asyncio.ensure_future(channel.recv())  # "window", then "stop"
    due = time.perf_counter()
    while True:
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.wait((message,), timeout=wait)
        if message.done():
            kind, _ = message.result()
            if kind == "stop":
                break
            window.opened = time.perf_counter()  # the window opens: count from here
            pace = Pace()
            message = asyncio.ensure_future(channel.recv())
            continue
        due += 1.0 / rate
        pace.asked += 1
        if not free:
            pace.skipped += 1
            continue
        task = asyncio.create_task(one(free.popleft()))
        sessions.add(task)
        task.add_done_callback(sessions.discard)
    window.closed = time.perf_counter()
    return pace, sessions


@dataclass(frozen=True, slots=True)
class SignedUp:
    email: str
    token: str
    """An access token (CSMS_AUTH_ACCESS_TOKEN_TTL_SECONDS long)."""


async def sign_up_drivers(
    http: aiohttp.ClientSession, api: str, stripe_url: str, count: int, run_id: str
) -> list[SignedUp]:
    """`count` drivers registered and logged in over the API, each with a test card saved (password
    `PASSWORD`), as the app's users are before their first charge."""
    limit = asyncio.Semaphore(_SIGN_UP_CONCURRENCY)

    async def sign_up(index: int) -> SignedUp:
        email = f"driver-{index}-{run_id}@bench.example.com"
        async with limit:
            token = await register_and_log_in(http, api, email)
            await add_card(http, api, stripe_url, token)
        return SignedUp(email, token)

    return await asyncio.gather(*(sign_up(i) for i in range(count)))


@contextlib.asynccontextmanager
async def watching_sessions(database_url: str, consumer: str) -> AsyncIterator[SessionWatch]:
    """A `SessionWatch` following the log from now on, under the subscription name `consumer`."""
    pool = await create_pool(database_url, max_size=2, min_size=1)
    store = EventStore(pool, database_url)
    follower: asyncio.Task[None] | None = None
    try:
        watch = SessionWatch()
        head = await store.head_position()
        subscription = await store.subscribe(consumer, topics=[STARTED, PRICED], start_after=head)
        follower = asyncio.create_task(watch.follow(subscription))
        yield watch
    finally:
        if follower is not None:
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follower
        await store.close()
        await pool.close()


async def drain(tasks: Collection[asyncio.Task[Any]], within: float, figures: DriverFigures) -> None:
    """Let the sessions under way finish for up to `within` seconds; those still going, and any that
    crashed, count as errors."""
    if not tasks:
        return
    _, late = await asyncio.wait(tasks, timeout=within)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if late:
        figures.errors[f"sessions still under way {within:.0f} s after the window"] += len(late)
    crashed = [t.exception() for t in tasks if not t.cancelled() and t.exception() is not None]
    if crashed:
        figures.errors[f"driver crashed: {crashed[0]!r}"] += len(crashed)
