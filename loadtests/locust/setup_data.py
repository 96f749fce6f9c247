"""What the locust files need from `csms bench locust-setup`: its JSON file, and the options to find it.

`--csms-data PATH` (default `.data/locust.json`, the file `csms bench locust-setup` writes under
`CSMS_DATA_DIR`) names it. Each user takes the next set of credentials of its kind; a user that finds none
left stops (more users than the set-up registered).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.exception import StopUser


def _options(parser: LocustArgumentParser) -> None:
    parser.add_argument(
        "--csms-data",
        default=".data/locust.json",
        help="The file `csms bench locust-setup` wrote: drivers, chargers, stations, the API addresses.",
    )
    parser.add_argument(
        "--ocpp-interval",
        type=float,
        default=5.0,
        help="Seconds between a charger's messages, on average (chargers.py).",
    )
    parser.add_argument(
        "--charge-seconds",
        type=float,
        default=10.0,
        help="How long a driver charges between the start and the stop call (mobile_app.py).",
    )


# locust leaves EventHook.add_listener unannotated.
events.init_command_line_parser.add_listener(_options)  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class Credentials:
    charger_id: str
    password: str


@dataclass(frozen=True, slots=True)
class Station:
    station_id: str
    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class Driver:
    email: str
    password: str


class SetupData:
    """The parsed file, and one iterator per kind of credentials, shared by the users of this process."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.write_api: str = document["writeApi"]
        self.read_api: str = document["readApi"]
        self.ocpp_url: str = document["ocppUrl"]
        self.id_tag: str = document["idTag"]
        self.stations = [Station(s["stationId"], s["latitude"], s["longitude"]) for s in document["stations"]]
        self.chargers = {
            kind: [Credentials(c["chargerId"], c["password"]) for c in document[kind]]
            for kind in ("chargers", "sessionChargers")
        }
        self.drivers = [Driver(d["email"], d["password"]) for d in document["drivers"]]
        self._next_charger: dict[str, Iterator[Credentials]] = {
            kind: iter(credentials) for kind, credentials in self.chargers.items()
        }
        self._next_driver = itertools.cycle(self.drivers)

    def take_charger(self, kind: str) -> Credentials:
        """The next charger nobody in this process uses yet (a charger has one connection at a time)."""
        taken = next(self._next_charger[kind], None)
        if taken is None:
            raise StopUser(f"every charger in {kind!r} is in use: run `csms bench locust-setup` with more")
        return taken

    def take_driver(self) -> Driver:
        """The next driver account (several users may share one: a driver may use two phones)."""
        return next(self._next_driver)


_loaded: dict[str, SetupData] = {}


def setup_data(environment: Environment) -> SetupData:
    """The set-up file named by `--csms-data`, read once per process."""
    path = str(getattr(environment.parsed_options, "csms_data", ".data/locust.json"))
    if path not in _loaded:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise SystemExit(
                f"{path}: {error.strerror}; run `csms bench locust-setup` against the running system first"
            ) from None
        _loaded[path] = SetupData(document)
    return _loaded[path]


def option(environment: Environment, name: str, default: float) -> float:
    return float(getattr(environment.parsed_options, name, default))
