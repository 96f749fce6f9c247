"""`csms serve --role NAME`: run chosen roles in this process, as production does one role per process."""

from __future__ import annotations

import click

from csms.cli.roles import ROLES, Role, RoleContext, run_roles
from csms.cli.runtime import run, wait_for_stop_signal
from csms.connectivity import wait_for_servers
from csms.embedded import Servers, resolve_servers
from csms.observability.logging import configure_logging
from csms.settings import Settings
from csms.stripe_endpoint import configured_endpoint


@click.command()
@click.option(
    "--role",
    "role_names",
    multiple=True,
    required=True,
    type=click.Choice(sorted(ROLES)),
    help="Role to run; repeat to run several in one process. "
    + "; ".join(f"{role.name}: {role.summary}" for role in ROLES.values()),
)
@click.pass_obj
def serve(settings: Settings, role_names: tuple[str, ...]) -> None:
    """Run the given roles until SIGINT or SIGTERM. Migrations are not applied: run `csms migrate` first."""
    configure_logging(settings.log_level)
    roles = [ROLES[name] for name in dict.fromkeys(role_names)]
    with resolve_servers(settings) as servers:
        run(_serve(settings, servers, roles))


async def _serve(settings: Settings, servers: Servers, roles: list[Role]) -> None:
    await wait_for_servers(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        retry_seconds=settings.startup_retry_seconds,
    )
    await run_roles(
        roles, RoleContext(settings, servers, configured_endpoint(settings)), wait_for_stop_signal()
    )
