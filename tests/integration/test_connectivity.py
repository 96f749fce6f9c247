"""Start-up waits for Postgres and Redis with back-off, then fails with one line naming the server."""

from __future__ import annotations

import socket
import time

import pytest

from csms.connectivity import DependencyUnavailable, redact_url, wait_for_servers


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_reachable_servers_pass_at_once(server_database_url: str, redis_url: str) -> None:
    await wait_for_servers(database_url=server_database_url, redis_url=redis_url)


async def test_an_unreachable_server_is_retried_for_the_window_then_named() -> None:
    url = f"redis://:hunter2@127.0.0.1:{_closed_port()}/0"
    started = time.monotonic()

    with pytest.raises(DependencyUnavailable) as raised:
        await wait_for_servers(redis_url=url, retry_seconds=0.6)

    assert time.monotonic() - started >= 0.6
    message = str(raised.value)
    assert message.startswith("Redis at redis://:***@127.0.0.1:")
    assert "after retrying for 0.6s" in message
    assert "hunter2" not in message
    assert "\n" not in message


def test_passwords_never_appear_in_printed_urls() -> None:
    assert redact_url("postgresql://csms:s3cret@db:5432/csms") == "postgresql://csms:***@db:5432/csms"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"
