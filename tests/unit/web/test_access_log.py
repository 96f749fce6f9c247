"""The access log: one JSON line per request, the request line as its message and its figures as fields,
with the request's correlation id."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from csms.web.access_log import StructuredAccessLogger
from csms.web.request_id import REQUEST_ID_HEADER, request_id_middleware
from tests.json_logs import json_logs


async def _hello(request: web.Request) -> web.Response:
    return web.json_response({"hello": request.match_info["name"]}, status=201)


@contextlib.asynccontextmanager
async def _served() -> AsyncIterator[str]:
    """The app served as `csms serve` serves it (aiohttp's test server keeps its own access logger)."""
    app = web.Application(middlewares=[request_id_middleware])
    app.router.add_post("/hello/{name}", _hello)
    runner = web.AppRunner(
        app, access_log=logging.getLogger("aiohttp.access"), access_log_class=StructuredAccessLogger
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_each_request_is_one_line_with_its_figures_and_correlation_id() -> None:
    with json_logs() as log:
        async with (
            _served() as url,
            aiohttp.ClientSession() as client,
            client.post(
                f"{url}/hello/world?x=1", headers={REQUEST_ID_HEADER: "req-1", "User-Agent": "csms-test"}
            ) as response,
        ):
            body = await response.read()

    [line] = [line for line in log.lines() if line["logger"] == "aiohttp.access"]
    assert line["message"] == "POST /hello/world?x=1 201"
    assert line["level"] == "INFO"
    assert (line["status"], line["user_agent"]) == (201, "csms-test")
    assert line["bytes_sent"] > len(body)  # the headers with it
    assert line["remote"] == "127.0.0.1"
    assert 0 <= line["duration_ms"] < 5_000
    assert line["correlation_id"] == "req-1"


def test_aiohttp_skips_the_line_when_the_access_log_is_above_info() -> None:
    # `enabled` is what aiohttp asks before it calls `log` at all (no fields are gathered then).
    logger = logging.getLogger("tests.access_log.quiet")
    access = StructuredAccessLogger(logger, "")
    logger.setLevel(logging.INFO)
    assert access.enabled
    logger.setLevel(logging.WARNING)
    assert not access.enabled
