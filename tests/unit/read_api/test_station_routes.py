"""The nearby query's parsing (every bad field named) and the per-address token bucket."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web
from multidict import MultiDict

from read_api.station_routes import RateLimiter, parse_nearby


def _problem_fields(query: list[tuple[str, str]]) -> list[str]:
    with pytest.raises(web.HTTPBadRequest) as raised:
        parse_nearby(MultiDict(query))
    assert raised.value.text is not None
    body = orjson.loads(raised.value.text)
    return [error["field"] for error in body["errors"]]


def test_a_full_query_parses() -> None:
    query = parse_nearby(
        MultiDict(
            [
                ("lat", "52.09"),
                ("lon", "5.12"),
                ("radiusKm", "2.5"),
                ("connector", "iec_62196_t2_combo"),
                ("connector", "CHADEMO"),
                ("powerType", "dc"),
                ("minPowerKw", "50"),
                ("available", "true"),
                ("limit", "7"),
            ]
        )
    )

    assert (query.latitude, query.longitude, query.radius_m) == (52.09, 5.12, 2500.0)
    assert query.standards == ("IEC_62196_T2_COMBO", "CHADEMO")
    assert (query.power_type, query.min_power_w, query.available_only, query.limit) == ("DC", 50_000, True, 7)
    assert query.facets() == ["available:std:IEC_62196_T2_COMBO:pt:DC", "available:std:CHADEMO:pt:DC"]


def test_defaults_are_a_five_km_radius_twenty_results_and_no_filter() -> None:
    query = parse_nearby(MultiDict([("lat", "0"), ("lon", "0")]))

    assert (query.radius_m, query.limit, query.min_power_w) == (5000.0, 20, 0)
    assert query.facets() == ["all:any"]


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ([], ["lat", "lon"]),
        ([("lat", "abc"), ("lon", "5")], ["lat"]),
        ([("lat", "nan"), ("lon", "inf")], ["lat", "lon"]),
        ([("lat", "85.1"), ("lon", "180.01")], ["lat", "lon"]),
        ([("lat", "1"), ("lat", "2"), ("lon", "5")], ["lat"]),
        ([("lat", "1"), ("lon", "5"), ("radiusKm", "50.001")], ["radiusKm"]),
        ([("lat", "1"), ("lon", "5"), ("radiusKm", "0")], ["radiusKm"]),
        ([("lat", "1"), ("lon", "5"), ("radiusKm", "-3")], ["radiusKm"]),
        ([("lat", "1"), ("lon", "5"), ("connector", "SCHUKO")], ["connector"]),
        ([("lat", "1"), ("lon", "5"), ("powerType", "AC")], ["powerType"]),
        ([("lat", "1"), ("lon", "5"), ("minPowerKw", "-1")], ["minPowerKw"]),
        ([("lat", "1"), ("lon", "5"), ("available", "yes")], ["available"]),
        ([("lat", "1"), ("lon", "5"), ("limit", "0")], ["limit"]),
        ([("lat", "1"), ("lon", "5"), ("limit", "101")], ["limit"]),
        ([("lat", "1"), ("lon", "5"), ("limit", "2.5")], ["limit"]),
    ],
)
def test_a_bad_query_is_a_400_naming_each_field(query: list[tuple[str, str]], fields: list[str]) -> None:
    assert _problem_fields(query) == fields


def test_the_largest_radius_is_allowed() -> None:
    assert parse_nearby(MultiDict([("lat", "1"), ("lon", "5"), ("radiusKm", "50")])).radius_m == 50_000


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_the_rate_per_address() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3.0, clock=clock)

    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0.0  # every address has its own bucket
    clock.now = 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0


def test_the_bucket_forgets_idle_addresses_to_stay_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=2.0, max_clients=3, clock=clock)
    for address in ("a", "b", "c"):
        limiter.take(address)
    clock.now = 10.0  # all full again

    assert limiter.take("d") == 0.0
    assert len(limiter._buckets) == 1
