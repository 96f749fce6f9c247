"""A charger whose connection breaks under a CALL does not hold the event loop its fleet shares."""

from __future__ import annotations

import asyncio
import random
from typing import cast

import aiohttp

from loadtests.simulator.charger import Charger
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.protocol16 import Protocol16
from loadtests.simulator.stats import Stats


class _ClosingSocket:
    """A WebSocket whose transport is already closing, as aiohttp reports it before the reader sees it."""

    async def send_frame(self, message: bytes, opcode: aiohttp.WSMsgType) -> None:
        raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")


async def test_a_call_that_cannot_be_written_lets_the_other_chargers_run() -> None:
    # Such a call used to return at once without yielding, and the driver sent again at once, forever:
    # every other charger of the process stopped, and the CSMS dropped them all for missing pongs.
    charger = Charger(
        "CP-1", config=ChargerConfig(), protocol=Protocol16(), stats=Stats(), rng=random.Random(1)
    )
    charger._loop = asyncio.get_running_loop()
    turns = 0

    async def another_charger() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(another_charger())
    try:
        ws = cast(aiohttp.ClientWebSocketResponse, _ClosingSocket())
        outcomes = [(await charger._call(ws, "Heartbeat", {}))[0] for _ in range(3)]
    finally:
        other.cancel()
    assert outcomes == [0, 0, 0]  # lost, each time
    assert turns >= 3
    assert charger._stats.actions["Heartbeat"].lost == 3
