"""`csms serve --role NAME`: run chosen roles in this process, as production does one role per process;
`--workers N` runs them as several processes sharing their ports, so one box uses all its cores."""

from __future__ import annotations

import logging
import os
import sys

import click

from csms.cli.roles import ROLES, Role, RoleContext, run_roles
from csms.cli.runtime import run, wait_for_stop_signal
from csms.cli.workers import Supervisor, metrics_directory, plan_workers
from csms.connectivity import wait_for_servers
from csms.embedded import Servers, resolve_servers
from csms.observability.logging import configure_logging
from csms.settings import Settings
from csms.stripe_endpoint import configured_endpoint

_log = logging.getLogger(__name__)

ALL_ROLES = "all"


@click.command()
@click.option(
    "--role",
    "role_names",
    multiple=True,
    required=True,
    type=click.Choice([ALL_ROLES, *sorted(ROLES)]),
    help="Role to run; repeat to run several. all: every role (billing only when Stripe is configured). "
    + "; ".join(f"{role.name}: {role.summary}" for role in ROLES.values()),
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes per gateway, write-api and read-api role, sharing each port (SO_REUSEPORT); the "
    "projector and billing run once. Above 1, this process only supervises them.",
)
@click.option(
    "--reuse-port",
    is_flag=True,
    help="Listen with SO_REUSEPORT, so other processes can serve the same ports (set for each worker).",
)
@click.pass_obj
def serve(settings: Settings, role_names: tuple[str, ...], workers: int, reuse_port: bool) -> None:
    """Run the given roles until SIGINT or SIGTERM. Migrations are not applied: run `csms migrate` first."""
    configure_logging(settings.log_level)
    names = _role_names(role_names, stripe_configured=configured_endpoint(settings) is not None)
    with resolve_servers(settings) as servers:
        if workers == 1:
            run(_serve(settings, servers, [ROLES[name] for name in names], reuse_port))
            return
        exit_code = run(_supervise(settings, servers, names, workers))
    sys.exit(exit_code)


def _role_names(requested: tuple[str, ...], *, stripe_configured: bool) -> list[str]:
    if ALL_ROLES not in requested:
        return list(dict.fromkeys(requested))
    if not stripe_configured:
        _log.warning("billing not started: Stripe is not configured (STRIPE_API_KEY)")
    return [name for name in ROLES if name != "billing" or stripe_configured]


async def _serve(settings: Settings, servers: Servers, roles: list[Role], reuse_port: bool) -> None:
    await wait_for_servers(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        retry_seconds=settings.startup_retry_seconds,
    )
    await run_roles(
        roles,
        RoleContext(settings, servers, configured_endpoint(settings), reuse_port=reuse_port),
        wait_for_stop_signal(),
    )


async def _supervise(settings: Settings, servers: Servers, names: list[str], workers: int) -> int:
    await wait_for_servers(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        retry_seconds=settings.startup_retry_seconds,
    )
    # Workers reach the same servers, embedded ones included, whatever this process resolved them to.
    environment = {
        **os.environ,
        "CSMS_DATABASE_URL": servers.database_url,
        "CSMS_REDIS_URL": servers.redis_url,
    }
    with metrics_directory() as directory:
        supervisor = Supervisor(plan_workers(names, workers), environment, directory)
        return await supervisor.run(wait_for_stop_signal())
