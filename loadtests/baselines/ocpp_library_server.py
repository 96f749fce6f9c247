"""A plain central system, written as the `ocpp` package's documentation writes one: the gateway's baseline.

A `websockets` server hands each connection to an `ocpp.v16.ChargePoint` or `ocpp.v201.ChargePoint` subclass,
chosen by the negotiated subprotocol, whose `@on(Action...)` handlers return `call_result` payloads. The
library validates every message against its JSON schemas; nothing is persisted. Benchmarks run it beside
the gateway, and the simulator's tests use it as a reference central system.

    python -m loadtests.baselines.ocpp_library_server --port 9000
"""

# The ocpp package ships no type information: its classes and decorators are Any to mypy.
# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as call_result16
from ocpp.v16 import datatypes as datatypes16
from ocpp.v16.enums import Action as Action16
from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as call_result201
from ocpp.v201 import datatypes as datatypes201
from ocpp.v201.enums import Action as Action201
from ocpp.v201.enums import AuthorizationStatusEnumType, RegistrationStatusEnumType
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as websockets_serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from loadtests.simulator.cli import run_event_loop

LOGGER = logging.getLogger(__name__)

#: Makes the handler for one connection: (charge point id, connection) → an object with `async start()`.
ChargePointFactory = Callable[[str, ServerConnection], Any]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CentralSystem16(ChargePoint16):
    """OCPP 1.6: accepts every charge point and every idTag; transaction ids from a counter."""

    def __init__(
        self,
        charge_point_id: str,
        connection: ServerConnection,
        *,
        heartbeat_interval: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(charge_point_id, connection, **kwargs)
        self.heartbeat_interval = heartbeat_interval
        self.transaction_ids: itertools.count[int] = itertools.count(1)

    @on(Action16.boot_notification)
    def on_boot_notification(self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any) -> Any:
        return call_result16.BootNotification(
            current_time=_now(), interval=self.heartbeat_interval, status=RegistrationStatus.accepted
        )

    @on(Action16.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result16.Heartbeat(current_time=_now())

    @on(Action16.status_notification)
    def on_status_notification(self, connector_id: int, error_code: str, status: str, **kwargs: Any) -> Any:
        return call_result16.StatusNotification()

    @on(Action16.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        return call_result16.Authorize(id_tag_info=datatypes16.IdTagInfo(status=AuthorizationStatus.accepted))

    @on(Action16.start_transaction)
    def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **kwargs: Any
    ) -> Any:
        return call_result16.StartTransaction(
            transaction_id=next(self.transaction_ids),
            id_tag_info=datatypes16.IdTagInfo(status=AuthorizationStatus.accepted),
        )

    @on(Action16.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any) -> Any:
        return call_result16.MeterValues()

    @on(Action16.stop_transaction)
    def on_stop_transaction(self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any) -> Any:
        return call_result16.StopTransaction()


class CentralSystem201(ChargePoint201):
    """OCPP 2.0.1: accepts every charging station and every idToken."""

    def __init__(
        self,
        charge_point_id: str,
        connection: ServerConnection,
        *,
        heartbeat_interval: int = 300,
        **kwargs: Any,
    ) -> None:
        super().__init__(charge_point_id, connection, **kwargs)
        self.heartbeat_interval = heartbeat_interval

    @on(Action201.boot_notification)
    def on_boot_notification(self, charging_station: dict[str, Any], reason: str, **kwargs: Any) -> Any:
        return call_result201.BootNotification(
            current_time=_now(), interval=self.heartbeat_interval, status=RegistrationStatusEnumType.accepted
        )

    @on(Action201.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> Any:
        return call_result201.Heartbeat(current_time=_now())

    @on(Action201.status_notification)
    def on_status_notification(
        self, timestamp: str, connector_status: str, evse_id: int, connector_id: int, **kwargs: Any
    ) -> Any:
        return call_result201.StatusNotification()

    @on(Action201.authorize)
    def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        return call_result201.Authorize(
            id_token_info=datatypes201.IdTokenInfoType(status=AuthorizationStatusEnumType.accepted)
        )

    @on(Action201.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        trigger_reason: str,
        seq_no: int,
        transaction_info: dict[str, Any],
        **kwargs: Any,
    ) -> Any:
        if "id_token" in kwargs:
            return call_result201.TransactionEvent(
                id_token_info=datatypes201.IdTokenInfoType(status=AuthorizationStatusEnumType.accepted)
            )
        return call_result201.TransactionEvent()

    @on(Action201.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list[dict[str, Any]], **kwargs: Any) -> Any:
        return call_result201.MeterValues()


@dataclass(frozen=True, slots=True)
class LibraryServer:
    """A running baseline: the port it listens on, and close()."""

    server: Server
    port: int

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


def default_factories(heartbeat_interval: int = 300) -> dict[str, ChargePointFactory]:
    return {
        "ocpp2.0.1": lambda cp_id, connection: CentralSystem201(
            cp_id, connection, heartbeat_interval=heartbeat_interval
        ),
        "ocpp1.6": lambda cp_id, connection: CentralSystem16(
            cp_id, connection, heartbeat_interval=heartbeat_interval
        ),
    }


async def serve(
    host: str,
    port: int,
    *,
    heartbeat_interval: int = 300,
    factories: Mapping[str, ChargePointFactory] | None = None,
) -> LibraryServer:
    """Listen on host:port (0: any free port) for `ws://host:port/.../{chargePointId}`.

    `factories` maps each subprotocol offered to the charge point class that speaks it (the defaults above).
    """
    chosen = dict(factories or default_factories(heartbeat_interval))

    async def on_connect(connection: ServerConnection) -> None:
        if connection.subprotocol is None:
            LOGGER.warning("client offered none of %s: closing", list(chosen))
            await connection.close()
            return
        charge_point_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1] if connection.request else ""
        charge_point = chosen[connection.subprotocol](charge_point_id, connection)
        with contextlib.suppress(ConnectionClosed):
            await charge_point.start()

    server = await websockets_serve(
        on_connect, host, port, subprotocols=[Subprotocol(name) for name in chosen]
    )
    bound_port = next(iter(server.sockets)).getsockname()[1]
    return LibraryServer(server, bound_port)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9000, show_default=True)
@click.option("--heartbeat-interval", type=int, default=300, show_default=True)
def main(host: str, port: int, heartbeat_interval: int) -> None:
    """Run the `ocpp`-library central system until interrupted."""

    async def run() -> None:
        running = await serve(host, port, heartbeat_interval=heartbeat_interval)
        click.echo(
            f"ocpp library central system on ws://{host}:{running.port}/ocpp/{{chargePointId}}", err=True
        )
        try:
            await asyncio.Event().wait()
        finally:
            await running.close()

    run_event_loop(run())


if __name__ == "__main__":
    main()
