"""The OCPP frame log: recording never waits for Redis; frames land in per-charger streams, bounded."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from tests.integration.gateway_infra import eventually
from write_api.ocpp.message_log import MessageLog

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def charger() -> str:
    return f"CP-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def unreachable_redis() -> AsyncIterator[Redis]:
    """A client of a port nothing listens on: every command fails at once, without retrying."""
    client = Redis.from_url("redis://127.0.0.1:1", retry=Retry(NoBackoff(), 0), socket_connect_timeout=1)
    yield client
    await client.aclose()


class LogEvent(logging.Handler):
    """Sets `seen` when a record containing `text` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def test_record_is_a_plain_function() -> None:
    assert not inspect.iscoroutinefunction(MessageLog.record)


async def test_frames_are_read_back_newest_first_after_a_flush(redis: Redis, redis_key_prefix: str) -> None:
    log = MessageLog(redis, redis_key_prefix)
    cp = charger()
    log.record(cp, "in", '[2,"1","Heartbeat",{}]', T0)
    log.record(cp, "out", b'[3,"1",{"currentTime":"2025-03-01T12:00:00Z"}]', T0 + timedelta(seconds=1))
    log.record(cp, "in", '[2,"2","StatusNotification",{}]', T0 + timedelta(seconds=2))
    log.record(charger(), "in", '[2,"9","Heartbeat",{}]', T0)  # another charger's log

    await log.flush()
    frames = await log.read(cp)

    assert [(f.direction, f.raw, f.at) for f in frames] == [
        ("in", '[2,"2","StatusNotification",{}]', T0 + timedelta(seconds=2)),
        ("out", '[3,"1",{"currentTime":"2025-03-01T12:00:00Z"}]', T0 + timedelta(seconds=1)),
        ("in", '[2,"1","Heartbeat",{}]', T0),
    ]
    ids = [tuple(map(int, f.id.split("-"))) for f in frames]
    assert ids == sorted(ids, reverse=True)
    assert await log.read(cp, limit=1, before=frames[0].id) == [frames[1]]
    assert await log.read(cp, before=frames[-1].id) == []
    assert await log.read(charger()) == []


async def test_a_charger_password_we_set_is_never_kept(redis: Redis, redis_key_prefix: str) -> None:
    log = MessageLog(redis, redis_key_prefix)
    cp = charger()
    password = uuid.uuid4().hex
    set_16 = f'[2,"c1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{password}"}}]'
    set_201 = (
        '[2,"c2","SetVariables",{"setVariableData":[{"component":{"name":"SecurityCtrlr"},'
        f'"variable":{{"name":"BasicAuthPassword"}},"attributeValue":"{password}"}},'
        '{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"},"attributeValue":"60"}]}]'
    )
    other = '[2,"c3","ChangeConfiguration",{"key":"HeartbeatInterval","value":"60"}]'
    log.record(cp, "out", set_16, T0)
    log.record(cp, "out", set_201, T0)
    log.record(cp, "out", other, T0)
    log.record(cp, "out", f"AuthorizationKey {password} not JSON", T0)

    await log.flush()
    kept = [f.raw for f in reversed(await log.read(cp))]

    assert all(password not in raw for raw in kept)
    assert '"key":"AuthorizationKey","value":"(redacted)"' in kept[0]
    assert '"attributeValue":"(redacted)"' in kept[1]
    assert '"attributeValue":"60"' in kept[1]  # only the password is withheld
    assert kept[2] == other  # every other frame is kept as it was
    assert kept[3] == "(redacted)"


async def test_frames_keep_any_text_a_charger_sent(redis: Redis, redis_key_prefix: str) -> None:
    """Frames travel to Redis inside one JSON argument: quotes, control characters and non-ASCII text come
    back as they were; a lone surrogate (not UTF-8 at all) comes back replaced, as non-UTF-8 bytes do."""
    log = MessageLog(redis, redis_key_prefix)
    cp = charger()
    odd = '[2,"1","DataTransfer",{"data":"\\"quoted\\" \\u0000 Grüße 充电 \U0001f50c\ttab"}]\n'
    log.record(cp, "in", odd, T0)
    log.record(cp, "in", "broken \ud800 half", T0)
    log.record(cp, "in", b"bytes \xff not UTF-8", T0)

    await log.flush()

    assert [f.raw for f in reversed(await log.read(cp))] == [odd, "broken ? half", "bytes \ufffd not UTF-8"]


async def test_the_background_task_writes_recorded_frames(redis: Redis, redis_key_prefix: str) -> None:
    log = MessageLog(redis, redis_key_prefix, flush_interval=0.01)
    cp = charger()
    await log.start()
    try:
        log.record(cp, "in", "frame", T0)

        async def written() -> bool:
            return await log.read(cp) != []

        await eventually(written)
        log.record(cp, "out", "last", T0)
    finally:
        await log.close()
    assert [f.raw for f in await log.read(cp)] == ["last", "frame"]


async def test_each_chargers_log_is_bounded_and_expires(redis: Redis, redis_key_prefix: str) -> None:
    log = MessageLog(redis, redis_key_prefix, max_per_charger=10, retention_seconds=3600)
    cp = charger()
    for n in range(1000):
        log.record(cp, "in", f"frame-{n}", T0)

    await log.flush()

    assert log.buffered == 0
    key = f"{redis_key_prefix}ocpplog:{cp}"
    # Approximate trimming keeps whole stream nodes: at least MAXLEN entries, at most a node more.
    node_entries = int(str((await redis.config_get("stream-node-max-entries"))["stream-node-max-entries"]))
    assert 10 <= await redis.xlen(key) <= 10 + node_entries
    assert [f.raw for f in await log.read(cp, limit=3)] == ["frame-999", "frame-998", "frame-997"]
    assert 0 < await redis.pttl(key) <= 3_600_000


async def test_a_full_buffer_drops_the_oldest_frames_and_warns_once(
    redis: Redis, redis_key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = MessageLog(redis, redis_key_prefix, max_buffer=10)
    cp = charger()

    with caplog.at_level(logging.WARNING, logger="write_api.ocpp.message_log"):
        for n in range(25):
            log.record(cp, "in", f"frame-{n}", T0)

    assert (log.dropped, log.buffered) == (15, 10)
    assert len([r for r in caplog.records if "buffer full" in r.message]) == 1
    await log.flush()
    assert [f.raw for f in await log.read(cp)] == [f"frame-{n}" for n in range(24, 14, -1)]


async def test_an_unreachable_redis_never_reaches_the_caller(
    unreachable_redis: Redis, redis_key_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    log = MessageLog(unreachable_redis, redis_key_prefix, flush_interval=0.01, max_buffer=10)
    cp = charger()
    failed = LogEvent("cannot write to Redis")
    logger = logging.getLogger("write_api.ocpp.message_log")
    logger.addHandler(failed)
    await log.start()
    try:
        with caplog.at_level(logging.WARNING, logger=logger.name):
            started = time.perf_counter()
            for n in range(25):
                log.record(cp, "in", f"frame-{n}", T0)
            assert time.perf_counter() - started < 0.05
            async with asyncio.timeout(3):
                await failed.seen.wait()  # the flusher tried, failed, and put the frames back
            for n in range(25, 30):
                log.record(cp, "out", f"frame-{n}", T0)

            await log.close(drain_seconds=0.5)
    finally:
        logger.removeHandler(failed)

    assert (log.dropped, log.buffered) == (20, 10)
    assert len([r for r in caplog.records if "buffer full" in r.message]) == 1
