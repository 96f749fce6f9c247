"""Prometheus metrics of HTTP APIs: requests by route, method and status, and how long they took.

Routes are labelled by their template (`/sessions/{session_id}`), never by the path a client sent, so ids
cannot explode the number of series; a request that matched no route counts as `unmatched`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "csms_http_requests_total", "HTTP requests answered, by API, route, method and status.",
    ["api", "route", "method", "status"],
)  # fmt: skip
DURATION = Histogram(
    "csms_http_request_duration_seconds",
    "Time from a request's arrival to its answer (for a stream: until it ended).",
    ["api", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_metrics_middleware(api: str) -> Middleware:
    """A middleware counting and timing every request of the API named `api` (`write`, `read`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        began = time.perf_counter()
        status = 500  # an exception that is not an HTTP answer becomes one
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            route = _route(request)
            REQUESTS.labels(api, route, request.method, str(status)).inc()
            DURATION.labels(api, route, request.method).observe(time.perf_counter() - began)

    return middleware


def _route(request: web.Request) -> str:
    info = request.match_info
    if info.http_exception is not None or info.route.resource is None:
        return "unmatched"
    return info.route.resource.canonical
