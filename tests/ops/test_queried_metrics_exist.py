"""Every metric the alert rules and the dashboards query is one that the roles really serve on /metrics.

Each role's app is assembled as `csms serve --role NAME` assembles it, on the run's Postgres and Redis, and
its /metrics is read over HTTP. prometheus-client lists every registered family (`# HELP` / `# TYPE`) even
before it has a sample, so a renamed or removed metric fails here, not on a dashboard at 3 a.m.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

# The composition root: importing it registers what every role process registers (loop lag, GC pauses).
from csms.cli.roles import ROLES
from csms.settings import Settings
from csms.stripe_endpoint import StripeEndpoint
from projections.runtime import projector_service
from read_api.runtime import read_api_app
from tests.ops.ops_files import Query, alert_queries, dashboard_queries
from write_api.billing.runtime import billing_app
from write_api.http.runtime import write_api_app
from write_api.ocpp.runtime import gateway_app

# Series Prometheus makes itself for every target, not served by the target.
PROMETHEUS_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)

_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def series_names(exposition: str) -> set[str]:
    """The names a query can select from this exposition: the samples present, and the series of every
    family with none yet (a labelled counter `x` is queried as `x_total`, a histogram as `x_bucket`...)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SERIES_SUFFIXES.get(family.type, ("",)))
    return names


@pytest.fixture(scope="module")
async def scraped(
    database_url: str, redis_url: str, redis_key_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, dict[str, Any]]]:
    """Per role: the status of /metrics, /healthz and /readyz, and the /metrics text."""
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("data")), redis_key_prefix=redis_key_prefix)
    # Billing's process manager is not run, so this Stripe is never called.
    stripe = StripeEndpoint(api_key="sk_test_unused", api_base="http://127.0.0.1:9")
    async with contextlib.AsyncExitStack() as stack:
        # One process's own registry, which lists families before their first sample (the multi-process
        # aggregate of `--workers` lists only families with samples).
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        gateway, _gateway = await stack.enter_async_context(gateway_app(settings, database_url, redis_url))
        billing, _manager = await stack.enter_async_context(billing_app(settings, database_url, stripe))
        projector, _runners = await stack.enter_async_context(
            projector_service(settings, database_url, redis_url)
        )
        apps: dict[str, web.Application] = {
            "gateway": gateway,
            "write-api": await stack.enter_async_context(write_api_app(settings, database_url, redis_url)),
            "read-api": await stack.enter_async_context(read_api_app(settings, database_url, redis_url)),
            "billing": billing,
            "projector": projector,
        }
        assert set(apps) == set(ROLES), "a role was added: scrape it here too"
        http = await stack.enter_async_context(aiohttp.ClientSession())
        results: dict[str, dict[str, Any]] = {}
        for role, app in apps.items():
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            stack.push_async_callback(server.close)
            base = f"http://127.0.0.1:{server.port}"
            result: dict[str, Any] = {}
            for path in ("/metrics", "/healthz", "/readyz"):
                async with http.get(base + path) as response:
                    result[path] = response.status
                    if path == "/metrics":
                        result["text"] = await response.text()
            results[role] = result
        yield results


def test_every_role_serves_metrics_and_the_probed_paths(scraped: dict[str, dict[str, Any]]) -> None:
    for role, result in scraped.items():
        assert result["/metrics"] == 200, role
        assert result["/healthz"] == 200, role
        # Ready or not (the read API waits for the read models), the probe's path must exist.
        assert result["/readyz"] in (200, 503), role
        assert "csms_" in result["text"], role


def _may_be_absent(name: str) -> bool:
    # prometheus-client's process collector reads /proc: its metrics exist on Linux only.
    return name in PROMETHEUS_SERIES or (sys.platform != "linux" and name.startswith("process_"))


def _missing(queries: list[Query], served: set[str]) -> list[str]:
    return [
        f"{query.source}: {name}"
        for query in queries
        for name in sorted(query.metrics)
        if name not in served and not _may_be_absent(name)
    ]


def _served(scraped: dict[str, dict[str, Any]]) -> set[str]:
    return set().union(*(series_names(result["text"]) for result in scraped.values()))


def test_every_metric_the_alert_rules_query_is_served(scraped: dict[str, dict[str, Any]]) -> None:
    queries = alert_queries()
    assert queries
    assert _missing(queries, _served(scraped)) == []


def test_every_metric_the_dashboards_query_is_served(scraped: dict[str, dict[str, Any]]) -> None:
    queries = dashboard_queries()
    assert queries
    assert _missing(queries, _served(scraped)) == []


def test_a_renamed_metric_would_be_caught(scraped: dict[str, dict[str, Any]]) -> None:
    served = _served(scraped)
    assert "csms_ocpp_connected_chargers" in served
    renamed = [Query("example", "sum(csms_ocpp_connected_charger)")]
    assert _missing(renamed, served) == ["example: csms_ocpp_connected_charger"]
    # A counter is queried with its _total suffix, a histogram through its series.
    assert _missing([Query("example", "rate(csms_ocpp_connections[5m])")], served)
    assert not _missing([Query("example", "rate(csms_ocpp_call_duration_seconds_bucket[5m])")], served)
