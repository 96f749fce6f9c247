"""`csms bench locust-setup`: what the locust files need, registered in the running system, in one JSON file.

Against a running system (`csms dev`, or roles started with the same settings): chargers registered at
published stations (straight into the event store, as the other benchmarks register theirs), split into
the fleet of `loadtests/locust/chargers.py` and the chargers `mobile_app.py`'s drivers start sessions on;
drivers registered over the write API, each with a test card saved at localstripe; and the addresses of
the APIs and the gateway. The file (`$CSMS_DATA_DIR/locust.json` by default, mode 0600: it holds passwords)
is what the locust files read (`--csms-data`). Each run registers new chargers and drivers of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import click

from csms.settings import Settings
from loadtests.drivers import PASSWORD, sign_up_drivers
from loadtests.scratch import register_fleet

_CHARGERS_PER_STATION = 5


async def _write_api_answers(http: aiohttp.ClientSession, api: str) -> None:
    try:
        async with http.get(f"{api}/healthz") as response:
            if response.status == 200:
                return
    except (aiohttp.ClientError, TimeoutError):
        pass
    raise click.ClickException(f"no write API answers at {api}: start the system first (`csms dev`)")


async def prepare(
    database_url: str,
    *,
    chargers: int,
    session_chargers: int,
    drivers: int,
    write_api: str,
    read_api: str,
    ocpp_url: str,
    stripe_url: str,
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:4].upper()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await _write_api_answers(http, write_api)
        fleet = await register_fleet(
            database_url,
            chargers + session_chargers,
            id_prefix=f"LOC{run_id}-",
            per_station=_CHARGERS_PER_STATION,
        )
        signed_up = await sign_up_drivers(http, write_api, stripe_url, drivers, f"locust-{run_id.lower()}")
    credentials = [{"chargerId": cp, "password": pw} for cp, pw in fleet.passwords.items()]
    return {
        "writeApi": write_api,
        "readApi": read_api,
        "ocppUrl": ocpp_url,
        "idTag": fleet.id_token,
        "stations": [
            {"stationId": s.station_id, "latitude": s.latitude, "longitude": s.longitude}
            for s in fleet.stations
        ],
        "chargers": credentials[:chargers],
        "sessionChargers": credentials[chargers:],
        "drivers": [{"email": d.email, "password": PASSWORD} for d in signed_up],
    }


@click.command("locust-setup")
@click.option(
    "--chargers",
    type=click.IntRange(0, 20_000),
    default=200,
    show_default=True,
    help="Chargers for loadtests/locust/chargers.py (one per user).",
)
@click.option(
    "--session-chargers",
    type=click.IntRange(1, 1_000),
    default=10,
    show_default=True,
    help="Chargers the drivers of loadtests/locust/mobile_app.py charge at.",
)
@click.option(
    "--drivers",
    type=click.IntRange(1, 5_000),
    default=50,
    show_default=True,
    help="Driver accounts, each with a saved test card.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the file  [default: $CSMS_DATA_DIR/locust.json]",
)
@click.option(
    "--stripe", "stripe_url", help="localstripe's URL  [default: http://HOST:CSMS_LOCALSTRIPE_PORT]"
)
@click.pass_context
def locust_setup(
    ctx: click.Context,
    chargers: int,
    session_chargers: int,
    drivers: int,
    out: Path | None,
    stripe_url: str | None,
) -> None:
    """Register chargers and drivers in the running system for the locust files, and write their file."""
    settings: Settings = ctx.obj["settings"]
    host = settings.host
    document = asyncio.run(
        prepare(
            ctx.obj["database_url"],
            chargers=chargers,
            session_chargers=session_chargers,
            drivers=drivers,
            write_api=f"http://{host}:{settings.write_api_port}",
            read_api=f"http://{host}:{settings.read_api_port}",
            ocpp_url=f"ws://{host}:{settings.ocpp_port}/ocpp",
            stripe_url=stripe_url or f"http://{host}:{settings.localstripe_port}",
        )
    )
    path = out or settings.data_dir / "locust.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2)
    click.echo(
        f"{path}: {chargers} chargers, {session_chargers} session chargers at "
        f"{len(document['stations'])} stations, {drivers} drivers"
    )
