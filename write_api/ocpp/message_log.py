"""Every OCPP frame each charger sent or received, kept a while in Redis for operators debugging a charger.

Recording must never slow the connection down or fail it: `record` appends to an in-memory buffer and
returns, and a background task writes the buffer in batches, one pipeline per flush. When Redis is unreachable
the buffer keeps the newest `max_buffer` frames and counts the ones it had to drop (`dropped`); the log is a
debugging aid, not a record of truth (the event store is), so losing old frames beats growing without bound
or blocking.

Key layout (every key starts with the deployment's key prefix):

- `{prefix}ocpplog:{charge_point_id}`: a stream, one entry per frame with fields `at` (ISO 8601), `dir` (`in`:
  charger -> CSMS, `out`: CSMS -> charger) and `raw` (the frame's text). Trimmed to about `max_per_charger`
  entries on every write (approximate MAXLEN: whole stream nodes are dropped, which is cheap), and expiring
  `retention_seconds` after its last write, so a decommissioned charger's log disappears.

The one thing never kept is a charger's password: the value the CSMS sets for a write-only password key
(ChangeConfiguration `AuthorizationKey`, SetVariables `BasicAuthPassword`) is replaced before it is buffered.

Entry ids are Redis's own (time of the write, not of the frame) and order the log; `at` is the frame's time.
A flush is one script call for the whole batch, its frames in one JSON argument, not an XADD per frame: under
load the gateway writes two frames per message, and redis-py's packing of every argument and parsing of every
reply cost the gateway more than Redis's own work. A batch whose write failed is written again whole, so after
a Redis failure a few frames may appear twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from csms.redis_support import LuaScript, run_pipeline, stop_task

_log = logging.getLogger(__name__)

Direction: TypeAlias = Literal["in", "out"]

DEFAULT_RETENTION_SECONDS: Final = 7 * 24 * 3600.0

# Write-only configuration holding the charger's Basic auth password (1.6 security whitepaper; 2.0.1
# SecurityCtrlr), which an operator may set through the configuration command.
_PASSWORD_KEYS: Final = ("AuthorizationKey", "BasicAuthPassword")
REDACTED: Final = "(redacted)"


@dataclass(frozen=True, slots=True)
class LoggedFrame:
    """One logged frame. `id` is its stream entry id, usable as `before` to read the page after it."""

    id: str
    at: datetime
    direction: Direction
    raw: str


_Buffered: TypeAlias = tuple[str, Direction, "str | bytes", datetime]

# KEYS: the chargers' log streams. ARGV: max entries per charger, retention ms, and the frames as one JSON
# array, four items per frame: the index of its key in KEYS, at, dir, raw. Returns the frames written.
_APPEND = LuaScript(
    """
local maxlen, retention = ARGV[1], ARGV[2]
local frames = cjson.decode(ARGV[3])
for i = 1, #frames, 4 do
  redis.call('XADD', KEYS[frames[i]], 'MAXLEN', '~', maxlen, '*',
             'at', frames[i + 1], 'dir', frames[i + 2], 'raw', frames[i + 3])
end
for k = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[k], retention)
end
return #frames / 4
"""
)


def without_passwords(raw: str | bytes) -> str | bytes:
    """The frame with the value replaced of any password key a CALL of ours sets; else the frame itself."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
    if "AuthorizationKey" not in text and "BasicAuthPassword" not in text:  # nearly every frame: no parsing
        return raw
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        return REDACTED  # keep nothing rather than risk the password
    if not (isinstance(frame, list) and len(frame) == 4 and frame[0] == 2 and isinstance(frame[3], dict)):
        return raw  # only a CALL sets configuration
    action, payload = frame[2], frame[3]
    if action == "ChangeConfiguration" and payload.get("key") in _PASSWORD_KEYS:
        payload["value"] = REDACTED
    elif action == "SetVariables":
        for item in payload.get("setVariableData") or ():
            variable = item.get("variable") if isinstance(item, dict) else None
            if isinstance(variable, dict) and variable.get("name") in _PASSWORD_KEYS:
                item["attributeValue"] = REDACTED
    return orjson.dumps(frame).decode()


class MessageLog:
    """The frame log: `record` from connections, `read` for operators, `start()` / `close()` around both."""

    def __init__(
        self,
        redis: Redis,
        key_prefix: str,
        max_per_charger: int = 1000,
        flush_interval: float = 0.1,
        max_buffer: int = 10_000,
        *,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
        batch_size: int = 1000,
        max_retry_interval: float = 5.0,
    ) -> None:
        if min(max_per_charger, max_buffer, batch_size) <= 0 or flush_interval <= 0 or retention_seconds <= 0:
            raise ValueError("sizes, intervals and retention must be greater than zero")
        self._redis = redis
        self._prefix = key_prefix
        self._max_per_charger = max_per_charger
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._retention_ms = max(1, round(retention_seconds * 1000))
        self._batch_size = batch_size
        self._max_retry_interval = max(max_retry_interval, flush_interval)
        self._buffer: deque[_Buffered] = deque()
        self._wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._dropping = False
        self._dropped_in_burst = 0
        self._failing = False
        self.dropped = 0
        """Frames dropped, oldest first, because the buffer was full while Redis could not take them."""

    def _key(self, charge_point_id: str) -> str:
        return f"{self._prefix}ocpplog:{charge_point_id}"

    @property
    def buffered(self) -> int:
        """Frames recorded and not yet written."""
        return len(self._buffer)

    def record(self, charge_point_id: str, direction: Direction, raw: str | bytes, at: datetime) -> None:
        """Log a frame. O(1), no I/O, never raises because of Redis."""
        if direction == "out":
            raw = without_passwords(raw)
        if len(self._buffer) >= self._max_buffer:
            self._drop_oldest(len(self._buffer) - self._max_buffer + 1)
        self._buffer.append((charge_point_id, direction, raw, at))
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    async def read(
        self, charge_point_id: str, limit: int = 100, before: str | None = None
    ) -> list[LoggedFrame]:
        """The charger's frames, newest first: at most `limit`, all older than entry id `before` if given."""
        newest = "+" if before is None else f"({before}"
        entries = await self._redis.xrevrange(self._key(charge_point_id), max=newest, min="-", count=limit)
        frames = []
        for entry_id, fields in cast("list[tuple[bytes, dict[bytes, bytes]]]", entries or []):
            direction = fields[b"dir"].decode()
            frames.append(
                LoggedFrame(
                    id=entry_id.decode(),
                    at=datetime.fromisoformat(fields[b"at"].decode()),
                    direction="out" if direction == "out" else "in",
                    raw=fields[b"raw"].decode("utf-8", errors="replace"),
                )
            )
        return frames

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ocpp-message-log-flusher")

    async def close(self, drain_seconds: float = 5.0) -> None:
        """Stop the flusher and write the buffer, giving up after `drain_seconds` (Redis may be gone)."""
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        try:
            async with asyncio.timeout(drain_seconds):
                while self._buffer:
                    await self.flush()
        except (RedisError, TimeoutError) as error:
            _log.warning("OCPP message log: closing with %d frames unwritten: %r", len(self._buffer), error)

    async def flush(self) -> None:
        """Write a batch of buffered frames in one call; on failure put it back and raise the error."""
        async with self._flush_lock:
            batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
            if not batch:
                return
            keys: dict[str, int] = {}
            frames: list[Any] = []
            for charge_point_id, direction, raw, at in batch:
                key = keys.get(charge_point_id)
                if key is None:
                    key = keys[charge_point_id] = len(keys) + 1
                text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
                frames += (key, at.isoformat(), direction, text)
            names = [self._key(charge_point_id) for charge_point_id in keys]
            args = (self._max_per_charger, self._retention_ms, _json_array(frames))
            try:
                await run_pipeline(
                    self._redis,
                    [_APPEND],
                    lambda pipe: pipe.evalsha(_APPEND.sha, len(names), *names, *args),
                )
            except BaseException:
                # Cancelled or failed: the batch goes back in front, still the oldest, still bounded.
                self._buffer.extendleft(reversed(batch))
                if len(self._buffer) > self._max_buffer:
                    self._drop_oldest(len(self._buffer) - self._max_buffer)
                raise
        if not self._buffer and self._dropping:
            _log.info("OCPP message log: caught up after dropping %d frames", self._dropped_in_burst)
            self._dropping = False
            self._dropped_in_burst = 0

    def _drop_oldest(self, count: int) -> None:
        for _ in range(count):
            self._buffer.popleft()
        self.dropped += count
        self._dropped_in_burst += count
        if not self._dropping:
            self._dropping = True
            _log.warning(
                "OCPP message log: buffer full (%d frames), dropping the oldest until Redis catches up",
                self._max_buffer,
            )

    async def _run(self) -> None:
        delay = self._flush_interval
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()
            try:
                while self._buffer:
                    await self.flush()
            except Exception as error:  # whatever went wrong, keep buffering and retrying: never die silently
                if not self._failing:
                    _log.warning("OCPP message log: cannot write to Redis, buffering: %r", error)
                    self._failing = True
                delay = min(delay * 2, self._max_retry_interval)
            else:
                if self._failing:
                    _log.info("OCPP message log: writing to Redis again")
                    self._failing = False
                delay = self._flush_interval


def _json_array(items: list[Any]) -> bytes:
    try:
        return orjson.dumps(items)
    except orjson.JSONEncodeError:
        # A lone surrogate cannot be encoded: log it replaced, as `read` would show it anyway.
        return orjson.dumps(
            [i.encode("utf-8", errors="replace").decode() if isinstance(i, str) else i for i in items]
        )
