"""OCPP 1.6J chargers as locust users: Basic auth, BootNotification, heartbeats, status, meter values.

Each user is one registered charger (from `csms bench locust-setup`) on its own WebSocket (websocket-client,
which gevent makes cooperative). Every CALL the charger sends is a locust request of type OCPP named after
its action, timed from the frame going out to its CALLRESULT (a CALLERROR, a timeout or a lost connection is
a failure). A charger also answers the CSMS: it accepts RemoteStartTransaction / RemoteStopTransaction and
then starts and stops the transaction as a real one does; other CSMS calls get NotSupported.

    locust -f loadtests/locust/chargers.py --headless -u 200 -r 50 -t 60s

Between messages a charger waits `--ocpp-interval` seconds on average: heartbeats, plugging a cable in and
out (StatusNotification), and local sessions with the set-up's RFID card (Authorize, StartTransaction,
MeterValues, StopTransaction).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import gevent
import websocket
from gevent.event import AsyncResult, Event
from locust import User, task
from locust.exception import RescheduleTask

from loadtests.locust.setup_data import option, setup_data

Payload = dict[str, Any]

_CALL, _RESULT, _ERROR = 2, 3, 4
_ANSWER_WITHIN = 30.0
_POWER_W = 11_000
_BOOT_ATTEMPTS = 5


class CallFailed(Exception):
    """A CALL got a CALLERROR, no answer in time, or lost its connection."""


class OcppCharger(User):
    """One charger's connection and its OCPP 1.6J conversation; subclasses add what it does over time."""

    abstract = True
    credentials: ClassVar[str] = "chargers"
    """Which list of the set-up file this kind of charger takes its id and password from."""

    def on_start(self) -> None:
        data = setup_data(self.environment)
        self.url = data.ocpp_url
        self.id_tag = data.id_tag
        taken = data.take_charger(self.credentials)
        self.charger_id, self._password = taken.charger_id, taken.password
        self.ws: websocket.WebSocket | None = None
        self._pending: dict[str, AsyncResult] = {}
        self.transaction_id: int | None = None
        self.register_wh = random.randrange(1_000_000)
        self._metered_at = time.monotonic()
        self._last_stamp = ""
        self._closing = False
        self.available = Event()
        """Set while connector 1 is Available, as the CSMS has acknowledged."""
        with contextlib.suppress(RescheduleTask):  # recorded as a failure; the first task connects again
            self.connect()

    def on_stop(self) -> None:
        """End a transaction under way before going (as a charger switched off does once back), so that
        the next run finds the connector free; then close."""
        self._closing = True
        if self.transaction_id is not None and self.ws is not None:
            with contextlib.suppress(RescheduleTask):
                self.stop_transaction("Other")
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    # ------------------------------------------------------------------ the connection

    def connect(self) -> None:
        """Open the WebSocket (Basic auth, subprotocol ocpp1.6), boot and report the connectors."""
        token = base64.b64encode(f"{self.charger_id}:{self._password}".encode()).decode()
        began = time.perf_counter()
        try:
            ws = websocket.create_connection(
                f"{self.url}/{self.charger_id}",
                header=[f"Authorization: Basic {token}"],
                subprotocols=["ocpp1.6"],
                timeout=_ANSWER_WITHIN,
                enable_multithread=True,
            )
        except (OSError, websocket.WebSocketException) as error:
            self._fire("connect", began, 0, error)
            raise RescheduleTask() from error
        self._fire("connect", began, 0, None)
        ws.settimeout(None)  # the reader waits for frames as long as the connection lives
        self.ws = ws
        gevent.spawn(self._read, ws)
        for _ in range(_BOOT_ATTEMPTS):
            answer = self.call(
                "BootNotification",
                {
                    "chargePointVendor": "CSMS-Locust",
                    "chargePointModel": "LocustCharger",
                    "chargePointSerialNumber": self.charger_id[-25:],
                },
            )
            if answer.get("status") == "Accepted":
                break
            gevent.sleep(max(1, int(answer.get("interval", 10))))  # Pending: the CSMS is admitting others
        else:
            raise RescheduleTask()
        self.status(0, "Available")
        self.report_connector()
        self.on_connected()

    def on_connected(self) -> None:
        """Called once the charger has booted and reported its connectors."""

    def _read(self, ws: websocket.WebSocket) -> None:
        """Answers to our CALLs go to their waiters; the CSMS's own CALLs are answered in a greenlet each.
        websocket-client answers pings while reading, so the gateway's pings keep the connection alive."""
        try:
            while True:
                raw = ws.recv()
                frame = json.loads(raw)
                if frame[0] in (_RESULT, _ERROR):
                    waiter = self._pending.pop(frame[1], None)
                    if waiter is not None:
                        waiter.set((frame, len(raw)))
                elif frame[0] == _CALL:
                    gevent.spawn(self._answer, frame[1], frame[2], frame[3])
        except (OSError, ValueError, websocket.WebSocketException):
            pass
        finally:
            if self.ws is ws:
                self.ws = None
            for waiter in self._pending.values():
                waiter.set(None)
            self._pending.clear()

    def _ensure_connected(self) -> websocket.WebSocket:
        if self.ws is None and self._closing:
            raise RescheduleTask()  # the test is over: a call still under way does not connect again
        if self.ws is None:
            self.transaction_id = None  # a charger that lost its connection ends its session locally
            self.available.clear()
            self.connect()
        assert self.ws is not None
        return self.ws

    # ------------------------------------------------------------------ what the charger sends

    def call(self, action: str, payload: Payload) -> Payload:
        """Send a CALL and wait for its answer; recorded as a locust request either way."""
        ws = self._ensure_connected()
        message_id = uuid.uuid4().hex
        waiter = AsyncResult()
        self._pending[message_id] = waiter
        began = time.perf_counter()
        try:
            ws.send(json.dumps([_CALL, message_id, action, payload]))
            answered = waiter.get(timeout=_ANSWER_WITHIN)
        except gevent.Timeout:
            answered = None
            error: Exception | None = CallFailed(f"no answer within {_ANSWER_WITHIN:.0f} s")
        except (OSError, websocket.WebSocketException) as lost:
            answered, error = None, CallFailed(f"connection lost: {lost!r}")
        else:
            error = None if answered is not None else CallFailed("connection lost")
        finally:
            self._pending.pop(message_id, None)
        if answered is None:
            if not self._closing:  # a call cut off by the end of the test is no failure of the CSMS
                self._fire(action, began, 0, error)
            raise RescheduleTask()
        frame, length = answered
        if frame[0] == _ERROR:
            self._fire(action, began, length, CallFailed(f"CALLERROR {frame[2]}: {frame[3]}"))
            raise RescheduleTask()
        self._fire(action, began, length, None)
        result: Payload = frame[2]
        return result

    def _fire(self, name: str, began: float, length: int, exception: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type="OCPP",
            name=name,
            response_time=(time.perf_counter() - began) * 1e3,
            response_length=length,
            exception=exception,
            context={"charger": self.charger_id},
        )

    def status(self, connector: int, status: str) -> None:
        self.call(
            "StatusNotification",
            {"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": self._now()},
        )
        if connector == 1:
            if status == "Available":
                self.available.set()
            else:
                self.available.clear()

    def report_connector(self) -> None:
        self.status(1, "Available" if self.transaction_id is None else "Charging")

    def heartbeat(self) -> None:
        self.call("Heartbeat", {})

    def start_transaction(self, id_tag: str) -> None:
        self.status(1, "Preparing")
        answer = self.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag[:20], "meterStart": self._meter(), "timestamp": self._now()},
        )
        self.transaction_id = int(answer["transactionId"])
        self.status(1, "Charging")

    def meter_values(self) -> None:
        if self.transaction_id is None:
            return
        wh, stamp = self._meter(), self._now()
        self.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": self.transaction_id,
                "meterValue": [
                    {
                        "timestamp": stamp,
                        "sampledValue": [
                            _sampled(wh, "Energy.Active.Import.Register", "Wh"),
                            _sampled(_POWER_W, "Power.Active.Import", "W"),
                        ],
                    }
                ],
            },
        )

    def stop_transaction(self, reason: str) -> None:
        transaction, self.transaction_id = self.transaction_id, None
        if transaction is None:
            return
        payload: Payload = {
            "transactionId": transaction,
            "meterStop": self._meter(),
            "timestamp": self._now(),
            "reason": reason,
        }
        if reason == "Local":
            payload["idTag"] = self.id_tag[:20]
        self.call("StopTransaction", payload)
        self.status(1, "Finishing")
        self.status(1, "Available")

    def _meter(self) -> int:
        """The energy register: rising while a transaction runs, at least 1 Wh per reading."""
        now = time.monotonic()
        if self.transaction_id is not None:
            self.register_wh += max(1, round(_POWER_W * (now - self._metered_at) / 3600))
        self._metered_at = now
        return self.register_wh

    def _now(self) -> str:
        """An ISO 8601 UTC timestamp in ms, never the same twice: the CSMS drops a reading not newer than
        the last one."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        while stamp <= self._last_stamp:
            gevent.sleep(0.001)
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._last_stamp = stamp
        return stamp

    # ------------------------------------------------------------------ what the CSMS asks

    def _answer(self, message_id: str, action: str, payload: Payload) -> None:
        follow_up: Callable[[], None] | None = None
        if action == "RemoteStartTransaction" and self.transaction_id is None:
            result: Payload = {"status": "Accepted"}
            self.available.clear()
            follow_up = functools.partial(self.start_transaction, str(payload["idTag"]))
        elif action == "RemoteStopTransaction" and payload.get("transactionId") == self.transaction_id:
            result = {"status": "Accepted"}
            follow_up = functools.partial(self.stop_transaction, "Remote")
        elif action in ("RemoteStartTransaction", "RemoteStopTransaction"):
            result = {"status": "Rejected"}
        else:
            self._send([_ERROR, message_id, "NotSupported", f"{action} is not supported", {}])
            return
        self._send([_RESULT, message_id, result])
        if follow_up is not None:
            with contextlib.suppress(RescheduleTask):  # a failed call is already recorded
                follow_up()

    def _send(self, frame: list[Any]) -> None:
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):  # the reader sees it closed
                ws.send(json.dumps(frame))


def _sampled(value: int, measurand: str, unit: str) -> Payload:
    return {
        "value": str(value),
        "context": "Sample.Periodic",
        "measurand": measurand,
        "location": "Outlet",
        "unit": unit,
    }


class Charger(OcppCharger):
    """A charger at an everyday pace, compressed into `--ocpp-interval`: heartbeats, a cable plugged in and
    out, and local sessions (Authorize with the RFID card, StartTransaction, MeterValues, StopTransaction)."""

    def wait_time(self) -> float:
        interval = option(self.environment, "ocpp_interval", 5.0)
        return random.uniform(0.5 * interval, 1.5 * interval)

    def on_start(self) -> None:
        super().on_start()
        self._readings_left = 0

    @task(2)
    def beat(self) -> None:
        self.heartbeat()

    @task(1)
    def plug(self) -> None:
        """A driver plugs a cable in and leaves without charging, or the connector was re-reported."""
        if self.transaction_id is None:
            self.status(1, "Preparing")
            self.status(1, "Available")

    @task(5)
    def charge(self) -> None:
        """The next step of a local session: start one, send a meter reading, or stop."""
        if self.transaction_id is None:
            answer = self.call("Authorize", {"idTag": self.id_tag[:20]})
            if answer.get("idTagInfo", {}).get("status") == "Accepted":
                self.start_transaction(self.id_tag)
                self._readings_left = random.randint(3, 8)
        elif self._readings_left > 0:
            self._readings_left -= 1
            self.meter_values()
        else:
            self.stop_transaction("Local")
