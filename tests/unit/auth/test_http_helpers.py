"""Problem documents, client addresses behind proxies, and the buckets login throttling counts by."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web

from csms.web.client_address import parse_networks, resolve_client_address
from csms.web.problems import FieldError, problem, problem_body, problem_error
from write_api.auth.throttle import address_bucket


def test_a_problem_names_the_fields_at_fault() -> None:
    document = orjson.loads(
        problem_body(
            422,
            "Invalid request",
            "email is required",
            type_="urn:csms:problem:validation-failed",
            errors=[FieldError("email", "is required"), FieldError("a/b~c", "odd")],
        )
    )

    assert document == {
        "type": "urn:csms:problem:validation-failed",
        "title": "Invalid request",
        "status": 422,
        "detail": "email is required",
        "errors": [
            {"field": "email", "pointer": "#/email", "detail": "is required"},
            {"field": "a/b~c", "pointer": "#/a~1b~0c", "detail": "odd"},
        ],
    }


def test_problem_responses_and_exceptions_carry_the_media_type_and_headers() -> None:
    response = problem(429, "Too many", headers={"Retry-After": "7"}, extensions={"retryAfter": 7})
    assert response.content_type == "application/problem+json"
    assert response.headers["Retry-After"] == "7"

    error = problem_error(404, "Not Found", field="id")
    assert isinstance(error, web.HTTPNotFound)
    assert error.content_type == "application/problem+json"
    odd = problem_error(405, "Method Not Allowed", headers={"Allow": "POST"})
    assert odd.status == 405
    assert odd.headers["Allow"] == "POST"
    with pytest.raises(ValueError, match="4xx or 5xx"):
        problem_error(200, "OK")


PROXIES = parse_networks(["10.0.0.0/8", "::1"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", [], "203.0.113.5"),
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy of ours: the header is ignored
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["192.0.2.66, 198.51.100.1, 10.0.0.3"], "198.51.100.1"),  # leftmost is client-written
        ("10.0.0.2", ["192.0.2.66", "198.51.100.1"], "198.51.100.1"),  # several headers read as one list
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["garbage"], "10.0.0.2"),
        ("::1", ["2001:db8::7"], "2001:db8::7"),
    ],
)
def test_the_client_address_is_read_through_trusted_proxies_only(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert resolve_client_address(peer, forwarded, PROXIES) == client


def test_without_trusted_proxies_the_peer_is_the_client() -> None:
    assert resolve_client_address("10.0.0.2", ["198.51.100.1"], ()) == "10.0.0.2"


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("", "unknown"),
    ],
)
def test_ipv6_clients_are_throttled_by_their_slash_64(address: str, bucket: str) -> None:
    assert address_bucket(address) == bucket
