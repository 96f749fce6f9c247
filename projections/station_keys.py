"""The station discovery read model's key layout, shared by its projector and the read API's queries.

Every name here is relative to a generation's prefix (`csms:rm:station_discovery:g<n>:`); the projector
builds keys with `view.key(...)`, readers with the active generation's prefix.

What readers use:
- `geo:all:any`: GEO set of discoverable stations (published, not removed, company not suspended, at least
  one EVSE), member = station id.
- `cards`: hash station id -> the JSON a nearby result shows for it (without the distance).
- `doc:<station id>`: the station's OCPI Location document (kept for every visible station, EVSEs or not).
- `evse:<uid>`: one EVSE's document with its station's summary: what the QR code leads to.
- per facet `<family>:<facet>`, the stations with a connector that fits it: `geo:<family>:<facet>` as a GEO
  set, and `match:<family>:<facet>`, a sorted set of station id -> the highest power (W) among those
  connectors. Family `all` counts every EVSE, `available` only those AVAILABLE now; a facet is `any`,
  `std:<ConnectorType>`, `pt:<PowerType>` or `std:<ConnectorType>:pt:<PowerType>`. So "a free CCS
  connector" is one GEOSEARCH of its own set, nearest first, and "of at least 50 kW" one ZSCORE per hit, with
  all conditions holding for the same connector rather than for any three of a station's connectors.

The projector's own state lives under `state:` (readers never look there).
"""

from __future__ import annotations

NAME = "station_discovery"

CARDS = "cards"
POSITION = "position"  # the generation's log position, kept by RedisTarget

ALL = "all"
AVAILABLE = "available"

# The projector's working state.
CHARGER_STATION = "state:charger_station"  # hash charger id -> station id
TARIFFS = "state:tariffs"  # hash tariff id -> tariff state JSON
COMPANIES = "state:companies"  # hash company id -> company state JSON


def doc(station_id: str) -> str:
    return f"doc:{station_id}"


def evse(uid: str) -> str:
    return f"evse:{uid}"


def station_state(station_id: str) -> str:
    return f"state:station:{station_id}"


def tariff_stations(tariff_id: str) -> str:
    return f"state:tariff_stations:{tariff_id}"


def company_stations(company_id: str) -> str:
    return f"state:company_stations:{company_id}"


def facet(family: str, standard: str | None = None, power_type: str | None = None) -> str:
    """The facet a filter on `standard` and/or `power_type` reads (`<family>:any` without either)."""
    parts = []
    if standard is not None:
        parts.append(f"std:{standard}")
    if power_type is not None:
        parts.append(f"pt:{power_type}")
    return f"{family}:" + (":".join(parts) or "any")


def geo(facet_name: str) -> str:
    return f"geo:{facet_name}"


def match(facet_name: str) -> str:
    return f"match:{facet_name}"


GEO = geo(facet(ALL))  # every discoverable station
