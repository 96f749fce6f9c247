"""`csms chargers log`: operators read a charger's recent OCPP frames, oldest first."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from write_api.ocpp.message_log import MessageLog


async def test_the_log_command_prints_frames_in_both_directions(
    redis_url: str, redis_key_prefix: str
) -> None:
    redis = Redis.from_url(redis_url)
    log = MessageLog(redis, redis_key_prefix)
    at = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    log.record("LOG-CP-1", "in", '[2,"1","Heartbeat",{}]', at)
    log.record("LOG-CP-1", "out", '[3,"1",{"currentTime":"2026-11-28T12:00:00Z"}]', at + timedelta(seconds=1))
    await log.flush()
    await redis.aclose()

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms.cli", "chargers", "log", "--id", "LOG-CP-1",
        env={**os.environ, "CSMS_REDIS_URL": redis_url, "CSMS_REDIS_KEY_PREFIX": redis_key_prefix},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines == [
        '2026-11-28T12:00:00.000+00:00 -> [2,"1","Heartbeat",{}]',
        '2026-11-28T12:00:01.000+00:00 <- [3,"1",{"currentTime":"2026-11-28T12:00:00Z"}]',
    ]
