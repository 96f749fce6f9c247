"""Reference chargers for the tests: the `ocpp` library's own ChargePoint classes over `websockets`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import ResetStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from ocpp.v201.enums import Action as Action201

from tests.integration.gateway.conftest import basic_auth


class Charger16(ChargePoint16):  # type: ignore[misc]
    """A 1.6 charger that accepts resets and remembers them."""

    resets: list[str]

    @on(Action16.reset)  # type: ignore[untyped-decorator]
    def on_reset(self, type: str, **_: Any) -> Any:
        self.resets.append(type)
        return result16.Reset(status=ResetStatus.accepted)


class Charger201(ChargePoint201):  # type: ignore[misc]
    resets: list[str]

    @on(Action201.reset)  # type: ignore[untyped-decorator]
    def on_reset(self, type: str, **_: Any) -> Any:
        self.resets.append(type)
        return result201.Reset(status="Accepted")


@contextlib.asynccontextmanager
async def connect(
    url: str, charge_point_id: str, password: str, version: str = "ocpp1.6"
) -> AsyncIterator[Any]:
    """A connected library charge point (its message loop running) for `charge_point_id`."""
    websocket = await websockets.connect(
        f"{url}/{charge_point_id}",
        subprotocols=[version],  # type: ignore[list-item]
        additional_headers=basic_auth(charge_point_id, password),
        open_timeout=10,
    )
    charger = (Charger16 if version == "ocpp1.6" else Charger201)(
        charge_point_id, websocket, response_timeout=10
    )
    charger.resets = []
    loop = asyncio.create_task(charger.start())
    try:
        yield charger
    finally:
        loop.cancel()
        await websocket.close()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await loop
