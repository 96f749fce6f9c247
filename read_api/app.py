"""The read API application: station discovery, live sessions, history, receipts and operator views.

Every handler answers from read models (Redis keys and Postgres views the projectors keep), never from the
event store, and every object access checks ownership (a driver's own sessions, an operator's own company).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from csms.observability.health import ReadinessCheck, add_health_routes
from csms.web.bearer import TOKEN_VERIFIER, BearerVerifier
from csms.web.http_metrics import http_metrics_middleware
from csms.web.problems import problem_middleware
from csms.web.request_id import document_request_ids, echo_request_id, request_id_middleware
from read_api import manage_routes, session_routes, station_routes
from read_api.context import FRESHNESS, KEY_PREFIX, POOL, REDIS
from read_api.freshness import Freshness
from read_api.openapi import OPENAPI_DOCUMENT, build_document, openapi_json
from read_api.station_routes import STATION_RATE_LIMIT, RateLimiter

_ROUTE_MODULES = (station_routes, session_routes, manage_routes)


@dataclass(frozen=True, slots=True)
class ReadApiDependencies:
    """What the read API needs, built by the caller (runtime or tests)."""

    pool: asyncpg.Pool
    redis: Redis
    key_prefix: str
    verifier: BearerVerifier
    freshness: Freshness
    readiness: Mapping[str, ReadinessCheck]
    public_rate_limit: RateLimiter | None = None  # per client address, for the public routes (nearby ...)


def create_read_app(dependencies: ReadApiDependencies) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, http_metrics_middleware("read"), problem_middleware]
    )
    app.on_response_prepare.append(echo_request_id)
    app[POOL] = dependencies.pool
    app[REDIS] = dependencies.redis
    app[KEY_PREFIX] = dependencies.key_prefix
    app[TOKEN_VERIFIER] = dependencies.verifier
    app[FRESHNESS] = dependencies.freshness
    if dependencies.public_rate_limit is not None:
        app[STATION_RATE_LIMIT] = dependencies.public_rate_limit
    paths: dict[str, dict[str, object]] = {}
    schemas: dict[str, dict[str, object]] = {}
    for module in _ROUTE_MODULES:
        module.add_routes(app)
        paths.update(module.PATHS)
        schemas.update(module.SCHEMAS)
    app[OPENAPI_DOCUMENT] = document_request_ids(build_document(paths, schemas))
    app.router.add_get("/openapi.json", openapi_json)
    add_health_routes(app, dependencies.readiness)
    return app
