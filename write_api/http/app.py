"""The write API application: auth, sessions, management, remote commands; problems and idempotency."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from csms.observability.health import ReadinessCheck, add_health_routes
from csms.web.http_metrics import http_metrics_middleware
from csms.web.problems import problem_middleware
from csms.web.request_id import echo_request_id, request_id_middleware
from write_api.auth.actor import authenticated_actor
from write_api.auth.app import mount_auth
from write_api.auth.config import AuthConfig
from write_api.auth.service import AuthService
from write_api.billing.payment_methods import PaymentMethods
from write_api.billing.session_payments import SessionPayments
from write_api.billing.webhooks import StripeWebhooks
from write_api.charger_admin import ChargerAdmin
from write_api.http.context import ACTOR, CHARGER_ADMIN, COMMANDS, MANAGEMENT, SESSIONS
from write_api.http.idempotency_middleware import idempotency_middleware
from write_api.http.management_routes import add_management_routes
from write_api.http.openapi import add_openapi_route
from write_api.http.payment_routes import add_payment_routes
from write_api.http.session_routes import add_session_routes
from write_api.idempotency import IdempotencyKeys
from write_api.management import Management
from write_api.ocpp.commands import ChargerCommands
from write_api.sessions import SessionService


@dataclass(frozen=True, slots=True)
class WriteApiServices:
    """Everything the write API's handlers call, built by the caller (runtime or tests)."""

    auth_config: AuthConfig
    auth: AuthService
    sessions: SessionService
    management: Management
    charger_admin: ChargerAdmin
    commands: ChargerCommands
    idempotency: IdempotencyKeys
    readiness: Mapping[str, ReadinessCheck]
    payment_methods: PaymentMethods
    session_payments: SessionPayments
    webhooks: StripeWebhooks | None  # None: STRIPE_WEBHOOK_SECRET not set


def create_write_app(services: WriteApiServices) -> web.Application:
    # Problems outermost, so the idempotency layer stores (and replays) the problem documents too.
    # Metrics outermost, so they count what the client got (a problem, a replayed answer) and all of its time.
    # The request id before everything, so that every line logged about the request carries it.
    app = web.Application(
        middlewares=[
            request_id_middleware,
            http_metrics_middleware("write"),
            problem_middleware,
            idempotency_middleware(services.idempotency),
        ]
    )
    app.on_response_prepare.append(echo_request_id)
    app[ACTOR] = authenticated_actor
    app[SESSIONS] = services.sessions
    app[MANAGEMENT] = services.management
    app[CHARGER_ADMIN] = services.charger_admin
    app[COMMANDS] = services.commands
    mount_auth(app, services.auth_config, services.auth)
    add_session_routes(app)
    add_management_routes(app)
    add_payment_routes(app, services.payment_methods, services.session_payments, services.webhooks)
    add_openapi_route(app)
    add_health_routes(app, services.readiness)
    return app
