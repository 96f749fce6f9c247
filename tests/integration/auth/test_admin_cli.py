"""`csms admin create-admin`: a real process creates the first admin, who can then log in."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg

from tests.integration.auth.conftest import PASSWORD, AuthServer

_TIMEOUT_SECONDS = 60


async def create_admin(database_url: str, data_dir: Path, email: str, password: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms.cli", "admin", "create-admin", "--email", email, "--password-stdin",
        env={**os.environ, "CSMS_DATABASE_URL": database_url, "CSMS_DATA_DIR": str(data_dir)},
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(f"{password}\n".encode()), _TIMEOUT_SECONDS)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_the_first_admin_is_created_from_the_command_line_and_can_log_in(
    database_url: str, tmp_path: Path, auth_server: AuthServer, event_pool: asyncpg.Pool
) -> None:
    email = f"Admin-{uuid.uuid4().hex[:8]}@Example.com"

    code, stdout, stderr = await create_admin(database_url, tmp_path, email, PASSWORD)

    assert code == 0, stderr
    assert f"admin account created: {email.lower()}" in stdout
    assert PASSWORD not in stdout + stderr
    stored = await event_pool.fetchval("SELECT password_hash FROM accounts WHERE email = $1", email.lower())
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # OWASP's parameters, not the tests'

    tokens = await auth_server.tokens(email)
    assert (await auth_server.whoami(tokens["accessToken"], "/test/admin-only")).status == 200
    me = await (await auth_server.whoami(tokens["accessToken"])).json()
    assert me["role"] == "admin"
    # The login verified the hash and upgraded it to the server's (here cheaper) parameters.
    rehashed = await event_pool.fetchval("SELECT password_hash FROM accounts WHERE email = $1", email.lower())
    assert rehashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert (await auth_server.login(email)).status == 200


async def test_a_second_admin_with_the_same_email_is_refused(database_url: str, tmp_path: Path) -> None:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    assert (await create_admin(database_url, tmp_path, email, PASSWORD))[0] == 0

    code, stdout, stderr = await create_admin(database_url, tmp_path, email.upper(), "another long password")

    assert code == 1
    assert "already exists" in stderr
    assert stdout == ""


async def test_a_weak_admin_password_is_refused(database_url: str, tmp_path: Path) -> None:
    code, _, stderr = await create_admin(database_url, tmp_path, "weak-admin@example.com", "short")

    assert code == 2
    assert "at least 12 characters" in stderr
