"""Where a Redis projector's read model lives: generation key spaces, each with its position beside its data.

Keys (with the configured prefix, `csms:` by default):
- `rm:<name>:active`: the generation serving reads; `rm:<name>:rebuilding`: the one a rebuild is filling;
  `rm:<name>:generations`: the last generation number handed out.
- `rm:<name>:g<n>:position`: the last log position applied to generation n, and under `rm:<name>:g<n>:` the
  projector's own keys.

A batch runs as WATCH (generation pointer, position) -> check -> MULTI -> the projector's writes -> SET
position -> EXEC. If the pointer moved (a swap) or the position is not where this writer left it (another
instance got ahead, or Redis lost its data), EXEC does not happen and the runner reloads its generation and
position. An empty Redis (a restart without persistence) reads as generation 1 at position 0: the model
replays itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from projections.projector import ProjectedEvent, RedisProjector, RedisView


def generation_prefix(key_prefix: str, name: str, generation: int) -> str:
    """The key prefix of one generation: readers and the projector build every key from it."""
    return f"{key_prefix}rm:{name}:g{generation}:"


def active_key(key_prefix: str, name: str) -> str:
    return f"{key_prefix}rm:{name}:active"


async def active_prefix(redis: Redis, key_prefix: str, name: str) -> str:
    """The key prefix readers should use now (generation 1 when the model was never built)."""
    generation = await redis.get(active_key(key_prefix, name))
    return generation_prefix(key_prefix, name, int(generation or 1))


class RedisTarget:
    kind = "redis"

    def __init__(self, projector: RedisProjector, redis: Redis, key_prefix: str) -> None:
        self.projector = projector
        self._redis = redis
        self._key_prefix = key_prefix
        base = f"{key_prefix}rm:{projector.name}:"
        self._active_key = base + "active"
        self._rebuilding_key = base + "rebuilding"
        self._generations_key = base + "generations"

    @property
    def name(self) -> str:
        return self.projector.name

    def prefix(self, generation: int) -> str:
        return generation_prefix(self._key_prefix, self.name, generation)

    def _position_key(self, generation: int) -> str:
        return self.prefix(generation) + "position"

    async def active_generation(self) -> int:
        await self._redis.set(self._active_key, 1, nx=True)
        return int(await self._redis.get(self._active_key) or 1)

    async def position(self, generation: int) -> int:
        return int(await self._redis.get(self._position_key(generation)) or 0)

    async def apply(
        self,
        generation: int,
        events: Sequence[ProjectedEvent],
        from_position: int,
        to_position: int,
        *,
        rebuilding: bool = False,
    ) -> bool:
        """Apply `events` to `generation` and move its position from `from_position` to `to_position`.

        False (nothing written) when the generation is no longer this writer's or its position is not
        `from_position`: the runner then reloads both.
        """
        pointer = self._rebuilding_key if rebuilding else self._active_key
        position_key = self._position_key(generation)
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(pointer, position_key)
            current, stored = await pipe.mget(pointer, position_key)
            if int(current or 0) != generation or int(stored or 0) != from_position:
                return False
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            if events:
                await self.projector.apply(self._view(generation, pipe), events)
            pipe.set(position_key, to_position)
            try:
                await pipe.execute()
            except WatchError:
                return False
            return True

    def _view(self, generation: int, pipe: Pipeline) -> RedisView:
        return RedisView(self._redis, pipe, self.prefix(generation))

    async def rebuilding_generation(self) -> int | None:
        value = await self._redis.get(self._rebuilding_key)
        return None if value is None else int(value)

    async def start_rebuild(self) -> int:
        """Allocate a fresh, empty generation; the active one keeps serving."""
        active = await self.active_generation()
        previous = await self._redis.get(self._rebuilding_key)
        # The counter may be behind the pointer after Redis lost data; never hand out a live generation.
        generation = max(int(await self._redis.incr(self._generations_key)), active + 1)
        await self._redis.set(self._generations_key, generation)
        if previous is not None:
            await self.discard(int(previous))
        await self.discard(generation)
        await self._redis.set(self._rebuilding_key, generation)
        return generation

    async def activate(self, generation: int) -> int:
        """Point readers at `generation`; returns the generation it replaces (retire it a little later)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(self._rebuilding_key, self._active_key)
            rebuilding, active = await pipe.mget(self._rebuilding_key, self._active_key)
            if int(rebuilding or 0) != generation:
                raise RuntimeError(f"{self.name}: generation {generation} is not the one being rebuilt")
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            pipe.set(self._active_key, generation)
            pipe.delete(self._rebuilding_key)
            await pipe.execute()
            return int(active or 1)

    async def retire(self, generation: int) -> None:
        """Delete a replaced generation's keys."""
        await self.discard(generation)

    async def discard(self, generation: int) -> None:
        """Delete every key of `generation` (never the active one)."""
        if generation == int(await self._redis.get(self._active_key) or 1):
            raise RuntimeError(f"{self.name}: refusing to discard the active generation {generation}")
        batch: list[bytes] = []
        async for key in self._redis.scan_iter(match=self.prefix(generation) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            await self._redis.unlink(*batch)
