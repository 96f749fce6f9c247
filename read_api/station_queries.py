"""Every Redis read station discovery's routes make: nearby search, a station's document, an EVSE's.

Nearby is one EVALSHA: GEOSEARCH, the facet check per hit and the cards of the first `limit` matches all run
inside Redis, so a query costs one round trip however many stations are in the circle (and sends back only
what the answer shows). The active generation's key prefix is looked up at most once a second: a rebuild's
swap keeps the replaced generation for 5 s, so a reader a second late still finds every key it names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from csms.redis_support import LuaScript
from projections import station_keys as keys
from projections.redis_target import active_prefix

# KEYS: the GEO index, the cards hash, then the facet sorted sets a station may match in (any one will do).
# ARGV: longitude, latitude, radius (m), limit, minimum power (W), "1" when any filter applies.
# Without filters every indexed station qualifies (the projector indexes only stations with EVSEs), so
# GEOSEARCH's own COUNT stops at `limit`; with filters the hits are walked nearest first until `limit` fit.
_NEARBY = LuaScript(
    """
local filtered = ARGV[6] == '1'
local limit = tonumber(ARGV[4])
local hits
if filtered then
  hits = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', ARGV[3], 'm',
                    'ASC', 'WITHDIST')
else
  hits = redis.call('GEOSEARCH', KEYS[1], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', ARGV[3], 'm',
                    'ASC', 'COUNT', limit, 'WITHDIST')
end
local minimum = tonumber(ARGV[5])
local found = {}
local count = 0
for _, hit in ipairs(hits) do
  local fits = not filtered
  if filtered then
    for k = 3, #KEYS do
      local power = redis.call('ZSCORE', KEYS[k], hit[1])
      if power and tonumber(power) >= minimum then
        fits = true
        break
      end
    end
  end
  if fits then
    local card = redis.call('HGET', KEYS[2], hit[1])
    if card then
      found[#found + 1] = hit[2]
      found[#found + 1] = card
      count = count + 1
      if count >= limit then break end
    end
  end
end
return found
"""
)


@dataclass(frozen=True, slots=True)
class NearbyQuery:
    latitude: float
    longitude: float
    radius_m: float
    standards: tuple[str, ...] = ()  # any of these (OCPI ConnectorType values); empty: any standard
    power_type: str | None = None
    min_power_w: float = 0.0
    available_only: bool = False
    limit: int = 20

    @property
    def filtered(self) -> bool:
        return bool(self.standards or self.power_type or self.min_power_w > 0 or self.available_only)

    def facet_keys(self) -> list[str]:
        """The `match:` sorted sets a station must have a high enough score in (any one of them)."""
        family = keys.AVAILABLE if self.available_only else keys.ALL
        standards: Sequence[str | None] = self.standards or (None,)
        return [keys.match(family, keys.facet(standard, self.power_type)) for standard in standards]


@dataclass(frozen=True, slots=True)
class NearbyHit:
    distance_m: float
    card: bytes  # the station's card JSON, as the projector wrote it


class StationQueries:
    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        *,
        prefix_ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = redis
        self._key_prefix = key_prefix
        self._prefix_ttl = prefix_ttl
        self._clock = clock
        self._prefix = ""
        self._prefix_read_at = -float("inf")

    async def prefix(self) -> str:
        """The active generation's key prefix, read again once it is `prefix_ttl` seconds old."""
        now = self._clock()
        if now - self._prefix_read_at > self._prefix_ttl:
            self._prefix = await active_prefix(self._redis, self._key_prefix, keys.NAME)
            self._prefix_read_at = now
        return self._prefix

    async def nearby(self, query: NearbyQuery) -> list[NearbyHit]:
        """Stations within the radius that fit the filters, nearest first, at most `limit`."""
        prefix = await self.prefix()
        script_keys = [prefix + keys.GEO, prefix + keys.CARDS]
        script_keys += [prefix + key for key in query.facet_keys()]
        arguments: list[str | int] = [
            repr(query.longitude),
            repr(query.latitude),
            repr(query.radius_m),
            query.limit,
            repr(query.min_power_w),
            "1" if query.filtered else "0",
        ]
        try:
            found = await self._redis.evalsha(_NEARBY.sha, len(script_keys), *script_keys, *arguments)
        except NoScriptError:  # first use on this server, or Redis restarted
            await self._redis.script_load(_NEARBY.source)
            found = await self._redis.evalsha(_NEARBY.sha, len(script_keys), *script_keys, *arguments)
        return [NearbyHit(float(found[i]), _bytes(found[i + 1])) for i in range(0, len(found), 2)]

    async def station(self, station_id: str) -> bytes | None:
        """The station's OCPI Location document; None when unknown or not visible."""
        value = await self._redis.get(await self.prefix() + keys.doc(station_id))
        return None if value is None else _bytes(value)

    async def evse(self, uid: str) -> bytes | None:
        """The EVSE's document with its station's summary; None when unknown or not visible."""
        value = await self._redis.get(await self.prefix() + keys.evse(uid))
        return None if value is None else _bytes(value)


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
