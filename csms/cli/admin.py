"""`csms admin create-admin`: the first platform administrator; the password never appears in argv."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from csms.cli.runtime import run
from csms.connectivity import wait_for_servers
from csms.domain.topics import EVENT_TYPES
from csms.embedded import resolve_database
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.migrations import migrate
from csms.settings import Settings
from write_api.auth.accounts import Account, Accounts
from write_api.auth.config import AuthConfig
from write_api.auth.errors import DuplicateEmail, InvalidInput
from write_api.auth.passwords import PasswordHasher


@click.group()
def admin() -> None:
    """Platform administration: administrator accounts."""


@admin.command("create-admin")
@click.option("--email", required=True, help="The administrator's email (their login).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of stdin (for scripts); otherwise it is prompted for.",
)
@click.pass_obj
def create_admin(settings: Settings, email: str, password_stdin: bool) -> None:
    """Create an admin account that can log in at /auth/login."""
    if password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def main(database_url: str) -> Account:
        await wait_for_servers(database_url=database_url, retry_seconds=settings.startup_retry_seconds)
        await migrate(database_url)
        pool = await create_pool(database_url, max_size=2)
        store = EventStore(pool, database_url)
        try:
            accounts = Accounts(
                pool,
                PasswordHasher(AuthConfig().argon2),
                Repository(store, EventCodec(EVENT_TYPES)),
                lambda: datetime.now(UTC),
            )
            return await accounts.create_admin(email, password)
        finally:
            await store.close()
            await pool.close()

    with resolve_database(settings) as database_url:
        try:
            account = run(main(database_url))
        except DuplicateEmail as error:
            raise click.ClickException(f"{error}; nothing was changed") from None
        except InvalidInput as error:
            hints = {"email": "--email", "password": "password"}
            first = error.errors[0]
            raise click.BadParameter(first.detail, param_hint=hints.get(first.field, first.field)) from None
    click.echo(f"admin account created: {account.email} ({account.id})")
