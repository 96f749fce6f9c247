"""Assembles a read API process: the read-model pool, Redis, the token verifier, and the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from csms.eventstore import create_pool
from csms.identity.issuers_config import external_issuers
from csms.identity.signing_keys import load_signing_keys
from csms.identity.verifier import build_token_verifier
from csms.observability.health import postgres_answers, redis_answers
from csms.observability.metrics import add_metrics_route
from csms.redis_support import redis_client
from csms.settings import Settings, path_list
from csms.web.client_address import parse_networks
from projections.catalog import projection_targets
from projections.positions import lag_seconds, postgres_position, redis_position
from read_api.app import ReadApiDependencies, create_read_app
from read_api.freshness import Freshness
from read_api.station_routes import RateLimiter

# Which store each projection lives in, for read-your-writes waits (`minPosition`).
REDIS_PROJECTIONS = frozenset({"station_discovery"})


@contextlib.asynccontextmanager
async def read_api_app(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[web.Application]:
    pool = await create_pool(
        database_url, max_size=settings.db_pool_size, retry_seconds=settings.startup_retry_seconds
    )
    redis = redis_client(redis_url)
    issuers = external_issuers(settings)
    http = aiohttp.ClientSession() if issuers else None
    # Our tokens are checked with the public half of the signing keys; reading the key file is a small
    # blocking read, done once at start-up.
    keys = load_signing_keys(
        settings.auth_signing_key_file,
        settings.data_dir,
        path_list(settings.auth_previous_public_key_files),
    )
    verifier = build_token_verifier(
        accept_local_tokens=True,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        keys=keys,
        external_issuers=issuers,
        http=http,
    )
    prefix = settings.redis_key_prefix
    topics = {target.name: target.projector.topics for target in projection_targets(pool, redis, prefix)}

    async def position_of(projection: str) -> int:
        if projection in REDIS_PROJECTIONS:
            return await redis_position(redis, prefix, projection)
        return await postgres_position(pool, projection)

    async def projections_caught_up() -> None:
        """Ready only while every read model is within CSMS_READ_API_MAX_LAG_SECONDS of the log."""
        behind = []
        for name, handled in topics.items():
            lag = await lag_seconds(pool, await position_of(name), handled)
            if lag > settings.read_api_max_lag_seconds:
                behind.append(f"{name} is {lag:.0f} s behind")
        if behind:
            raise RuntimeError("; ".join(behind))

    dependencies = ReadApiDependencies(
        pool=pool,
        redis=redis,
        key_prefix=prefix,
        verifier=verifier,
        freshness=Freshness(position_of),
        readiness={
            "postgres": lambda: postgres_answers(pool),
            "redis": lambda: redis_answers(redis),
            "projections": projections_caught_up,
        },
        public_rate_limit=RateLimiter(
            settings.read_api_rate_limit,
            settings.read_api_rate_burst,
            trusted_proxies=parse_networks(settings.trusted_proxies.split(",")),
        ),
    )
    try:
        app = create_read_app(dependencies)
        add_metrics_route(app)
        yield app
    finally:
        if http is not None:
            await http.close()
        await redis.aclose()
        await pool.close()
