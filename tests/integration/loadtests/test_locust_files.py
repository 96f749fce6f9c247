"""The locust files headless for a few seconds against a real `csms dev` set up by `csms bench locust-setup`.

`csms dev` runs on a database and a Redis key prefix of the test's own, free ports and its own data folder,
as the documented commands run against a developer's; each locust run must end with requests made and no
failure (locust's exit code says so too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp

from loadtests.scratch import free_port, scratch_database, scratch_redis_prefix

_LOCUST = Path(sys.executable).with_name("locust")
_LOCUST_FILES = Path(__file__).resolve().parents[3] / "loadtests" / "locust"
_STEP_TIMEOUT_SECONDS = 60


@contextlib.asynccontextmanager
async def _csms_dev(env: Mapping[str, str], log: Path) -> AsyncIterator[None]:
    """`csms dev` until the block ends (SIGTERM), once its write and read APIs answer."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms.cli", "dev",
            env=dict(env), stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + _STEP_TIMEOUT_SECONDS
        ports = (env["CSMS_WRITE_API_PORT"], env["CSMS_READ_API_PORT"])
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            for port in ports:
                while True:
                    assert process.returncode is None, f"csms dev exited: see {log}"
                    assert time.monotonic() < deadline, f"csms dev not answering: see {log}"
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as answer:
                            if answer.status == 200:
                                break
                    await asyncio.sleep(0.2)
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), _STEP_TIMEOUT_SECONDS)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _run(*argv: str, env: Mapping[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), _STEP_TIMEOUT_SECONDS)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def _requests(stats: Path) -> dict[str, dict[str, Any]]:
    """locust's final stats (`--json-file STATS` writes STATS.json) by "TYPE name": requests, failures."""
    entries = json.loads(stats.with_name(stats.name + ".json").read_text())
    return {f"{entry['method']} {entry['name']}": entry for entry in entries}


async def test_the_locust_files_run_headless_against_csms_dev_without_failures(
    server_database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with scratch_database(server_database_url) as url, scratch_redis_prefix(redis_url) as prefix:
        env = {
            # No Stripe configured: `csms dev` runs localstripe (on the free port below).
            **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "CSMS_STRIPE_"))},
            "CSMS_DATABASE_URL": url,
            "CSMS_REDIS_URL": redis_url,
            "CSMS_REDIS_KEY_PREFIX": prefix,
            "CSMS_DATA_DIR": str(tmp_path / "data"),
            "CSMS_HOST": "127.0.0.1",
            **{
                name: str(free_port())
                for name in (
                    "CSMS_OCPP_PORT",
                    "CSMS_WRITE_API_PORT",
                    "CSMS_READ_API_PORT",
                    "CSMS_PROJECTOR_PORT",
                    "CSMS_BILLING_PORT",
                    "CSMS_LOCALSTRIPE_PORT",
                )
            },
            # Every locust user shares 127.0.0.1: the documented run raises the per-address limit too.
            "CSMS_READ_API_RATE_LIMIT": "100000",
            "CSMS_READ_API_RATE_BURST": "100000",
        }
        data = tmp_path / "locust.json"
        async with _csms_dev(env, tmp_path / "dev.log"):
            code, output = await _run(
                sys.executable, "-m", "csms.cli", "bench", "locust-setup",
                "--chargers", "3", "--session-chargers", "2", "--drivers", "4", "--out", str(data),
                env=env,
            )  # fmt: skip
            assert code == 0, output
            assert data.stat().st_mode & 0o077 == 0  # it holds passwords

            stats = tmp_path / "chargers-stats"
            code, output = await _run(
                str(_LOCUST), "-f", str(_LOCUST_FILES / "chargers.py"), "--headless", "-u", "3", "-r", "3",
                "-t", "6s", "--csms-data", str(data), "--ocpp-interval", "0.5", "--json-file", str(stats),
                "--only-summary",
                env=env,
            )  # fmt: skip
            assert code == 0, output
            chargers = _requests(stats)
            assert chargers["OCPP BootNotification"]["num_requests"] == 3, output
            assert chargers["OCPP Heartbeat"]["num_requests"] > 0, output
            assert chargers["OCPP StatusNotification"]["num_requests"] > 0, output
            assert sum(entry["num_failures"] for entry in chargers.values()) == 0, output

            stats = tmp_path / "mobile-app-stats"
            code, output = await _run(
                str(_LOCUST), "-f", str(_LOCUST_FILES / "mobile_app.py"), "--headless", "-u", "6", "-r", "6",
                "-t", "12s", "--host", f"http://127.0.0.1:{env['CSMS_WRITE_API_PORT']}",
                "--csms-data", str(data), "--charge-seconds", "1", "--json-file", str(stats),
                "--only-summary",
                # Half of the drivers' tasks a charge, so that a few seconds surely see sessions.
                "--config-users", json.dumps({"user_class_name": "Driver", "tasks": ["charge", "nearby"]}),
                env=env,
            )  # fmt: skip
            assert code == 0, output
            app = _requests(stats)
            assert app["POST /auth/login"]["num_requests"] == 4, output
            assert app["GET /stations/nearby"]["num_requests"] > 0, output
            assert app["POST /sessions/start"]["num_requests"] > 0, output
            assert app["SESSION start → STARTED"]["num_requests"] > 0, output
            assert app["GET /sessions/{id}"]["num_requests"] > 0, output
            assert sum(entry["num_failures"] for entry in app.values()) == 0, output
