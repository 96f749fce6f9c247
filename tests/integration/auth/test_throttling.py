"""Login throttling: a failure budget per account and per client address, answered 429 with Retry-After."""

from __future__ import annotations

import dataclasses
import uuid

import aiohttp

from tests.integration.auth.conftest import PASSWORD, AuthServerFactory
from write_api.auth.config import AuthConfig

WRONG = "definitely the wrong password"


def _email() -> str:
    return f"throttled-{uuid.uuid4().hex[:10]}@example.com"


async def assert_throttled(response: aiohttp.ClientResponse, window_seconds: int) -> None:
    assert response.status == 429
    assert response.content_type == "application/problem+json"
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= window_seconds
    body = await response.json()
    assert body["type"] == "urn:csms:problem:login-throttled"
    assert body["retryAfter"] == retry_after


async def test_an_account_is_throttled_after_its_failures(
    make_auth_server: AuthServerFactory, auth_config: AuthConfig
) -> None:
    config = dataclasses.replace(auth_config, login_max_failures_per_account=3, login_window_seconds=600)
    server = await make_auth_server(config)
    email = (await server.register(_email()))["email"]

    for _ in range(3):
        assert (await server.login(email, WRONG)).status == 401

    await assert_throttled(await server.login(email, WRONG), 600)
    # The right password does not get through either until the window ends: that is the point.
    await assert_throttled(await server.login(email, PASSWORD), 600)
    # Other accounts from the same address are not affected.
    other = (await server.register(_email()))["email"]
    assert (await server.login(other, PASSWORD)).status == 200


async def test_a_successful_login_clears_the_account_counter(
    make_auth_server: AuthServerFactory, auth_config: AuthConfig
) -> None:
    config = dataclasses.replace(auth_config, login_max_failures_per_account=3)
    server = await make_auth_server(config)
    email = (await server.register(_email()))["email"]

    for _ in range(2):
        assert (await server.login(email, WRONG)).status == 401
    assert (await server.login(email, PASSWORD)).status == 200
    for _ in range(2):
        assert (await server.login(email, WRONG)).status == 401
    assert (await server.login(email, PASSWORD)).status == 200


async def test_unknown_emails_are_throttled_like_known_ones(
    make_auth_server: AuthServerFactory, auth_config: AuthConfig
) -> None:
    server = await make_auth_server(dataclasses.replace(auth_config, login_max_failures_per_account=2))
    email = _email()

    for _ in range(2):
        assert (await server.login(email, WRONG)).status == 401
    await assert_throttled(await server.login(email, WRONG), auth_config.login_window_seconds)


async def test_an_address_is_throttled_across_accounts(
    make_auth_server: AuthServerFactory, auth_config: AuthConfig
) -> None:
    config = dataclasses.replace(auth_config, login_max_failures_per_address=4, login_window_seconds=300)
    server = await make_auth_server(config)

    for _ in range(4):
        assert (await server.login(_email(), WRONG)).status == 401

    await assert_throttled(await server.login(_email(), WRONG), 300)


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(
    make_auth_server: AuthServerFactory, auth_config: AuthConfig
) -> None:
    config = dataclasses.replace(
        auth_config, login_max_failures_per_address=2, trusted_proxies=("127.0.0.1/32", "::1")
    )
    server = await make_auth_server(config)
    first = {"X-Forwarded-For": "198.51.100.7"}
    second = {"X-Forwarded-For": "203.0.113.9"}
    # A client cannot escape its budget by writing its own X-Forwarded-For entries: only the last hop counts.
    spoofed = {"X-Forwarded-For": "192.0.2.1, 198.51.100.7"}

    assert (await server.login(_email(), WRONG, headers=first)).status == 401
    assert (await server.login(_email(), WRONG, headers=spoofed)).status == 401
    await assert_throttled(await server.login(_email(), WRONG, headers=first), 900)

    assert (await server.login(_email(), WRONG, headers=second)).status == 401


async def test_without_trusted_proxies_forwarded_headers_are_ignored(
    make_auth_server: AuthServerFactory, auth_config: AuthConfig
) -> None:
    server = await make_auth_server(dataclasses.replace(auth_config, login_max_failures_per_address=2))

    for forwarded in ("198.51.100.1", "198.51.100.2"):
        response = await server.login(_email(), WRONG, headers={"X-Forwarded-For": forwarded})
        assert response.status == 401

    response = await server.login(_email(), WRONG, headers={"X-Forwarded-For": "198.51.100.3"})
    await assert_throttled(response, 900)
