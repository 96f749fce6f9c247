"""Assembles the billing role: the process manager, its Stripe gateway, and /metrics, /healthz and /readyz."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.observability.health import add_health_routes, postgres_answers
from csms.observability.metrics import add_metrics_route
from csms.settings import Settings
from csms.stripe_endpoint import StripeEndpoint
from write_api.billing.process_manager import BillingProcessManager
from write_api.billing.settlement import Settlement
from write_api.billing.stripe_gateway import RetryPolicy, StripeGateway


def utc_now() -> datetime:
    return datetime.now(UTC)


def stripe_gateway(settings: Settings, endpoint: StripeEndpoint) -> StripeGateway:
    return StripeGateway(
        endpoint,
        RetryPolicy(
            max_attempts=settings.stripe_max_attempts,
            base_seconds=settings.stripe_retry_base_seconds,
            max_seconds=settings.stripe_retry_max_seconds,
        ),
        timeout_seconds=settings.stripe_timeout_seconds,
    )


@contextlib.asynccontextmanager
async def billing_app(
    settings: Settings, database_url: str, endpoint: StripeEndpoint
) -> AsyncIterator[tuple[web.Application, BillingProcessManager]]:
    pool = await create_pool(
        database_url, max_size=settings.db_pool_size, retry_seconds=settings.startup_retry_seconds
    )
    store = EventStore(
        pool,
        database_url,
        window_seconds=settings.append_window_ms / 1000,
        max_batch=settings.append_max_batch,
        poll_interval=settings.poll_interval_seconds,
    )
    gateway = stripe_gateway(settings, endpoint)
    # No aggregate cache: another process (the write API, a webhook) may append to any session.
    repository = Repository(store, EventCodec(EVENT_TYPES))
    manager = BillingProcessManager(
        store,
        Settlement(repository, gateway, utc_now),
        database_url,
        concurrency=settings.billing_concurrency,
    )
    app = web.Application()
    add_metrics_route(app)
    add_health_routes(app, {"postgres": lambda: postgres_answers(pool)})
    try:
        yield app, manager
    finally:
        await gateway.close()
        await store.close()
        await pool.close()
