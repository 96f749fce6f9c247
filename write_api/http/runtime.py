"""Assembles a write API process: pools, event store, Redis, command router, services, and the app."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from csms.directories import IdTokenDirectory
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import AggregateCache, EventCodec, EventStore, Repository, create_pool
from csms.identity.issuers_config import external_issuers
from csms.observability.health import postgres_answers, redis_answers
from csms.observability.metrics import add_metrics_route
from csms.redis_support import redis_client, stop_task
from csms.settings import Settings, path_list
from csms.stripe_endpoint import StripeEndpoint
from write_api.auth.app import build_auth_service
from write_api.auth.config import AuthConfig
from write_api.billing.payment_methods import PaymentMethods
from write_api.billing.runtime import stripe_gateway
from write_api.billing.session_payments import SessionPayments
from write_api.billing.webhooks import StripeWebhooks
from write_api.charger_admin import ChargerAdmin
from write_api.http.app import WriteApiServices, create_write_app
from write_api.idempotency import IdempotencyKeys
from write_api.management import Management
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.commands import ChargerCommands, protocol_from_repository
from write_api.ocpp.outcome import CallOutcome
from write_api.ocpp.runtime import instance_id
from write_api.sessions import SessionService

_PURGE_INTERVAL_SECONDS = 600.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class NoSockets:
    """The write API holds no charger connections: every command travels to the gateway that does."""

    async def call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], within: float
    ) -> CallOutcome:
        return CallOutcome.offline()


def auth_config(settings: Settings) -> AuthConfig:
    return AuthConfig(
        external_issuers=external_issuers(settings),
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        access_token_ttl_seconds=settings.auth_access_token_ttl_seconds,
        signing_key_file=settings.auth_signing_key_file,
        verification_key_files=path_list(settings.auth_previous_public_key_files),
        data_dir=settings.data_dir,
        redis_key_prefix=settings.redis_key_prefix,
        trusted_proxies=tuple(settings.trusted_proxies.split(",")),
    )


@contextlib.asynccontextmanager
async def write_api_app(
    settings: Settings, database_url: str, redis_url: str, stripe: StripeEndpoint | None = None
) -> AsyncIterator[web.Application]:
    pool = await create_pool(
        database_url, max_size=settings.db_pool_size, retry_seconds=settings.startup_retry_seconds
    )
    # Idempotency keys commit without waiting for the disk: the request's own append makes them durable.
    keys_pool = await create_pool(
        database_url,
        max_size=max(2, settings.db_pool_size // 4),
        retry_seconds=settings.startup_retry_seconds,
        flush_on_commit=False,
    )
    idempotency = IdempotencyKeys(keys_pool)
    purging = asyncio.create_task(idempotency.purge_every(_PURGE_INTERVAL_SECONDS), name="idempotency-purge")
    store = EventStore(
        pool,
        database_url,
        window_seconds=settings.append_window_ms / 1000,
        max_batch=settings.append_max_batch,
        poll_interval=settings.poll_interval_seconds,
    )
    # Cached aggregates, brought up to date with one tail read before each command (refresh=True).
    repository = Repository(store, EventCodec(EVENT_TYPES), AggregateCache())
    redis = redis_client(redis_url)
    router = CommandRouter(redis, settings.redis_key_prefix, instance_id(), NoSockets())
    await router.start()
    commands = ChargerCommands(
        router, protocol_from_repository(repository), settings.ocpp_call_timeout_seconds
    )
    tokens = IdTokenDirectory(pool)
    config = auth_config(settings)
    # Only an external OIDC issuer needs outgoing HTTP (to fetch its JWKS).
    http = aiohttp.ClientSession() if config.external_issuers else None
    gateway = stripe_gateway(settings, stripe) if stripe is not None else None
    webhooks = None
    if stripe is not None and stripe.webhook_secret:
        webhooks = StripeWebhooks(
            store,
            repository,
            gateway,
            stripe.webhook_secret,
            utc_now,
            tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
        )
    services = WriteApiServices(
        auth_config=config,
        auth=build_auth_service(config, pool=pool, redis=redis, repository=repository, http=http),
        # Starting a session needs a usable card on file (402 otherwise): every session is paid for.
        sessions=SessionService(repository, commands, tokens, utc_now, require_payment_method=True),
        management=Management(repository, tokens, utc_now),
        charger_admin=ChargerAdmin(repository, utc_now),
        commands=commands,
        idempotency=idempotency,
        readiness={"postgres": lambda: postgres_answers(pool), "redis": lambda: redis_answers(redis)},
        payment_methods=PaymentMethods(repository, gateway, utc_now),
        session_payments=SessionPayments(
            repository, gateway, utc_now, wait_seconds=settings.payment_wait_seconds
        ),
        webhooks=webhooks,
    )
    try:
        app = create_write_app(services)
        add_metrics_route(app)
        yield app
    finally:
        if gateway is not None:
            await gateway.close()
        if http is not None:
            await http.close()
        await router.close()
        await stop_task(purging)
        await redis.aclose()
        await store.close()
        await keys_pool.close()
        await pool.close()
