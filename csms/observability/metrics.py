"""`/metrics` for every role: the Prometheus registry in the text exposition format.

One process: its own registry, process and platform collectors included. Several processes of one role
(`csms serve --workers N` sets PROMETHEUS_MULTIPROC_DIR for each): every process writes its samples to files
in that directory and the one that is scraped sums counters and histograms over all of them, so a scrape
through a shared port sees the role, not one worker picked by the kernel.
"""

from __future__ import annotations

import os

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
_REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)


def metrics_registry() -> CollectorRegistry:
    """The registry this process exports: its own, or the aggregate of the role's processes."""
    directory = os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(request.app[_REGISTRY]))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_metrics_route(app: web.Application) -> None:
    app[_REGISTRY] = metrics_registry()
    app.router.add_get("/metrics", metrics)
