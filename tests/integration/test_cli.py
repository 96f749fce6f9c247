"""The `csms` command as an operator runs it: a real process, real settings from the environment."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from csms.observability.health import create_health_app

_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def _environment(**variables: str) -> dict[str, str]:
    """The parent's environment without any CSMS_* variable, plus `variables`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CSMS_")}
    env.update(variables)
    return env


async def _csms(*args: str, env: Mapping[str, str]) -> Outcome:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms.cli",
        *args,
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(_TIMEOUT_SECONDS):
        stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode(), stderr.decode())


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


@pytest.fixture
async def empty_database_url(server_database_url: str, run_id: str) -> AsyncIterator[str]:
    """A database of its own with no schema yet, dropped afterwards."""
    name = f"csms_test_{run_id}_cli"
    admin = await asyncpg.connect(_with_database(server_database_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _with_database(server_database_url, name)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_a_malformed_variable_stops_start_up_naming_it() -> None:
    outcome = await _csms("settings", env=_environment(CSMS_OCPP_PORT="abc"))

    assert outcome.returncode == 2
    assert outcome.stdout == ""
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert "CSMS_OCPP_PORT" in lines[0]


async def test_settings_lists_every_variable_and_hides_passwords() -> None:
    outcome = await _csms(
        "settings",
        env=_environment(
            CSMS_DATABASE_URL="postgresql://csms:hunter2@db.example/csms", CSMS_OCPP_PORT="9100"
        ),
    )

    assert outcome.returncode == 0, outcome.stderr
    assert "hunter2" not in outcome.stdout
    assert "CSMS_DATABASE_URL=postgresql://csms:***@db.example/csms" in outcome.stdout
    assert "CSMS_OCPP_PORT=9100" in outcome.stdout


async def test_migrate_applies_the_schema_once_and_can_run_again(empty_database_url: str) -> None:
    env = _environment(CSMS_DATABASE_URL=empty_database_url)

    first = await _csms("migrate", env=env)
    second = await _csms("migrate", env=env)

    assert first.returncode == 0, first.stderr
    assert "applied 0001_event_store" in first.stdout
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "schema is up to date"


async def test_an_unreachable_database_fails_start_up_with_one_line() -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/postgres"

    outcome = await _csms("migrate", env=_environment(CSMS_DATABASE_URL=url))

    assert outcome.returncode == 1
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("Error: Postgres at ")
    assert "unreachable" in lines[0]


async def test_the_write_api_role_answers_liveness_and_readiness(database_url: str, redis_url: str) -> None:
    port = _closed_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms.cli",
        "serve",
        "--role",
        "write-api",
        env=_environment(
            CSMS_DATABASE_URL=database_url, CSMS_REDIS_URL=redis_url, CSMS_WRITE_API_PORT=str(port)
        ),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(_TIMEOUT_SECONDS):
            # Wait for the role's own "listening" line rather than polling the port.
            while not any(entry.get("message") == "listening" for entry in log):
                line = await process.stderr.readline()
                assert line, f"csms serve exited early: {log}"
                log.append(json.loads(line))
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                async with http.get("/healthz") as response:
                    assert response.status == 200
                    assert await response.json() == {"status": "ok"}
                async with http.get("/readyz") as response:
                    assert response.status == 200
                    body = await response.json()
                    assert body["checks"] == {"postgres": "ok", "redis": "ok"}
            process.send_signal(signal.SIGTERM)
            remaining = await process.stderr.read()
            assert await process.wait() == 0, remaining.decode()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert all(entry.get("role") == "write-api" for entry in log if entry["logger"] == "csms.cli.serving")


async def test_readiness_names_the_dependency_that_does_not_answer(database_url: str) -> None:
    app = create_health_app(database_url, f"redis://127.0.0.1:{_closed_port()}/0")

    async with TestClient(TestServer(app)) as client:
        live = await client.get("/healthz")
        ready = await client.get("/readyz")
        body = await ready.json()

    assert live.status == 200
    assert ready.status == 503
    assert body["failed"] == ["redis"]
    assert body["checks"]["postgres"] == "ok"


async def test_bench_lists_the_benchmarks_in_loadtests() -> None:
    outcome = await _csms("bench", "--help", env=_environment())

    assert outcome.returncode == 0, outcome.stderr
    assert "append" in outcome.stdout


async def test_a_benchmarks_help_starts_no_server(tmp_path: Path) -> None:
    """Nothing configured: a benchmark run would start embedded Postgres and Redis, its --help must not."""
    outcome = await _csms("bench", "fleet", "--help", env=_environment(CSMS_DATA_DIR=str(tmp_path)))

    assert outcome.returncode == 0, outcome.stderr
    assert "--chargers" in outcome.stdout
    assert "embedded" not in outcome.stderr
    assert os.listdir(tmp_path) == []


async def test_projections_status_and_rebuild(empty_database_url: str, redis_url: str, run_id: str) -> None:
    env = _environment(
        CSMS_DATABASE_URL=empty_database_url, CSMS_REDIS_URL=redis_url, CSMS_REDIS_KEY_PREFIX=f"cli-{run_id}:"
    )
    before = await _csms("projections", "status", env=env)
    assert before.returncode == 0, before.stderr
    lines = before.stdout.splitlines()
    assert lines[0].split()[:3] == ["projection", "store", "generation"]
    listed = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(listed) >= {"station_discovery", "session_history", "fleet_registry", "station_revenue"}
    assert listed["session_history"][1:3] == ["postgres", "1"]
    assert listed["station_discovery"][1:3] == ["redis", "1"]

    rebuilt = await _csms("projections", "rebuild", "session_history", "--retire-after", "0", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert rebuilt.stdout.startswith("session_history: generation 2 now serves (replaced 1)")
    after = await _csms("projections", "status", env=env)
    assert [line.split()[:3] for line in after.stdout.splitlines() if line.startswith("session_history")] == [
        ["session_history", "postgres", "2"]
    ]

    unknown = await _csms("projections", "rebuild", "nope", env=env)
    assert unknown.returncode == 2
    assert "no projection 'nope'" in unknown.stderr
