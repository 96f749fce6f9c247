"""CSMS -> charger commands, delivered to whichever gateway instance holds the charger's socket.

Each gateway process owns the sockets it accepted; the write API may run anywhere. So a command goes through
Redis: a registry says which instance holds each charger, the request goes onto that instance's stream, the
instance makes the OCPP call on its socket and pushes the answer onto a reply list the sender is blocked on.
On one machine several processes take the same path, so it is always exercised.

Key layout (every key starts with the deployment's key prefix):

- `{prefix}charger-instance:{charge_point_id}`: string, the id of the instance holding the socket. Set on
  connect (`claim`: the newest connection wins, wherever it is), refreshed every third of `registry_ttl` by
  the owner, deleted on disconnect only if it still names this instance (`release`, a compare-and-delete in
  Lua), so a connection that was replaced elsewhere cannot unregister its successor. If an instance dies, its
  entries expire after `registry_ttl` and its chargers read as offline.
- `{prefix}commands:{instance_id}`: stream of requests for that instance, field `request`: JSON with `id`,
  `charge_point_id`, `action`, `payload`, `deadline` (Unix time) and `reply_to` (the sender's instance id).
  Trimmed to about `stream_maxlen`, and expires `stream_ttl` after the last request, so a dead instance's
  stream disappears.
- `{prefix}replies:{instance_id}`: stream of answers for requests that instance sent, field `reply`: JSON with
  the request's `id` and its `outcome` (a `CallOutcome`). Trimmed and expiring as the request streams are.

A send is one round trip: a Lua script reads the charger's registry entry and appends the request to its
owner's stream (the stream's key is made in the script from the owner it read, so this layout needs a single
Redis server or a primary with replicas, not Redis Cluster). Each instance reads its own reply stream with
one blocking XREAD at a time and hands each answer to the call waiting for it: the answers to many calls in
flight arrive together, on one connection, instead of a blocked connection per call.

Why streams rather than Pub/Sub: a published message is lost if the subscriber is reconnecting at that
instant. A stream entry waits for its reader's next XREAD, so a brief hiccup delays a command or its answer
instead of losing it, and an answer that comes before the sender reads is still there when it does. Requests
carry their deadline: one the owner picks up too late is answered `TIMED_OUT` without reaching the charger,
because a remote start that lands after the caller gave up is worse than none. Deadlines are wall-clock
times, so instances need synchronised clocks (NTP), as they do for event timestamps anyway. No consumer
group: a stream has exactly one reader, its instance, and nothing is redelivered after a crash (the caller
has timed out by then).

Redis errors while sending propagate (`redis.exceptions.RedisError`): Redis is down, which the caller should
report as such. At most one call in flight per charger is the connection's business, not the router's.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, cast

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from csms.redis_support import CoalescedPipeline, LuaScript, run_pipeline, stop_task
from write_api.ocpp.outcome import CallOutcome

_log = logging.getLogger(__name__)

DEFAULT_REGISTRY_TTL_SECONDS: Final = 30.0
_BACKSTOP_SECONDS: Final = 0.5
"""Slack before a local cancel overrides a call's own deadline (a local call that hangs regardless)."""


class LocalCalls(Protocol):
    """The gateway's side: make an OCPP call on a socket this instance holds."""

    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        within: float,
    ) -> CallOutcome:
        """Send the CALL and wait up to `within` seconds for its answer; `CallOutcome.offline()` if this
        instance holds no connection to the charger."""
        ...


# KEYS: registry entry. ARGV: instance id. 1: deleted; 0: it names another instance (or nothing), left alone.
_RELEASE = LuaScript(
    """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
)

# KEYS: registry entries. ARGV: instance id, ttl ms. Per entry, 1: still ours (re-set if it had expired); 0:
# another's now. Many entries per call: a call each cost the gateway about 15 ms of CPU per thousand chargers,
# in one piece while redis-py packed a fleet's calls.
_REFRESH = LuaScript(
    """
local ours = {}
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    ours[i] = 1
  elseif owner == false then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    ours[i] = 1
  else
    ours[i] = 0
  end
end
return ours
"""
)

# Registry entries per refresh call: the event loop gets a turn between calls.
_REFRESH_CHUNK = 1000

# KEYS: the charger's registry entry. ARGV: the sender's instance id, the request, the request streams' key
# prefix, their length bound and their TTL in ms. Returns the owner's id, or nil when no instance holds the
# charger; the request is appended to the owner's stream unless the owner is the sender itself.
_SUBMIT = LuaScript(
    """
local owner = redis.call('GET', KEYS[1])
if not owner or owner == ARGV[1] then
  return owner
end
local stream = ARGV[3] .. owner
redis.call('XADD', stream, 'MAXLEN', '~', ARGV[4], '*', 'request', ARGV[2])
redis.call('PEXPIRE', stream, ARGV[5])
return owner
"""
)


class CommandRouter:
    """Send commands to chargers wherever they are connected, and serve this instance's share of them.

    The gateway calls `claim` when a charger's connection is established and `release` when it closes; the
    write API calls `send`. `start()` runs the request consumer and the registry refresher; `close()` stops
    them and releases every charger this instance still holds.
    """

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        instance_id: str,
        local: LocalCalls,
        registry_ttl: float = DEFAULT_REGISTRY_TTL_SECONDS,
        *,
        max_concurrency: int = 1000,
        read_block: float = 1.0,
        stream_maxlen: int = 10_000,
        stream_ttl: float = 300.0,
    ) -> None:
        if registry_ttl <= 0 or max_concurrency <= 0 or read_block <= 0 or stream_ttl <= 0:
            raise ValueError("TTLs, concurrency and the read block must be greater than zero")
        self._redis = redis
        self._prefix = key_prefix
        self.instance_id = instance_id
        self._local = local
        self._registry_ttl = registry_ttl
        self._registry_ttl_ms = max(1, round(registry_ttl * 1000))
        # A blocking read must end well inside the client's socket timeout, or the read fails instead.
        socket_timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        if isinstance(socket_timeout, int | float) and socket_timeout > 0:
            read_block = min(read_block, socket_timeout / 2)
        self._read_block_ms = max(1, round(read_block * 1000))
        self._stream_maxlen = stream_maxlen
        self._stream_ttl_ms = max(1, round(stream_ttl * 1000))
        self._slots = asyncio.Semaphore(max_concurrency)
        self._claimed: set[str] = set()
        self._claims = CoalescedPipeline(redis, transaction=False)  # a storm's claims, a batch per round trip
        self._replies = CoalescedPipeline(redis, transaction=False)  # answers to senders, likewise
        self._tasks: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._awaited: dict[str, asyncio.Future[CallOutcome]] = {}  # request id -> its sender's wait
        self._reply_reader: asyncio.Task[None] | None = None

    def _registry_key(self, charge_point_id: str) -> str:
        return f"{self._prefix}charger-instance:{charge_point_id}"

    def _stream_key(self, instance_id: str) -> str:
        return f"{self._prefix}commands:{instance_id}"

    def _replies_key(self, instance_id: str) -> str:
        return f"{self._prefix}replies:{instance_id}"

    # Registry: which instance holds which charger.

    async def claim(self, charge_point_id: str) -> None:
        """This instance now holds the charger's socket; overwrites any other instance's claim."""
        self._claimed.add(charge_point_id)
        key, ttl_ms = self._registry_key(charge_point_id), self._registry_ttl_ms
        await self._claims.execute(lambda pipe: pipe.set(key, self.instance_id, px=ttl_ms))

    async def release(self, charge_point_id: str) -> bool:
        """The charger's socket here closed. Unregisters it only if the registry still names this instance;
        False if it had been claimed elsewhere since (the charger reconnected to another instance)."""
        self._claimed.discard(charge_point_id)
        key = self._registry_key(charge_point_id)
        [deleted] = await run_pipeline(
            self._redis, [_RELEASE], lambda pipe: pipe.evalsha(_RELEASE.sha, 1, key, self.instance_id)
        )
        return bool(deleted)

    async def refresh(self) -> None:
        """Extend the registry entry of every charger held here, a round trip per thousand. An entry that
        expired (Redis restarted, or was unreachable for a TTL) is set again; one another instance claimed
        since is forgotten here, so commands stop going to this instance's stale socket."""
        names = list(self._claimed)
        results: list[Any] = []
        for start in range(0, len(names), _REFRESH_CHUNK):
            results += await self._refresh_entries(
                [self._registry_key(name) for name in names[start : start + _REFRESH_CHUNK]]
            )
        for name, still_ours in zip(names, results, strict=True):
            if not still_ours:
                _log.info(
                    "charger %s was claimed by another instance; no longer routing to it here",
                    name,
                    extra={"charger_id": name},
                )
                self._claimed.discard(name)

    async def _refresh_entries(self, keys: list[str]) -> list[Any]:
        ttl = self._registry_ttl_ms
        [ours] = await run_pipeline(
            self._redis,
            [_REFRESH],
            lambda pipe: pipe.evalsha(_REFRESH.sha, len(keys), *keys, self.instance_id, ttl),
        )
        return cast("list[Any]", ours)

    async def owner(self, charge_point_id: str) -> str | None:
        """The id of the instance holding the charger's socket, per the registry."""
        value = await self._redis.get(self._registry_key(charge_point_id))
        return value if value is None or isinstance(value, str) else value.decode()

    # Sending.

    async def send(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 (travels to the owner as a deadline; a cancel scope cannot)
    ) -> CallOutcome:
        """Make an OCPP call to the charger wherever it is connected; the result comes back within `timeout`
        (plus Redis's timer slack) or is `TIMED_OUT`. `OFFLINE` if no instance holds it."""
        if timeout <= 0:
            return CallOutcome.timed_out()
        if charge_point_id in self._claimed:
            return await self._call_local(charge_point_id, action, payload, timeout)
        deadline = time.time() + timeout
        try:
            async with asyncio.timeout(timeout + _BACKSTOP_SECONDS):
                return await self._send_remote(charge_point_id, action, payload, deadline)
        except TimeoutError:
            return CallOutcome.timed_out()

    async def _send_remote(
        self, charge_point_id: str, action: str, payload: dict[str, Any], deadline: float
    ) -> CallOutcome:
        request_id = uuid.uuid4().hex
        request = orjson.dumps(
            {
                "id": request_id,
                "charge_point_id": charge_point_id,
                "action": action,
                "payload": payload,
                "deadline": deadline,
                "reply_to": self.instance_id,
            }
        )
        # Waiting before sending: the answer may come back before the script's reply does.
        answer: asyncio.Future[CallOutcome] = asyncio.get_running_loop().create_future()
        self._awaited[request_id] = answer
        self._read_replies()
        try:
            [owner] = await run_pipeline(
                self._redis,
                [_SUBMIT],
                lambda pipe: pipe.evalsha(
                    _SUBMIT.sha,
                    1,
                    self._registry_key(charge_point_id),
                    self.instance_id,
                    request,
                    self._stream_key(""),
                    self._stream_maxlen,
                    self._stream_ttl_ms,
                ),
            )
            if owner is None:
                return CallOutcome.offline()
            if _text(owner) == self.instance_id:  # released here a moment ago, or claimed by a racing call
                return await self._call_local(charge_point_id, action, payload, deadline - time.time())
            try:
                async with asyncio.timeout(max(deadline - time.time(), 0)):
                    return await answer
            except TimeoutError:
                return CallOutcome.timed_out()
        finally:
            self._awaited.pop(request_id, None)

    def _read_replies(self) -> None:
        """Start reading this instance's reply stream, unless it is being read already."""
        if self._reply_reader is None or self._reply_reader.done():
            self._reply_reader = asyncio.create_task(
                self._consume_replies(), name=f"command-replies:{self.instance_id}"
            )

    async def _consume_replies(self) -> None:
        await self._follow(self._replies_key(self.instance_id), "command replies", 1000, self._deliver)

    async def _deliver(self, fields: dict[bytes, bytes]) -> None:
        try:
            reply = orjson.loads(fields[b"reply"])
            request_id = str(reply["id"])
            outcome = CallOutcome.from_json(reply["outcome"])
        except (KeyError, TypeError, ValueError) as error:
            _log.warning("dropping a malformed command reply: %r", error)
            return
        answer = self._awaited.pop(request_id, None)
        if answer is not None and not answer.done():  # else its sender stopped waiting
            answer.set_result(outcome)

    async def _call_local(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 (passed on to LocalCalls.call)
    ) -> CallOutcome:
        if timeout <= 0:
            return CallOutcome.timed_out()
        try:
            # The gateway times its calls out itself; this only bounds a call that would hang regardless.
            async with asyncio.timeout(timeout + _BACKSTOP_SECONDS):
                return await self._local.call(charge_point_id, action, payload, timeout)
        except TimeoutError:
            return CallOutcome.timed_out()
        except Exception as error:  # a gateway bug must still give the caller an answer, not hang it
            _log.exception(
                "%s to charger %s failed in the gateway",
                action,
                charge_point_id,
                extra={"charger_id": charge_point_id},
            )
            return CallOutcome.call_error("InternalError", f"the gateway failed to make the call: {error!r}")

    # Serving this instance's requests.

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._consume(), name=f"command-consumer:{self.instance_id}"),
                asyncio.create_task(self._keep_claims(), name=f"command-registry:{self.instance_id}"),
            ]

    async def close(self) -> None:
        """Stop serving requests (calls in flight are abandoned: their senders time out), release every
        charger held here, and delete this instance's request and reply streams."""
        tasks, self._tasks = self._tasks + list(self._in_flight), []
        if self._reply_reader is not None:
            tasks.append(self._reply_reader)
            self._reply_reader = None
        for task in tasks:
            await stop_task(task)
        names, self._claimed = list(self._claimed), set()

        def build(pipe: Pipeline) -> None:
            for name in names:
                pipe.evalsha(_RELEASE.sha, 1, self._registry_key(name), self.instance_id)
            pipe.delete(self._stream_key(self.instance_id), self._replies_key(self.instance_id))

        try:
            await run_pipeline(self._redis, [_RELEASE], build)
        except RedisError as error:
            _log.warning(
                "could not release %d chargers (they expire with the registry TTL): %r", len(names), error
            )

    async def _keep_claims(self) -> None:
        while True:
            await asyncio.sleep(self._registry_ttl / 3)
            try:
                await self.refresh()
            except RedisError as error:
                _log.warning("could not refresh the charger registry: %r", error)

    async def _consume(self) -> None:
        await self._follow(self._stream_key(self.instance_id), "commands", 100, self._start_serving)

    async def _start_serving(self, fields: dict[bytes, bytes]) -> None:
        # Bounded concurrency: when every slot is busy, requests wait in the stream (and are still checked
        # against their deadline when their turn comes).
        await self._slots.acquire()
        task = asyncio.create_task(self._serve(fields))
        self._in_flight.add(task)
        task.add_done_callback(self._served)

    async def _follow(
        self,
        stream: str,
        what: str,
        count: int,
        handle: Callable[[dict[bytes, bytes]], Awaitable[None]],
    ) -> None:
        """Hand each entry of one of this instance's streams to `handle`, in order, until cancelled. Such a
        stream has no other reader and a key new with every process: it is read from its start."""
        last_id: bytes | str = "0-0"
        retry = 0.1
        while True:
            try:
                response: Any = await self._redis.xread(
                    {stream: last_id}, count=count, block=self._read_block_ms
                )
            except RedisTimeoutError:
                continue  # a read the client gave up on (a busy event loop): the entries are still there
            except RedisError as error:
                _log.warning("cannot read %s from Redis, retrying in %.1fs: %r", what, retry, error)
                await asyncio.sleep(retry)
                retry = min(retry * 2, 5.0)
                continue
            retry = 0.1
            streams = response.items() if isinstance(response, dict) else (response or [])
            for _name, entries in streams:
                for entry_id, fields in entries:
                    last_id = entry_id
                    await handle(fields)

    def _served(self, task: asyncio.Task[None]) -> None:
        self._slots.release()
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("serving a command failed", exc_info=task.exception())

    async def _serve(self, fields: dict[bytes, bytes]) -> None:
        try:
            request = orjson.loads(fields[b"request"])
            request_id = str(request["id"])
            charge_point_id = str(request["charge_point_id"])
            action = str(request["action"])
            payload = dict(request["payload"])
            deadline = float(request["deadline"])
            reply_to = str(request["reply_to"])
        except (KeyError, TypeError, ValueError) as error:
            _log.warning("dropping a malformed command request: %r", error)
            return
        remaining = deadline - time.time()
        if remaining <= 0:
            _log.info(
                "%s for charger %s arrived after its deadline: not sent",
                action,
                charge_point_id,
                extra={"charger_id": charge_point_id},
            )
            result = CallOutcome.timed_out()
        else:
            result = await self._call_local(charge_point_id, action, payload, remaining)
        replies = self._replies_key(reply_to)
        reply = orjson.dumps({"id": request_id, "outcome": result.to_json()})

        def send(pipe: Pipeline) -> None:
            pipe.xadd(replies, {"reply": reply}, maxlen=self._stream_maxlen, approximate=True)
            pipe.pexpire(replies, self._stream_ttl_ms)

        try:
            await self._replies.execute(send)
        except RedisError as error:
            _log.warning(
                "could not reply to %s for charger %s: %r",
                action,
                charge_point_id,
                error,
                extra={"charger_id": charge_point_id},
            )


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()
