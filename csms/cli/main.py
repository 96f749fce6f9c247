"""The root `csms` group: parse settings once, register the commands, turn start-up failures into one line."""

from __future__ import annotations

from typing import Any

import click

from csms.cli.admin import admin
from csms.cli.bench import bench
from csms.cli.chargers import chargers
from csms.cli.dev import dev
from csms.cli.migrate import migrate_command
from csms.cli.projections import projections
from csms.cli.roles import RoleFailed
from csms.cli.serve import serve
from csms.cli.show_settings import show_settings
from csms.connectivity import DependencyUnavailable
from csms.embedded import EmbeddedServerError
from csms.migrations import MigrationError
from csms.settings import Settings, SettingsError
from loadtests.simulator.cli import simulate


class ConfigurationError(click.ClickException):
    """A malformed setting: one `Error: ...` line naming the variable, exit code 2 (as for bad usage)."""

    exit_code = 2


class StartupFailure(click.ClickException):
    """A server unreachable, a migration refused, a role crashed: one `Error: ...` line, exit code 1."""

    exit_code = 1


class _CsmsGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SettingsError as error:
            raise ConfigurationError(str(error)) from error
        except (DependencyUnavailable, EmbeddedServerError, MigrationError, RoleFailed) as error:
            raise StartupFailure(str(error)) from error


@click.group(cls=_CsmsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Charging Station Management System.

    Configuration comes from CSMS_* environment variables (`csms settings` shows them). With
    CSMS_DATABASE_URL or CSMS_REDIS_URL unset, embedded servers run under CSMS_DATA_DIR.
    """
    # Parsed once, here; every command receives these settings as its context object.
    ctx.obj = Settings.from_env()


cli.add_command(dev)
cli.add_command(serve)
cli.add_command(migrate_command)
cli.add_command(show_settings)
cli.add_command(bench)
cli.add_command(chargers)
cli.add_command(simulate)
cli.add_command(admin)
cli.add_command(projections)


def main() -> None:
    """Entry point of the `csms` console script."""
    cli(prog_name="csms")
