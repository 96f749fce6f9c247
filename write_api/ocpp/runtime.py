"""Assembles a gateway process: pools, event store, repository, directories, and the aiohttp app."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from csms.directories import EarlyMeterValues, IdTokenDirectory, TransactionDirectory
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import AggregateCache, EventCodec, EventStore, Repository, create_pool
from csms.observability.health import add_health_routes, postgres_answers, redis_answers
from csms.observability.metrics import add_metrics_route
from csms.redis_support import redis_client
from csms.settings import Settings
from write_api.charger_reports import ChargerReports
from write_api.ocpp.command_router import CommandRouter
from write_api.ocpp.gateway import Gateway, GatewayConfig, create_gateway_app
from write_api.ocpp.message_log import MessageLog
from write_api.ocpp.presence import Presence
from write_api.ocpp.validation import compile_validators
from write_api.ocpp.versions import ProtocolVersion


def utc_now() -> datetime:
    return datetime.now(UTC)


def gateway_config(settings: Settings) -> GatewayConfig:
    return GatewayConfig(
        heartbeat_interval_seconds=settings.ocpp_heartbeat_interval_seconds,
        ping_interval_seconds=settings.ocpp_ping_interval_seconds,
        max_frame_bytes=settings.ocpp_max_frame_bytes,
        rate_limit_per_second=settings.ocpp_rate_limit,
        rate_limit_burst=settings.ocpp_rate_burst,
        boots_per_second=settings.ocpp_boots_per_second,
        boot_burst=settings.ocpp_boot_burst,
    )


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """Security profile 2: TLS with a server certificate, TLS 1.2 or newer (the OCPP security spec)."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def instance_id() -> str:
    """This process's name in the routing registry: unique per process start, readable in Redis."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@contextlib.asynccontextmanager
async def gateway_app(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[tuple[web.Application, Gateway]]:
    """The gateway's app and the `Gateway` behind it, with everything they need opened and, after, closed."""
    compile_validators(ProtocolVersion.OCPP16, ProtocolVersion.OCPP201)
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
    # Transaction ids commit without waiting for the disk: the start's event append that follows each one,
    # before the charger hears of it, makes it durable (see TransactionDirectory).
    transactions_pool = await create_pool(
        database_url,
        max_size=max(2, settings.db_pool_size // 4),
        retry_seconds=settings.startup_retry_seconds,
        flush_on_commit=False,
    )
    # This process is the single writer of its connected chargers: it keeps their aggregates in memory.
    repository = Repository(store, EventCodec(EVENT_TYPES), AggregateCache())
    reports = ChargerReports(
        repository,
        TransactionDirectory(transactions_pool),
        IdTokenDirectory(pool),
        EarlyMeterValues(pool),
        utc_now,
    )
    redis = redis_client(redis_url)
    prefix = settings.redis_key_prefix
    me = instance_id()
    presence = Presence(redis, prefix, me)
    message_log = MessageLog(redis, prefix)
    gateway = Gateway(
        reports,
        gateway_config(settings),
        utc_now,
        frame_log=lambda cp, direction, raw: message_log.record(cp, direction, raw, utc_now()),  # type: ignore[arg-type]
        presence=presence,
    )
    router = CommandRouter(redis, prefix, me, gateway)
    gateway.router = router
    await presence.start()
    await message_log.start()
    await router.start()
    app = create_gateway_app(gateway)
    # On the OCPP port itself: probes and scrapes reach the process the load balancer sends chargers to.
    add_metrics_route(app)
    add_health_routes(
        app, {"postgres": lambda: postgres_answers(pool), "redis": lambda: redis_answers(redis)}
    )
    try:
        yield app, gateway
    finally:
        await router.close()
        await message_log.close()
        await presence.close()
        await redis.aclose()
        await store.close()
        await transactions_pool.close()
        await pool.close()
