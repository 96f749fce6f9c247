"""The roles a process can serve (`csms serve --role NAME`), by name: the map from the command line to code.

A role is an async function that runs until cancelled. `csms dev` runs every role in one process; production
runs each in its own processes, scaled independently. Roles are imported here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from csms.cli.serving import serve_app
from csms.embedded import Servers
from csms.observability.gc_pauses import (
    collect_young_every,
    freeze_after_full_collections,
    freeze_long_lived,
    watch_gc_pauses,
)
from csms.observability.logging import log_context
from csms.observability.loop_lag import watch_loop_lag
from csms.observability.process_metrics import watch_process
from csms.settings import Settings
from csms.stripe_endpoint import StripeEndpoint
from projections.runtime import projector_service
from read_api.runtime import read_api_app
from write_api.billing.runtime import billing_app
from write_api.http.runtime import write_api_app
from write_api.ocpp.runtime import gateway_app, tls_context

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoleContext:
    """What every role is given: the settings, where Postgres and Redis are, Stripe (None: not set up), and
    whether its port is shared with other processes."""

    settings: Settings
    servers: Servers
    stripe: StripeEndpoint | None = None
    reuse_port: bool = False  # several processes share each port (`csms serve --workers N`)


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    summary: str
    run: Callable[[RoleContext], Awaitable[None]]


class RoleFailed(RuntimeError):
    """A role stopped with an error; the message names the role and the error."""


async def run_write_api(context: RoleContext) -> None:
    """The write API (auth, sessions, management, remote commands) with /healthz and /readyz."""
    settings = context.settings
    async with write_api_app(
        settings, context.servers.database_url, context.servers.redis_url, context.stripe
    ) as app:
        await serve_app(app, host=settings.host, port=settings.write_api_port, reuse_port=context.reuse_port)


async def run_billing(context: RoleContext) -> None:
    """The billing process manager (one active instance) with /metrics, /healthz and /readyz."""
    settings = context.settings
    if context.stripe is None:
        raise RuntimeError(
            "billing needs Stripe: set STRIPE_API_KEY (and CSMS_STRIPE_API_BASE for localstripe)"
        )
    async with (
        billing_app(settings, context.servers.database_url, context.stripe) as (app, manager),
        asyncio.TaskGroup() as group,
    ):
        group.create_task(manager.run())
        group.create_task(
            serve_app(app, host=settings.host, port=settings.billing_port, reuse_port=context.reuse_port)
        )


async def run_gateway(context: RoleContext) -> None:
    """The OCPP-J gateway on CSMS_OCPP_PORT (wss:// when CSMS_OCPP_TLS_CERT / _KEY are set)."""
    settings = context.settings
    async with gateway_app(settings, context.servers.database_url, context.servers.redis_url) as (
        app,
        _gateway,
    ):
        await serve_app(
            app,
            host=settings.host,
            port=settings.ocpp_port,
            ssl_context=tls_context(settings.ocpp_tls_cert, settings.ocpp_tls_key),
            reuse_port=context.reuse_port,
        )


async def run_read_api(context: RoleContext) -> None:
    """The read API (station discovery, sessions, receipts, operator views) with /healthz and /readyz."""
    settings = context.settings
    async with read_api_app(settings, context.servers.database_url, context.servers.redis_url) as app:
        await serve_app(app, host=settings.host, port=settings.read_api_port, reuse_port=context.reuse_port)


async def run_projector(context: RoleContext) -> None:
    """Every projector, each active here or standing by for the instance that holds its lock, with
    /metrics, /healthz and /readyz on CSMS_PROJECTOR_PORT."""
    settings = context.settings
    async with (
        projector_service(settings, context.servers.database_url, context.servers.redis_url) as (
            app,
            runners,
        ),
        asyncio.TaskGroup() as group,
    ):
        for runner in runners:
            group.create_task(runner.run(), name=f"projection:{runner.target.name}")
        group.create_task(
            serve_app(app, host=settings.host, port=settings.projector_port, reuse_port=context.reuse_port)
        )


ROLES: Mapping[str, Role] = {
    role.name: role
    for role in (
        Role(
            "write-api",
            "the write API on CSMS_WRITE_API_PORT: auth, sessions, management, commands",
            run_write_api,
        ),
        Role("gateway", "the OCPP-J 1.6 / 2.0.1 WebSocket gateway on CSMS_OCPP_PORT", run_gateway),
        Role(
            "projector",
            "the projectors that keep the read models (one active instance each, others stand by)",
            run_projector,
        ),
        Role(
            "billing",
            "the billing process manager: charges priced sessions through Stripe (one active instance)",
            run_billing,
        ),
        Role(
            "read-api",
            "the read API on CSMS_READ_API_PORT: stations nearby, sessions, receipts, operator views",
            run_read_api,
        ),
    )
}


async def run_roles(roles: Iterable[Role], context: RoleContext, stop: Awaitable[None]) -> None:
    """Run `roles` concurrently until `stop` completes; the first role to fail stops the others.

    Raises `RoleFailed` naming the role that failed.
    """
    tasks = {asyncio.create_task(_run_role(role, context), name=f"role:{role.name}"): role for role in roles}
    stopper = asyncio.ensure_future(stop)
    # Once per process, whatever its roles: the loop's lag, the collector's pauses, memory and descriptors for
    # /metrics, and the long-lived heap kept out of full collections.
    helpers = [
        asyncio.create_task(watch_loop_lag(), name="event-loop-lag"),
        asyncio.create_task(watch_process(), name="process-metrics"),
    ]
    watch_gc_pauses()
    collect_young_every(context.settings.gc_young_objects)
    if context.settings.gc_freeze_seconds > 0:
        freeze_after_full_collections()
        helpers.append(
            asyncio.create_task(freeze_long_lived(context.settings.gc_freeze_seconds), name="gc-freeze")
        )
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in [*tasks, stopper, *helpers]:
            task.cancel()
        await asyncio.gather(*tasks, stopper, *helpers, return_exceptions=True)
    for task in done:
        if task is stopper:
            continue
        role = tasks[task]
        error = task.exception()
        reason = "returned" if error is None else f"{type(error).__name__}: {error}"
        raise RoleFailed(f"role {role.name} stopped unexpectedly: {reason}") from error


async def _run_role(role: Role, context: RoleContext) -> None:
    with log_context(role=role.name):
        _log.info("starting role")
        try:
            await role.run(context)
        except asyncio.CancelledError:
            _log.info("role stopped")
            raise
        except Exception:
            _log.exception("role failed")
            raise
