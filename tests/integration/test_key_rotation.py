"""Rotating the access-token signing key without logging everyone out: tokens signed by the previous key are
accepted by both APIs while its public key is listed in CSMS_AUTH_PREVIOUS_PUBLIC_KEY_FILES, and refused once
it is not."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization

from csms.identity.errors import InvalidToken
from csms.identity.roles import Role
from csms.identity.signing_keys import SigningKeys, generate_signing_key, private_key_pem
from csms.settings import Settings, SettingsError
from csms.web.bearer import TOKEN_VERIFIER, BearerVerifier
from read_api.runtime import read_api_app
from write_api.auth.access_tokens import AccessTokenIssuer
from write_api.auth.accounts import Account
from write_api.http.runtime import write_api_app


@contextlib.asynccontextmanager
async def _apis(
    settings: Settings, database_url: str, redis_url: str
) -> AsyncIterator[tuple[str, BearerVerifier]]:
    """The write API served over HTTP, and the read API's own token verifier (its reads need projections)."""
    async with (
        write_api_app(settings, database_url, redis_url) as write_app,
        read_api_app(settings, database_url, redis_url) as read_app,
    ):
        server = TestServer(write_app, host="127.0.0.1")
        await server.start_server()
        try:
            yield f"http://127.0.0.1:{server.port}", read_app[TOKEN_VERIFIER]
        finally:
            await server.close()


async def _accepted(write_base: str, read_verifier: BearerVerifier, token: str) -> tuple[bool, bool]:
    """Whether each API takes the token: the write API answers a stop of an unknown session 404 to a
    caller it knows, 401 to one it does not."""
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.post(f"{write_base}/sessions/stop", json={"sessionId": str(uuid.uuid4())}) as stop,
    ):
        assert stop.status in (401, 404), await stop.text()
        write_accepts = stop.status == 404
    try:
        await read_verifier.verify(token)
    except InvalidToken:
        return write_accepts, False
    return write_accepts, True


async def test_tokens_of_the_previous_key_are_accepted_while_it_is_listed(
    database_url: str, redis_url: str, redis_key_prefix: str, tmp_path: Path
) -> None:
    old, new = generate_signing_key(), generate_signing_key()
    (tmp_path / "new.pem").write_bytes(private_key_pem(new))
    (tmp_path / "old.pub.pem").write_bytes(
        old.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    driver = Account(
        id=uuid.uuid4(),
        email="rotation@example.com",
        role=Role.DRIVER,
        company_id=None,
        driver_id=uuid.uuid4(),
        disabled=False,
        created_at=datetime.now(UTC),
    )
    issued_before = AccessTokenIssuer(
        SigningKeys.of(old),
        issuer="csms",
        audience="csms-api",
        ttl=timedelta(minutes=5),
        clock=lambda: datetime.now(UTC),
    ).issue(driver)
    base = {
        "CSMS_DATA_DIR": str(tmp_path),
        "CSMS_REDIS_KEY_PREFIX": redis_key_prefix,
        "CSMS_AUTH_SIGNING_KEY_FILE": str(tmp_path / "new.pem"),
    }

    overlapping = Settings.from_env(
        {**base, "CSMS_AUTH_PREVIOUS_PUBLIC_KEY_FILES": str(tmp_path / "old.pub.pem")}
    )
    async with _apis(overlapping, database_url, redis_url) as (write_base, read_verifier):
        assert await _accepted(write_base, read_verifier, issued_before.token) == (True, True)

    async with _apis(Settings.from_env(base), database_url, redis_url) as (write_base, read_verifier):
        assert await _accepted(write_base, read_verifier, issued_before.token) == (False, False)

    with pytest.raises(SettingsError, match=r"missing\.pem is not a file"):
        Settings.from_env({**base, "CSMS_AUTH_PREVIOUS_PUBLIC_KEY_FILES": str(tmp_path / "missing.pem")})
