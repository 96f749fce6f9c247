"""Unexpected errors become problem documents: a storage outage a 503 to retry, anything else a 500."""

from __future__ import annotations

import asyncio
import gc
import weakref

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from csms.web.problems import PROBLEM_JSON, problem_error, problem_middleware

_FAILURES: dict[str, Exception] = {
    "redis-timeout": RedisTimeoutError("Timeout reading from 127.0.0.1:6379"),
    "redis-down": RedisConnectionError("Connection refused"),
    "postgres-gone": asyncpg.InterfaceError("connection is closed"),
    "postgres-full": asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    "bug": RuntimeError("a bug"),
}


async def _fail(request: web.Request) -> web.StreamResponse:
    raise _FAILURES[request.match_info["kind"]]


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("redis-timeout", 503),
        ("redis-down", 503),
        ("postgres-gone", 503),
        ("postgres-full", 503),
        ("bug", 500),
    ],
)
async def test_a_storage_outage_is_a_503_to_retry_and_a_bug_a_500(kind: str, status: int) -> None:
    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/fail/{kind}", _fail)
    async with TestClient(TestServer(app)) as client:
        response = await client.get(f"/fail/{kind}")
        body = await response.json(content_type=PROBLEM_JSON)
    assert response.status == status
    assert body["status"] == status
    assert ("Retry-After" in response.headers) is (status == 503)
    assert "Timeout reading" not in str(body)  # internals stay in the log


@pytest.mark.parametrize("raised", ["problem", "plain"])
async def test_an_error_answer_leaves_no_reference_cycle_behind(raised: str) -> None:
    """Roles freeze what outlives a second out of the collector's reach, so an error answer must not leave
    its request in a reference cycle (aiohttp keeps a raised HTTPException, traceback and all, as the
    response): only reference counting may be needed to free it."""
    seen: list[weakref.ref[web.Request]] = []

    async def conflict(request: web.Request) -> web.StreamResponse:
        seen.append(weakref.ref(request))
        if raised == "problem":
            raise problem_error(409, "Conflict", "the connector is taken")
        raise web.HTTPConflict(text="the connector is taken")

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/sessions", conflict)
    gc.disable()
    try:
        async with TestClient(TestServer(app)) as client:
            response = await client.post("/sessions")
            assert response.status == 409
            assert response.content_type == PROBLEM_JSON
            assert (await response.json())["status"] == 409
        await asyncio.sleep(0.05)  # the connection's last steps
        assert seen[0]() is None
    finally:
        gc.enable()
