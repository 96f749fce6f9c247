"""`csms migrate`: apply pending schema migrations (safe to run from several processes at once)."""

from __future__ import annotations

import click

from csms.cli.runtime import run
from csms.connectivity import wait_for_servers
from csms.embedded import resolve_database
from csms.migrations import migrate
from csms.observability.logging import configure_logging
from csms.settings import Settings


@click.command("migrate")
@click.pass_obj
def migrate_command(settings: Settings) -> None:
    """Apply pending migrations to CSMS_DATABASE_URL (or the embedded Postgres) and list them."""
    configure_logging(settings.log_level)
    with resolve_database(settings) as database_url:
        applied = run(_migrate(database_url, settings.startup_retry_seconds))
    for name in applied:
        click.echo(f"applied {name}")
    if not applied:
        click.echo("schema is up to date")


async def _migrate(database_url: str, retry_seconds: float) -> list[str]:
    await wait_for_servers(database_url=database_url, retry_seconds=retry_seconds)
    return await migrate(database_url)
