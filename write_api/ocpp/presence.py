"""Which gateway instance holds each charger's socket, since when, and when the charger was last heard from.

Connectivity is not a domain event: it lives in Redis, written by the instance that holds the socket and read
by anyone (the read side, operators). A heartbeat costs no I/O of its own: `seen` updates a dictionary, and a
background flusher writes every pending "last seen" in one pipeline per `flush_interval`, so 10,000 chargers
heartbeating cost one round trip a second, not 10,000.

Key layout (every key starts with the deployment's key prefix):

- `{prefix}presence:{charge_point_id}`: a hash with `instance_id`, `protocol`, `connection_id`, `connected_at`
  and `last_seen` (ISO 8601). It expires `ttl_seconds` after its instance last refreshed it; a live instance
  refreshes all of its chargers every `refresh_interval` (a third of the TTL by default), so the chargers of
  an instance that died without saying goodbye disappear on their own. After a disconnect the hash is a
  tombstone, `connection_id` and `disconnected_at` only, for one TTL: it stops a flush that was already on the
  wire from resurrecting the charger, and `get` reads it as "not connected".
- `{prefix}presence-index`: a sorted set, charge point id -> when its presence expires (epoch ms). Counts the
  connected chargers without a SCAN; members whose time has passed belong to a dead instance and are pruned on
  each full refresh.

Every write after the first is a Lua compare on `connection_id`: a replaced connection (the charger
reconnected, here or on another instance) can neither refresh, overwrite nor delete its successor's presence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from csms.presence_keys import presence_key
from csms.redis_support import CoalescedPipeline, LuaScript, run_pipeline, stop_task

_log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS: Final = 90.0
"""How long a charger stays "connected" after its instance last refreshed it (a crashed instance's chargers
show as connected for at most this long)."""


@dataclass(frozen=True, slots=True)
class PresenceInfo:
    """A connected charger: who holds its socket, over which protocol, since when, last heard from when."""

    charge_point_id: str
    instance_id: str
    protocol: str
    connection_id: str
    connected_at: datetime
    last_seen: datetime


@dataclass(slots=True)
class _LocalConnection:
    protocol: str
    connection_id: str
    connected_at: datetime
    last_seen: datetime


# KEYS: the index, then one presence hash per charger. ARGV: instance id, ttl ms, expires at (epoch ms), and a
# JSON array with five items per charger, in the order of its hash in KEYS: charge point id, protocol,
# connection id, connected at, last seen. Returns, per charger, 1: refreshed (or recreated after it expired);
# 0: not ours any more. One call for many chargers: a script call each cost the gateway 30 ms of CPU per
# thousand chargers in redis-py's argument packing, in one piece on a fleet's full refresh.
_REFRESH = LuaScript(
    """
local instance, ttl, expires_at = ARGV[1], ARGV[2], ARGV[3]
local chargers = cjson.decode(ARGV[4])
local refreshed = {}
for n = 2, #KEYS do
  local i = (n - 2) * 5
  local name, protocol, connection_id = chargers[i + 1], chargers[i + 2], chargers[i + 3]
  local current = redis.call('HGET', KEYS[n], 'connection_id')
  local ours = 1
  if current == false then
    redis.call('HSET', KEYS[n], 'instance_id', instance, 'protocol', protocol, 'connection_id', connection_id,
               'connected_at', chargers[i + 4], 'last_seen', chargers[i + 5])
  elseif current ~= connection_id or redis.call('HEXISTS', KEYS[n], 'disconnected_at') == 1 then
    ours = 0
  else
    redis.call('HSET', KEYS[n], 'last_seen', chargers[i + 5])
  end
  if ours == 1 then
    redis.call('PEXPIRE', KEYS[n], ttl)
    redis.call('ZADD', KEYS[1], expires_at, name)
  end
  refreshed[n - 1] = ours
end
return refreshed
"""
)

# Chargers per refresh call: the event loop gets a turn between calls.
_REFRESH_CHUNK = 1000

# KEYS: presence hash, index. ARGV: connection id, disconnected at, ttl ms, charge point id.
# 1: cleared; 0: the hash belongs to another connection (or is gone), left alone.
_DISCONNECT = LuaScript(
    """
if redis.call('HGET', KEYS[1], 'connection_id') ~= ARGV[1]
   or redis.call('HEXISTS', KEYS[1], 'disconnected_at') == 1 then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'connection_id', ARGV[1], 'disconnected_at', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[4])
return 1
"""
)


class Presence:
    """This instance's chargers' presence in Redis: written on connect and disconnect, batched in between.

    `start()` runs the flusher; `close()` stops it after a last flush. Calls from the connection handlers:
    `connected` after the charger authenticated, `seen` on every frame it sends, `disconnected` when its
    socket closes. Only `get` and `count_connected` are meant for other processes.
    """

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        instance_id: str,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        *,
        flush_interval: float = 1.0,
        refresh_interval: float | None = None,
    ) -> None:
        if ttl_seconds <= 0 or flush_interval <= 0:
            raise ValueError("ttl_seconds and flush_interval must be greater than zero")
        self._redis = redis
        self._prefix = key_prefix
        self._instance_id = instance_id
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._flush_interval = flush_interval
        self._refresh_interval = ttl_seconds / 3 if refresh_interval is None else refresh_interval
        self._local: dict[str, _LocalConnection] = {}
        self._connections = CoalescedPipeline(redis, transaction=True)
        self._pending: set[str] = set()
        """Chargers seen since the last flush; their latest time is in `_local`."""
        self._next_refresh = 0.0
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def _key(self, charge_point_id: str) -> str:
        return presence_key(self._prefix, charge_point_id)

    @property
    def _index(self) -> str:
        return f"{self._prefix}presence-index"

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"presence-flusher:{self._instance_id}")

    async def close(self) -> None:
        """Stop the flusher and write what is pending. The chargers stay present until they disconnect or
        expire: a restart that keeps its sockets is not a disconnect, and a crash is handled by the TTL."""
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        try:
            await self.flush()
        except RedisError as error:
            _log.warning(
                "presence: last flush failed, %d last-seen updates lost: %s", len(self._pending), error
            )

    async def connected(self, charge_point_id: str, protocol: str, connection_id: str, at: datetime) -> None:
        """Record that this instance now holds the charger's socket; replaces any earlier connection's record,
        on whichever instance it was (the newest authenticated connection wins)."""
        local = _LocalConnection(protocol, connection_id, connected_at=at, last_seen=at)
        self._local[charge_point_id] = local
        self._pending.discard(charge_point_id)
        key = self._key(charge_point_id)
        mapping: dict[Any, Any] = self._fields(local)
        expires_at_ms = self._expires_at_ms()

        def build(pipe: Pipeline) -> None:
            pipe.delete(key)
            pipe.hset(key, mapping=mapping)
            pipe.pexpire(key, self._ttl_ms)
            pipe.zadd(self._index, {charge_point_id: expires_at_ms})

        # In a reconnect storm hundreds connect per second: their records go in one MULTI/EXEC per round trip.
        await self._connections.execute(build)

    def seen(self, charge_point_id: str, at: datetime) -> None:
        """The charger sent something: its last-seen time moves forward at the next flush. No I/O."""
        local = self._local.get(charge_point_id)
        if local is None:
            return  # not (or no longer) connected here: a frame racing its connection's close
        if at > local.last_seen:
            local.last_seen = at
        self._pending.add(charge_point_id)

    async def disconnected(self, charge_point_id: str, connection_id: str, at: datetime) -> bool:
        """Clear the charger's presence if `connection_id` is still its connection; False if it was replaced.

        A replaced connection closes after its successor connected, possibly on another instance: its late
        disconnect must leave the new connection's presence alone.
        """
        local = self._local.get(charge_point_id)
        if local is not None and local.connection_id == connection_id:
            del self._local[charge_point_id]
            self._pending.discard(charge_point_id)
        keys = (self._key(charge_point_id), self._index)
        args = (connection_id, at.isoformat(), self._ttl_ms, charge_point_id)
        [cleared] = await run_pipeline(
            self._redis, [_DISCONNECT], lambda pipe: pipe.evalsha(_DISCONNECT.sha, 2, *keys, *args)
        )
        return bool(cleared)

    async def get(self, charge_point_id: str) -> PresenceInfo | None:
        """The charger's presence as last flushed, or None if it is not connected to any live instance."""
        fields = cast("dict[bytes, bytes]", await self._redis.hgetall(self._key(charge_point_id)))
        values = {key.decode(): value.decode() for key, value in fields.items()}
        if "disconnected_at" in values or "instance_id" not in values:
            return None
        return PresenceInfo(
            charge_point_id=charge_point_id,
            instance_id=values["instance_id"],
            protocol=values["protocol"],
            connection_id=values["connection_id"],
            connected_at=datetime.fromisoformat(values["connected_at"]),
            last_seen=datetime.fromisoformat(values["last_seen"]),
        )

    async def count_connected(self) -> int:
        """How many chargers are connected to live instances (the ones of dead instances have expired)."""
        return int(await self._redis.zcount(self._index, self._now_ms(), "+inf"))

    async def flush(self) -> None:
        """Write every pending last-seen time, and when due refresh the TTL of every local charger, in one
        round trip per thousand chargers. On a Redis error the pending updates are kept for the next flush and
        the error raised."""
        async with self._flush_lock:
            now = time.monotonic()
            full = now >= self._next_refresh
            names = set(self._local) if full else self._pending & self._local.keys()
            self._pending = set()
            if not names and not full:
                return
            sent = [(name, self._local[name]) for name in names]
            expires_at = self._expires_at_ms()
            results: list[Any] = []
            try:
                for start in range(0, len(sent), _REFRESH_CHUNK):
                    results += await self._refresh(sent[start : start + _REFRESH_CHUNK], expires_at)
                if full:
                    await self._redis.zremrangebyscore(self._index, "-inf", self._now_ms())
            except BaseException:
                self._pending |= names
                raise
            if full:
                self._next_refresh = now + self._refresh_interval
            for (name, local), refreshed in zip(sent, results, strict=False):
                # 0: the charger reconnected elsewhere (or here, as a newer connection): stop refreshing it.
                if not refreshed and self._local.get(name) is local:
                    del self._local[name]

    async def _refresh(self, chargers: list[tuple[str, _LocalConnection]], expires_at: int) -> list[Any]:
        keys = [self._index, *(self._key(name) for name, _ in chargers)]
        fields: list[str] = []
        for name, local in chargers:
            fields += (
                name,
                local.protocol,
                local.connection_id,
                local.connected_at.isoformat(),
                local.last_seen.isoformat(),
            )
        args = (self._instance_id, self._ttl_ms, expires_at, orjson.dumps(fields))
        [results] = await run_pipeline(
            self._redis, [_REFRESH], lambda pipe: pipe.evalsha(_REFRESH.sha, len(keys), *keys, *args)
        )
        return cast("list[Any]", results)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                await self.flush()
            except RedisError as error:
                if not self._failing:
                    _log.warning(
                        "presence: flush failed, retrying every %.1fs: %s", self._flush_interval, error
                    )
                self._failing = True
            else:
                if self._failing:
                    _log.info("presence: flushing again")
                self._failing = False

    def _fields(self, local: _LocalConnection) -> dict[str, str]:
        return {
            "instance_id": self._instance_id,
            "protocol": local.protocol,
            "connection_id": local.connection_id,
            "connected_at": local.connected_at.isoformat(),
            "last_seen": local.last_seen.isoformat(),
        }

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    def _expires_at_ms(self) -> int:
        return self._now_ms() + self._ttl_ms
