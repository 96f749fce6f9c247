"""`/metrics` for every role: the process's Prometheus registry in the text exposition format."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


async def metrics(_request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_metrics_route(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
