"""Schema evolution: the one place where stored event JSON is rewritten from one version to the next.

An upcaster takes the JSON-level data of an event (strings for Decimal, datetime and UUID,
objects for value objects, arrays for tuples) at version n and returns it at version n + 1.
Stored events are never edited; they are upcast as they are read.
"""

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def station_created_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Station.Created v1 -> v2.

    v1 stored the position as top-level "lat" and "lon" decimal strings and had no opening
    hours. v2 nests the position in a "coordinates" object (Coordinates) and adds
    "opening_hours" (OpeningHours); stations created before hours existed were open around
    the clock.
    """
    upcast = {key: value for key, value in data.items() if key not in ("lat", "lon")}
    upcast["coordinates"] = {"latitude": data["lat"], "longitude": data["lon"]}
    upcast.setdefault("opening_hours", {"twentyfourseven": True, "regular_hours": []})
    return upcast
