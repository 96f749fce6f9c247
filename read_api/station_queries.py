"""Every Redis read station discovery's routes make: nearby search, a station's document, an EVSE's.

Nearby is one EVALSHA: the GEOSEARCH, the facet check per hit and the cards of the first `limit` matches all
run inside Redis, so a query costs one round trip however many stations are in the circle (and sends back
only what the answer shows). The active generation's key prefix is looked up at most once a second: a
rebuild's swap keeps the replaced generation for 5 s, so a reader a second late still finds every key.
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

# KEYS: the generation's position, the cards hash, then per facet a station may fit (any one will do) its GEO
# set and its power sorted set. ARGV: longitude, latitude, radius (m), limit, minimum power (W).
# Returns the position (read with the data, so it is exactly the one the answer reflects) and the stations
# found as one JSON array: each card with its distance spliced in, joined inside Redis, so the API parses
# two values off the wire rather than two per station, and decodes no JSON at all.
#
# Each facet has a GEO set of its own, so a filter costs nothing per station; only a minimum power is
# checked per hit (one ZSCORE). GEOSEARCH scans every point in the geohash cells around the circle, and
# cells are sized to the radius: 5 km in a city is a couple of thousand points, most of them further than the
# nearest 20. So the search starts at an eighth of the radius and doubles it until `limit` stations fit (or
# the radius is reached): when a circle holds `limit` fitting stations they are the nearest ones, so the
# answer is that of one search over the whole radius, for the cost of a small circle where stations are
# dense. With several facets (connector=A&connector=B) each is searched and the nearest of all are kept.
_NEARBY = LuaScript(
    """
local radius = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local minimum = tonumber(ARGV[5])
local step = radius / 8
while true do
  if step > radius then step = radius end
  local found = {}
  local seen = {}
  for k = 3, #KEYS, 2 do
    local hits
    if minimum > 0 then
      hits = redis.call('GEOSEARCH', KEYS[k], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', step, 'm',
                        'ASC', 'WITHDIST')
    else
      hits = redis.call('GEOSEARCH', KEYS[k], 'FROMLONLAT', ARGV[1], ARGV[2], 'BYRADIUS', step, 'm',
                        'ASC', 'COUNT', limit, 'WITHDIST')
    end
    local taken = 0
    for _, hit in ipairs(hits) do
      if not seen[hit[1]] then
        local fits = true
        if minimum > 0 then
          local power = redis.call('ZSCORE', KEYS[k + 1], hit[1])
          fits = power ~= false and tonumber(power) >= minimum
        end
        if fits then
          seen[hit[1]] = true
          found[#found + 1] = {tonumber(hit[2]), hit[1]}
          taken = taken + 1
          if taken >= limit then break end
        end
      end
    end
  end
  if #found >= limit or step >= radius then
    if #KEYS > 4 then
      table.sort(found, function(a, b) return a[1] < b[1] end)
    end
    local items = {}
    for i = 1, math.min(limit, #found) do
      local card = redis.call('HGET', KEYS[2], found[i][2])
      if card then
        local metres = math.floor(found[i][1] + 0.5)
        items[#items + 1] = '{"distanceM":' .. string.format('%d', metres) .. ',' .. string.sub(card, 2)
      end
    end
    return {redis.call('GET', KEYS[1]) or '0', '[' .. table.concat(items, ',') .. ']'}
  end
  step = step * 2
end
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

    def facets(self) -> list[str]:
        """The facets a station must fit (any one of them)."""
        family = keys.AVAILABLE if self.available_only else keys.ALL
        standards: Sequence[str | None] = self.standards or (None,)
        return [keys.facet(family, standard, self.power_type) for standard in standards]


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

    async def nearby(self, query: NearbyQuery) -> tuple[int, bytes]:
        """The model's position, and the stations within the radius that fit the filters, nearest first,
        at most `limit`, as a JSON array of their cards with `distanceM` (metres)."""
        prefix = await self.prefix()
        script_keys = [prefix + keys.POSITION, prefix + keys.CARDS]
        for facet in query.facets():
            script_keys += [prefix + keys.geo(facet), prefix + keys.match(facet)]
        arguments: list[str | int] = [
            repr(query.longitude),
            repr(query.latitude),
            repr(query.radius_m),
            query.limit,
            repr(query.min_power_w),
        ]
        try:
            position, stations = await self._redis.evalsha(
                _NEARBY.sha, len(script_keys), *script_keys, *arguments
            )
        except NoScriptError:  # first use on this server, or Redis restarted
            await self._redis.script_load(_NEARBY.source)
            position, stations = await self._redis.evalsha(
                _NEARBY.sha, len(script_keys), *script_keys, *arguments
            )
        return int(position), _bytes(stations)

    async def station(self, station_id: str) -> tuple[int, bytes | None]:
        """The model's position and the station's OCPI Location document (None: unknown or not visible)."""
        return await self._document(keys.doc(station_id))

    async def evse(self, uid: str) -> tuple[int, bytes | None]:
        """The model's position and the EVSE's document with its station's summary (None: unknown or not
        visible)."""
        return await self._document(keys.evse(uid))

    async def _document(self, key: str) -> tuple[int, bytes | None]:
        prefix = await self.prefix()
        # One MGET: the document and the position of the same generation, read together.
        position, value = await self._redis.mget(prefix + keys.POSITION, prefix + key)
        return int(position or 0), None if value is None else _bytes(value)


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
