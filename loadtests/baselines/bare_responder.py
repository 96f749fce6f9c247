"""The gateway's benchmark ceiling: parse each CALL with orjson, answer a canned CALLRESULT, nothing else.

No validation, no state, no persistence: the best an aiohttp WebSocket server on the same machine can answer.

    python -m loadtests.baselines.bare_responder --port 9000
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import click
import orjson
from aiohttp import WSMsgType, web

from loadtests.simulator.cli import run_event_loop

SUBPROTOCOLS: Final = ("ocpp2.0.1", "ocpp1.6")


def canned_results(now: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Subprotocol → action → the CALLRESULT payload answered to every CALL of that action."""
    accepted16 = {"status": "Accepted"}
    accepted201 = {"status": "Accepted"}
    return {
        "ocpp1.6": {
            "BootNotification": {"currentTime": now, "interval": 300, "status": "Accepted"},
            "Heartbeat": {"currentTime": now},
            "StatusNotification": {},
            "Authorize": {"idTagInfo": accepted16},
            "StartTransaction": {"transactionId": 1, "idTagInfo": accepted16},
            "MeterValues": {},
            "StopTransaction": {},
            "DataTransfer": {"status": "Accepted"},
        },
        "ocpp2.0.1": {
            "BootNotification": {"currentTime": now, "interval": 300, "status": "Accepted"},
            "Heartbeat": {"currentTime": now},
            "StatusNotification": {},
            "Authorize": {"idTokenInfo": accepted201},
            "TransactionEvent": {},
            "MeterValues": {},
            "NotifyEvent": {},
            "DataTransfer": {"status": "Accepted"},
        },
    }


def _encoded(results: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    return {action: orjson.dumps(payload) for action, payload in results.items()}


CANNED: web.AppKey[dict[str, dict[str, bytes]]] = web.AppKey("canned", dict)


async def _ocpp(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=SUBPROTOCOLS, autoping=True)
    await ws.prepare(request)
    if ws.ws_protocol is None:
        await ws.close(code=1002, message=b"an OCPP subprotocol is required")
        return ws
    canned = request.app[CANNED][ws.ws_protocol]
    async for message in ws:
        if message.type is not WSMsgType.TEXT:
            continue
        try:
            frame = orjson.loads(message.data)
            if frame[0] != 2:
                continue
            unique_id, action = frame[1], frame[2]
        except (orjson.JSONDecodeError, TypeError, IndexError, KeyError):
            continue
        body = canned.get(action, b"{}") if isinstance(action, str) else b"{}"
        await ws.send_frame(b"[3," + orjson.dumps(unique_id) + b"," + body + b"]", WSMsgType.TEXT)
    return ws


def create_app() -> web.Application:
    app = web.Application()
    now = datetime.now(UTC).isoformat()
    app[CANNED] = {protocol: _encoded(results) for protocol, results in canned_results(now).items()}
    app.router.add_get("/ocpp/{charge_point_id}", _ocpp)
    return app


@dataclass(frozen=True, slots=True)
class BareResponder:
    """A running bare responder: the port it listens on, and close()."""

    runner: web.AppRunner
    port: int

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(host: str, port: int) -> BareResponder:
    """Listen on host:port (0: any free port) for `ws://host:port/ocpp/{chargePointId}`."""
    runner = web.AppRunner(create_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return BareResponder(runner, bound_port)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=9000, show_default=True)
def main(host: str, port: int) -> None:
    """Run the bare responder until interrupted."""

    async def run() -> None:
        running = await serve(host, port)
        click.echo(f"bare responder on ws://{host}:{running.port}/ocpp/{{chargePointId}}", err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await running.close()

    run_event_loop(run())


if __name__ == "__main__":
    main()
