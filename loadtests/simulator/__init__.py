"""The charger-fleet simulator: thousands of OCPP 1.6J / 2.0.1 chargers on one event loop."""

from loadtests.simulator.charger import Charger, Registration
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet, charger_ids
from loadtests.simulator.stats import Stats

__all__ = ["Charger", "ChargerConfig", "Fleet", "Registration", "Stats", "charger_ids"]
