"""`csms chargers add` and `rotate-password` against a running gateway: no restart, old password refused."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from decimal import Decimal

import aiohttp
import pytest

from csms.domain import Address, Company, Coordinates, Station
from tests.integration.gateway.conftest import GatewayEnv, basic_auth, now


async def _csms(database_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "csms.cli",
        *args,
        env={**os.environ, "CSMS_DATABASE_URL": database_url, "CSMS_LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _handshake(env: GatewayEnv, charge_point_id: str, password: str) -> int:
    async with aiohttp.ClientSession() as http:
        try:
            async with http.ws_connect(
                f"{env.url}/{charge_point_id}",
                protocols=("ocpp1.6",),
                headers=basic_auth(charge_point_id, password),
            ):
                return 101
        except aiohttp.WSServerHandshakeError as error:
            return error.status


def _password(stdout: str) -> str:
    return next(line.split()[1] for line in stdout.splitlines() if line.startswith("password:"))


async def test_add_prints_a_password_once_and_rotation_takes_effect_without_restart(
    gateway_env: GatewayEnv, database_url: str
) -> None:
    at = now()
    company = Company.create(uuid.uuid4(), "CLI Co", at)
    station = Station.create(
        uuid.uuid4(),
        company.id,
        "CLI station",
        Address("Kade 1", "Rotterdam", "3011 AA", "NLD"),
        Coordinates(Decimal("51.92"), Decimal("4.48")),
        "Europe/Amsterdam",
        at,
    )
    await gateway_env.repository.save(company, station)
    charge_point_id = f"CLI-{uuid.uuid4().hex[:8]}"

    code, stdout, stderr = await _csms(
        database_url,
        "chargers", "add", "--company", str(company.id), "--station", str(station.id),
        "--id", charge_point_id,
        "--evse", "1:IEC_62196_T2_COMBO:150", "--evse", "2:IEC_62196_T2:22",
    )  # fmt: skip
    assert code == 0, stderr
    first = _password(stdout)
    assert len(first) == 40
    assert first not in stderr
    assert await _handshake(gateway_env, charge_point_id, first) == 101

    code, stdout, stderr = await _csms(database_url, "chargers", "rotate-password", "--id", charge_point_id)
    assert code == 0, stderr
    second = _password(stdout)
    assert second != first
    assert await _handshake(gateway_env, charge_point_id, first) == 401
    assert await _handshake(gateway_env, charge_point_id, second) == 101

    code, _, stderr = await _csms(
        database_url,
        "chargers", "add", "--company", str(company.id), "--station", str(station.id),
        "--id", charge_point_id,
        "--evse", "1:IEC_62196_T2:22",
    )  # fmt: skip
    assert code == 1
    assert "already registered" in stderr


@pytest.mark.parametrize("spec", ["1:NOT_A_PLUG:22", "one:IEC_62196_T2:22", "1:IEC_62196_T2"])
async def test_a_malformed_evse_is_refused_naming_it(database_url: str, spec: str) -> None:
    code, _, stderr = await _csms(
        database_url,
        "chargers", "add", "--company", str(uuid.uuid4()), "--station", str(uuid.uuid4()), "--id", "X",
        "--evse", spec,
    )  # fmt: skip
    assert code == 2
    assert "--evse" in stderr
