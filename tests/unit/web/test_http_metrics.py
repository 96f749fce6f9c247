"""HTTP metrics count every answer by route template, method and status, whatever produced it."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from csms.web.http_metrics import http_metrics_middleware
from csms.web.problems import problem_error, problem_middleware


async def _thing(request: web.Request) -> web.Response:
    if request.match_info["thing_id"] == "missing":
        raise problem_error(404, "Not found", "no such thing")
    if request.match_info["thing_id"] == "broken":
        raise RuntimeError("a bug")
    return web.json_response({"id": request.match_info["thing_id"]})


def _count(api: str, route: str, method: str, status: str) -> float:
    labels = {"api": api, "route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("csms_http_requests_total", labels) or 0.0


async def test_requests_are_counted_by_route_template_not_by_path() -> None:
    api = f"test-{uuid.uuid4().hex[:6]}"
    app = web.Application(middlewares=[http_metrics_middleware(api), problem_middleware])
    app.router.add_get("/things/{thing_id}", _thing)
    async with TestClient(TestServer(app)) as client:
        for thing in ("a", "b", "missing", "broken"):
            await client.get(f"/things/{thing}")
        await client.get("/elsewhere")

    assert _count(api, "/things/{thing_id}", "GET", "200") == 2
    assert _count(api, "/things/{thing_id}", "GET", "404") == 1
    assert _count(api, "/things/{thing_id}", "GET", "500") == 1
    assert _count(api, "unmatched", "GET", "404") == 1
    duration = REGISTRY.get_sample_value(
        "csms_http_request_duration_seconds_count",
        {"api": api, "route": "/things/{thing_id}", "method": "GET"},
    )
    assert duration == 4
