"""`csms chargers add | rotate-password`: register a charger or give it a new OCPP password, shown once."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import click
from redis.asyncio import Redis

from csms.cli.runtime import run
from csms.connectivity import wait_for_servers
from csms.domain.topics import EVENT_TYPES
from csms.embedded import resolve_database, resolve_redis
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from csms.migrations import migrate
from csms.settings import Settings
from write_api.access import NotFound
from write_api.charger_admin import ChargerAdmin, ChargerAdminError, RegisteredCharger, parse_evse
from write_api.ocpp.message_log import LoggedFrame, MessageLog


@click.group()
def chargers() -> None:
    """Register chargers and manage their OCPP credentials."""


@chargers.command("add")
@click.option("--company", "company_id", type=click.UUID, required=True, help="Owning company's id.")
@click.option("--station", "station_id", type=click.UUID, required=True, help="The station it stands at.")
@click.option("--id", "charge_point_id", required=True, help="OCPP identity (the last segment of its URL).")
@click.option(
    "--evse",
    "evses",
    multiple=True,
    required=True,
    help="EVSE:STANDARD:KW, e.g. 1:IEC_62196_T2_COMBO:150 (repeat).",
)
@click.pass_obj
def add(
    settings: Settings,
    company_id: uuid.UUID,
    station_id: uuid.UUID,
    charge_point_id: str,
    evses: tuple[str, ...],
) -> None:
    """Register a charger and print its Basic-auth password (shown only now; stored as a hash)."""
    try:
        layout = tuple(parse_evse(spec) for spec in evses)
    except ChargerAdminError as error:
        raise click.BadParameter(str(error), param_hint="--evse") from None

    async def register(admin: ChargerAdmin) -> RegisteredCharger:
        return await admin.register(company_id, station_id, charge_point_id, layout)

    _print(_with_admin(settings, register))


@chargers.command("rotate-password")
@click.option("--id", "charge_point_id", required=True, help="OCPP identity of the charger.")
@click.pass_obj
def rotate_password(settings: Settings, charge_point_id: str) -> None:
    """Give a charger a new password (printed once); its next connection must use it."""

    async def rotate(admin: ChargerAdmin) -> RegisteredCharger:
        return await admin.rotate_password(charge_point_id)

    _print(_with_admin(settings, rotate))


@chargers.command("log")
@click.option("--id", "charge_point_id", required=True, help="OCPP identity of the charger.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000), help="Frames to show.")
@click.pass_obj
def log(settings: Settings, charge_point_id: str, limit: int) -> None:
    """The charger's latest OCPP frames in both directions, oldest first (to debug a charger)."""

    async def read(redis_url: str) -> list[LoggedFrame]:
        redis = Redis.from_url(redis_url)
        try:
            return await MessageLog(redis, settings.redis_key_prefix).read(charge_point_id, limit)
        finally:
            await redis.aclose()

    with resolve_redis(settings) as redis_url:
        frames = run(read(redis_url))
    for frame in reversed(frames):
        arrow = "->" if frame.direction == "in" else "<-"
        click.echo(f"{frame.at.isoformat(timespec='milliseconds')} {arrow} {frame.raw}")
    if not frames:
        click.echo(f"no frames logged for {charge_point_id}", err=True)


def _print(registered: RegisteredCharger) -> None:
    click.echo(f"charger:  {registered.charge_point_id} ({registered.charger_id})")
    click.echo(f"password: {registered.password}")
    click.echo("The password is shown only now: configure it on the charger (AuthorizationKey).", err=True)


def _with_admin(
    settings: Settings, action: Callable[[ChargerAdmin], Awaitable[RegisteredCharger]]
) -> RegisteredCharger:
    async def main(database_url: str) -> RegisteredCharger:
        await wait_for_servers(database_url=database_url, retry_seconds=settings.startup_retry_seconds)
        await migrate(database_url)
        pool = await create_pool(database_url, max_size=2)
        store = EventStore(pool, database_url)
        try:
            admin = ChargerAdmin(Repository(store, EventCodec(EVENT_TYPES)), lambda: datetime.now(UTC))
            return await action(admin)
        except (ChargerAdminError, NotFound) as error:
            raise click.ClickException(str(error)) from None
        finally:
            await store.close()
            await pool.close()

    with resolve_database(settings) as database_url:
        return run(main(database_url))
