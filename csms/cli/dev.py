"""`csms dev`: the whole system on one machine, from nothing installed to serving, in one command."""

from __future__ import annotations

import logging

import click

from csms.cli.roles import ROLES, RoleContext, run_roles
from csms.cli.runtime import run, wait_for_stop_signal
from csms.connectivity import wait_for_servers
from csms.demo import seed_demo
from csms.embedded import Servers, resolve_servers
from csms.localstripe import development_stripe
from csms.migrations import migrate
from csms.observability.logging import configure_logging
from csms.settings import Settings
from csms.stripe_endpoint import StripeEndpoint

_log = logging.getLogger(__name__)


@click.command()
@click.pass_obj
def dev(settings: Settings) -> None:
    """Run every role in one process until Ctrl-C.

    Starts embedded Postgres and Redis under CSMS_DATA_DIR unless CSMS_DATABASE_URL / CSMS_REDIS_URL are
    set, and localstripe unless STRIPE_API_KEY / CSMS_STRIPE_API_BASE are; applies migrations, seeds the demo
    company with its stations and chargers, then serves.
    """
    configure_logging(settings.log_level)
    with resolve_servers(settings) as servers, development_stripe(settings) as stripe:
        run(_dev(settings, servers, stripe))


async def _dev(settings: Settings, servers: Servers, stripe: StripeEndpoint) -> None:
    await wait_for_servers(
        database_url=servers.database_url,
        redis_url=servers.redis_url,
        retry_seconds=settings.startup_retry_seconds,
    )
    applied = await migrate(servers.database_url)
    _log.info("schema is current", extra={"applied": applied})
    credentials_file = settings.data_dir / "demo-chargers.txt"
    created = await seed_demo(servers.database_url, credentials_file)
    if created:
        _log.info(
            "demo chargers registered; their passwords are in the credentials file (shown only now)",
            extra={"chargers": created, "credentials_file": str(credentials_file)},
        )
    _log.info("demo data is in place")
    _log.info("payments go to Stripe", extra={"stripe_api_base": stripe.api_base})
    await run_roles(ROLES.values(), RoleContext(settings, servers, stripe), wait_for_stop_signal())
