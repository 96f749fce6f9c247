"""`csms projections status | rebuild NAME`: see how far each read model has got; rebuild one from the log."""

from __future__ import annotations

import click

from csms.cli.runtime import run
from csms.connectivity import wait_for_servers
from csms.domain.topics import EVENT_TYPES
from csms.embedded import resolve_servers
from csms.eventstore import EventCodec
from csms.migrations import migrate
from csms.settings import Settings
from projections.rebuild import RebuildError, rebuild
from projections.runtime import projection_clients
from projections.status import projection_status


@click.group()
def projections() -> None:
    """Inspect and rebuild the read models."""


@projections.command("status")
@click.pass_obj
def status(settings: Settings) -> None:
    """Position, lag and state of every projection."""

    async def main(database_url: str, redis_url: str) -> None:
        await wait_for_servers(
            database_url=database_url, redis_url=redis_url, retry_seconds=settings.startup_retry_seconds
        )
        await migrate(database_url)
        async with projection_clients(settings, database_url, redis_url) as (pool, _redis, targets):
            rows = await projection_status(pool, targets)
        header = ("projection", "store", "generation", "position", "head", "lag events", "lag s", "state")
        table = [header] + [
            (
                row.name,
                row.kind,
                str(row.generation),
                str(row.position),
                str(row.head),
                str(row.lag_events),
                f"{row.lag_seconds:.2f}",
                row.state + (f" ({row.holder})" if row.holder and row.state == "running" else ""),
            )
            for row in rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        for line in table:
            click.echo(
                "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            )

    with resolve_servers(settings) as servers:
        run(main(servers.database_url, servers.redis_url))


@projections.command("rebuild")
@click.argument("name")
@click.option(
    "--retire-after",
    type=click.FloatRange(0),
    default=5.0,
    show_default=True,
    help="Seconds the replaced copy is kept after the swap, for reads that started on it.",
)
@click.pass_obj
def rebuild_command(settings: Settings, name: str, retire_after: float) -> None:
    """Replay the whole log into a fresh copy of NAME and swap it in; the old one serves reads meanwhile."""

    async def main(database_url: str, redis_url: str) -> None:
        await wait_for_servers(
            database_url=database_url, redis_url=redis_url, retry_seconds=settings.startup_retry_seconds
        )
        await migrate(database_url)
        async with projection_clients(settings, database_url, redis_url) as (pool, _redis, targets):
            by_name = {target.name: target for target in targets}
            if name not in by_name:
                raise click.BadParameter(f"no projection {name!r}; known: {', '.join(sorted(by_name))}")
            try:
                report = await rebuild(
                    by_name[name], pool, database_url, EventCodec(EVENT_TYPES), retire_after=retire_after
                )
            except RebuildError as error:
                raise click.ClickException(str(error)) from None
        click.echo(
            f"{report.name}: generation {report.generation} now serves (replaced {report.replaced}); "
            f"{report.events} events to position {report.position} in {report.seconds:.1f} s "
            f"({report.events_per_second:,.0f} events/s)"
        )

    with resolve_servers(settings) as servers:
        run(main(servers.database_url, servers.redis_url))
