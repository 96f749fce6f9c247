"""The `simulate` command: run a fleet of simulated chargers against a CSMS and report what it measured."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from loadtests.simulator.config import ChargerConfig, OcppVersion
from loadtests.simulator.credentials import load_passwords
from loadtests.simulator.fleet import Fleet, charger_ids
from loadtests.simulator.stats import Stats

T = TypeVar("T")

#: Chargers connected per second when --ramp-up is not given.
_DEFAULT_RAMP_RATE = 500.0


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed."""
    try:
        import uvloop  # optional: absent on Windows
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _raise_open_files_limit(wanted: int) -> None:
    """Each charger holds a socket: lift the soft limit on open files towards the hard one."""
    try:
        import resource  # POSIX only
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def _report_progress(stats: Stats, every: float) -> None:
    loop = asyncio.get_running_loop()
    last_calls, last_at = 0, loop.time()
    while True:
        await asyncio.sleep(every)
        now = loop.time()
        calls = sum(a.results for a in stats.actions.values())
        rate = (calls - last_calls) / (now - last_at)
        last_calls, last_at = calls, now
        click.echo(
            f"connected {stats.connected}  accepted {stats.accepted}  calls/s {rate:,.0f}  "
            f"sessions {stats.sessions_started - stats.sessions_ended}  errors {sum(stats.errors.values())}  "
            f"connect failures {sum(stats.connect_failures.values())}",
            err=True,
        )


async def simulate_fleet(fleet: Fleet, duration: float | None, progress: float) -> tuple[Stats, float]:
    """Run `fleet` until `duration` or SIGINT / SIGTERM; returns its stats and the time it ran."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
    reporter = loop.create_task(_report_progress(fleet.stats, progress)) if progress > 0 else None
    began = loop.time()
    try:
        await fleet.run(duration=duration, stop=stop)
    finally:
        if reporter is not None:
            reporter.cancel()
        for signum in handled:
            loop.remove_signal_handler(signum)
    return fleet.stats, loop.time() - began


@click.command("simulate")
@click.option(
    "--url",
    default="ws://127.0.0.1:9000/ocpp",
    show_default=True,
    help="CSMS endpoint; /{chargerId} is appended.",
)
@click.option(
    "--failover-url",
    "failover_urls",
    multiple=True,
    help="Another node of the CSMS (repeatable): a charger whose endpoint fails or goes away tries the next.",
)
@click.option(
    "--chargers", type=click.IntRange(min=1), default=10, show_default=True, help="Number of chargers."
)
@click.option("--ocpp", "version", type=click.Choice(["1.6", "2.0.1"]), default="1.6", show_default=True)
@click.option(
    "--meter-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds between meter values during a session.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds between heartbeats  [default: the interval the CSMS returns]",
)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Lines 'chargerId password' or 'chargerId:password'; the fleet is its first N. Without: no auth.",
)
@click.option(
    "--id-prefix",
    default="SIM-",
    show_default=True,
    help="Charger ids are PREFIX000001... (without --password-file).",
)
@click.option(
    "--charging-share",
    type=click.FloatRange(0, 1),
    default=0.3,
    show_default=True,
    help="Share of chargers running sessions.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop after this many seconds  [default: run until interrupted]",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the statistics as JSON to this file.",
)
@click.option(
    "--connectors", type=click.IntRange(min=1), default=1, show_default=True, help="Connectors per charger."
)
@click.option(
    "--session-duration",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="Seconds a session lasts.",
)
@click.option(
    "--idle-duration",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds between two sessions of a charger.",
)
@click.option(
    "--ramp-up",
    type=click.FloatRange(min=0),
    default=None,
    help=f"Seconds over which the chargers connect  [default: {_DEFAULT_RAMP_RATE:.0f} per second]",
)
@click.option(
    "--response-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for a CALLRESULT.",
)
@click.option(
    "--boot-on-reconnect/--no-boot-on-reconnect",
    default=False,
    show_default=True,
    help="Send BootNotification after every reconnect, not only after a (re)boot.",
)
@click.option(
    "--progress",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds between progress lines on stderr; 0: none.",
)
@click.option("--seed", type=int, default=None, help="Seed for the simulation's randomness.")
@click.option(
    "--id-tag",
    default=None,
    help="idTag / idToken every charger presents for local starts  [default: derived from the charger id]",
)
def simulate(
    url: str,
    failover_urls: tuple[str, ...],
    chargers: int,
    version: OcppVersion,
    meter_interval: float,
    heartbeat: float | None,
    password_file: Path | None,
    id_prefix: str,
    charging_share: float,
    duration: float | None,
    json_path: Path | None,
    connectors: int,
    session_duration: float,
    idle_duration: float,
    ramp_up: float | None,
    response_timeout: float,
    boot_on_reconnect: bool,
    progress: float,
    seed: int | None,
    id_tag: str | None,
) -> None:
    """Simulate a fleet of OCPP chargers: boot, status, heartbeats, sessions with rising meter values,
    the CSMS's remote calls, reconnects with an offline queue. Prints CALL→CALLRESULT latency per action."""
    passwords: dict[str, str] | None = None
    if password_file is not None:
        try:
            passwords = load_passwords(password_file)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--password-file") from exc
        if len(passwords) < chargers:
            raise click.BadParameter(
                f"lists {len(passwords)} chargers, fewer than --chargers {chargers}",
                param_hint="--password-file",
            )
        ids = list(passwords)[:chargers]
    else:
        ids = charger_ids(id_prefix, chargers)
    config = ChargerConfig(
        url=url,
        failover_urls=failover_urls,
        version=version,
        connectors=connectors,
        heartbeat=heartbeat,
        meter_interval=meter_interval,
        session_duration=session_duration,
        idle_duration=idle_duration,
        response_timeout=response_timeout,
        boot_on_reconnect=boot_on_reconnect,
        id_tag=id_tag,
    )
    fleet = Fleet(
        ids,
        config,
        passwords=passwords,
        charging_share=charging_share,
        ramp_up=chargers / _DEFAULT_RAMP_RATE if ramp_up is None else ramp_up,
        seed=seed,
    )
    _raise_open_files_limit(chargers + 256)
    stats, elapsed = run_event_loop(simulate_fleet(fleet, duration, progress))
    summary = stats.summary(elapsed)
    click.echo(stats.table())
    click.echo(
        f"\n{len(ids)} chargers ({version}) for {elapsed:.1f} s: {summary['calls_answered']} calls answered "
        f"({summary['calls_per_s']}/s), boots {summary['boots']}, sessions {summary['sessions']}, "
        f"CSMS calls {summary['csms_calls']}, offline queue {summary['offline_queue']}"
    )
    if stats.errors:
        click.echo(f"errors: {dict(stats.errors)}", err=True)
    if stats.connect_failures:
        click.echo(f"connect failures: {dict(stats.connect_failures)}", err=True)
    if json_path is not None:
        settings = {k: v for k, v in dataclasses.asdict(config).items() if k != "observer"}
        report = {"chargers": len(ids), "charging_share": charging_share, "config": settings, **summary}
        json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":  # pragma: no cover - `python -m loadtests.simulator.cli`
    simulate(prog_name="simulate")
