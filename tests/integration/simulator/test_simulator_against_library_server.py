"""The simulator against real servers: the `ocpp`-library central system (which validates every message
against the schemas), the bare responder, a scripted server for the boot states. Real sockets on loopback."""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from click.testing import CliRunner

from loadtests.baselines import bare_responder
from loadtests.simulator.cli import simulate
from loadtests.simulator.config import ChargerConfig, OcppVersion
from loadtests.simulator.fleet import Fleet, charger_ids, charges
from tests.unit.simulator.schemas import assert_valid

WEBSOCKETS_MISSING = importlib.util.find_spec("websockets") is None
needs_websockets = pytest.mark.skipif(
    WEBSOCKETS_MISSING,
    reason="the ocpp-library baseline runs on the `websockets` package, which is not installed",
)

if not WEBSOCKETS_MISSING:
    from ocpp.v16 import call as call16
    from ocpp.v201 import call as call201
    from websockets.asyncio.server import ServerConnection

    from loadtests.baselines.ocpp_library_server import CentralSystem16, CentralSystem201, LibraryServer
    from loadtests.baselines.ocpp_library_server import serve as serve_library

VERSIONS: list[OcppVersion] = ["1.6", "2.0.1"]
TX_ACTIONS = frozenset({"StartTransaction", "StopTransaction", "MeterValues", "TransactionEvent"})


# ---------------------------------------------------------------------------------------------- recording


class Changes:
    """Something that grows; `wait_for` awaits a predicate over it without polling or sleeping."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()

    def changed(self) -> None:
        self._changed.set()

    async def wait_for(self, predicate: Callable[[], bool], within: float = 15.0) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Frame:
    charger: str
    direction: str  # "in": charger → central system, "out": central system → charger
    frame: list[Any]


class Journal(Changes):
    """Every frame the central system received and sent, and its connections by charger id."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.connections: dict[str, Any] = {}

    def add(self, charger: str, direction: str, raw: str | bytes) -> None:
        self.frames.append(Frame(charger, direction, orjson.loads(raw)))
        self.changed()

    def calls(self, charger: str | None = None, actions: frozenset[str] | str | None = None) -> list[Frame]:
        """CALLs from chargers, in arrival order."""
        wanted = frozenset({actions}) if isinstance(actions, str) else actions
        return [
            f
            for f in self.frames
            if f.direction == "in"
            and f.frame[0] == 2
            and (charger is None or f.charger == charger)
            and (wanted is None or f.frame[2] in wanted)
        ]

    def answer_to(self, call: Frame) -> list[Any] | None:
        return next(
            (
                f.frame
                for f in self.frames
                if f.direction == "out" and f.charger == call.charger and f.frame[1] == call.frame[1]
            ),
            None,
        )

    def answer(self, call: Frame) -> list[Any]:
        answer = self.answer_to(call)
        assert answer is not None, f"no answer to {call.frame}"
        return answer

    def answered(self, charger: str, action: str) -> list[tuple[Frame, list[Any]]]:
        """CALLs of `action` from `charger` that have been answered, with their answers."""
        pairs = [(call, self.answer_to(call)) for call in self.calls(charger, action)]
        return [(call, answer) for call, answer in pairs if answer is not None]

    def errors_sent(self) -> list[list[Any]]:
        return [f.frame for f in self.frames if f.direction == "out" and f.frame[0] == 4]


class Events(Changes):
    """What the simulated chargers reported to their observer."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str, str, Any]] = []

    def __call__(self, charger: str, event: str, action: str, payload: Any) -> None:
        self.log.append((charger, event, action, payload))
        self.changed()

    def count(self, event: str) -> int:
        return sum(1 for e in self.log if e[1] == event)


if not WEBSOCKETS_MISSING:

    class Recording16(CentralSystem16):
        def __init__(self, cp_id: str, connection: ServerConnection, journal: Journal, **kwargs: Any) -> None:
            super().__init__(cp_id, connection, **kwargs)
            self.journal = journal
            journal.connections[cp_id] = self

        async def route_message(self, raw_msg: str) -> None:
            self.journal.add(self.id, "in", raw_msg)
            await super().route_message(raw_msg)

        async def _send(self, message: str) -> None:
            self.journal.add(self.id, "out", message)
            await super()._send(message)

    class Recording201(CentralSystem201):
        def __init__(self, cp_id: str, connection: ServerConnection, journal: Journal, **kwargs: Any) -> None:
            super().__init__(cp_id, connection, **kwargs)
            self.journal = journal
            journal.connections[cp_id] = self

        async def route_message(self, raw_msg: str) -> None:
            self.journal.add(self.id, "in", raw_msg)
            await super().route_message(raw_msg)

        async def _send(self, message: str) -> None:
            self.journal.add(self.id, "out", message)
            await super()._send(message)

    async def start_library_server(
        journal: Journal, port: int = 0, heartbeat_interval: int = 300
    ) -> LibraryServer:
        return await serve_library(
            "127.0.0.1",
            port,
            factories={
                "ocpp2.0.1": lambda cp_id, conn: Recording201(
                    cp_id, conn, journal, heartbeat_interval=heartbeat_interval
                ),
                "ocpp1.6": lambda cp_id, conn: Recording16(
                    cp_id, conn, journal, heartbeat_interval=heartbeat_interval
                ),
            },
        )


@asynccontextmanager
async def running(fleet: Fleet) -> AsyncIterator[Fleet]:
    """Run `fleet` in the background for the body of the with-block, then stop it (bounded in time)."""
    stop = asyncio.Event()
    task = asyncio.create_task(fleet.run(stop=stop))
    try:
        yield fleet
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task


def fast_config(port: int, version: OcppVersion, **overrides: Any) -> ChargerConfig:
    settings: dict[str, Any] = {
        "url": f"ws://127.0.0.1:{port}/ocpp",
        "version": version,
        "heartbeat": 0.3,
        "meter_interval": 0.05,
        "session_duration": 0.5,
        "idle_duration": 0.1,
        "response_timeout": 5.0,
        "reconnect_min": 0.05,
        "reconnect_range": 0.05,
        "reconnect_repeat": 2,
        "ws_ping": None,
    }
    settings.update(overrides)
    return ChargerConfig(**settings)


def energy_of(action: str, payload: dict[str, Any]) -> int:
    if action == "StartTransaction":
        return int(payload["meterStart"])
    if action == "StopTransaction":
        return int(payload["meterStop"])
    value = payload["meterValue"][0]["sampledValue"][0]["value"]
    return int(float(value))


def sessions_16(journal: Journal, charger: str) -> Iterator[list[Frame]]:
    """Complete 1.6 transactions of `charger`: StartTransaction, MeterValues and StopTransaction frames."""
    current: list[Frame] | None = None
    for call in journal.calls(charger, TX_ACTIONS):
        action = call.frame[2]
        if action == "StartTransaction":
            current = [call]
        elif current is not None:
            current.append(call)
            if action == "StopTransaction":
                yield current
                current = None


def sessions_201(journal: Journal, charger: str) -> Iterator[list[Frame]]:
    """Complete 2.0.1 transactions of `charger`: its TransactionEvent frames from Started to Ended."""
    current: list[Frame] | None = None
    for call in journal.calls(charger, "TransactionEvent"):
        event = call.frame[3]["eventType"]
        if event == "Started":
            current = [call]
        elif current is not None:
            current.append(call)
            if event == "Ended":
                yield current
                current = None


def complete_sessions(journal: Journal, version: OcppVersion, charger: str) -> list[list[Frame]]:
    return list(sessions_16(journal, charger) if version == "1.6" else sessions_201(journal, charger))


# ---------------------------------------------------------------------------------------------- fleet


@needs_websockets
@pytest.mark.parametrize("version", VERSIONS)
async def test_a_fleet_boots_reports_status_and_charges_with_rising_meter_values(
    version: OcppVersion,
) -> None:
    journal = Journal()
    server = await start_library_server(journal)
    ids = charger_ids("SIM-", 5)
    share = 0.6
    charging = [cid for index, cid in enumerate(ids) if charges(index, share)]
    idle = [cid for cid in ids if cid not in charging]
    fleet = Fleet(
        ids, fast_config(server.port, version, connectors=2), charging_share=share, ramp_up=0.1, seed=1
    )

    def every_charging_charger_completed_a_session() -> bool:
        return all(
            any(len(s) >= 4 for s in complete_sessions(journal, version, cid)) for cid in charging
        ) and all(journal.calls(cid, "Heartbeat") for cid in ids)

    try:
        async with running(fleet):
            await journal.wait_for(every_charging_charger_completed_a_session)
    finally:
        await server.close()

    stats = fleet.stats
    assert stats.boots == {"Accepted": 5}
    assert stats.errors == {}, stats.errors
    assert journal.errors_sent() == []
    for cid in ids:
        boots = journal.calls(cid, "BootNotification")
        assert len(boots) == 1
        assert journal.answer(boots[0])[2]["status"] == "Accepted"
        first_other = journal.calls(cid)[1]
        assert first_other.frame[2] != "BootNotification"
        statuses = journal.calls(cid, "StatusNotification")
        key = "connectorId" if version == "1.6" else "evseId"
        assert {s.frame[3][key] for s in statuses} == {1, 2}, "a status for each connector"
    for cid in idle:
        assert not journal.calls(cid, TX_ACTIONS), "only the charging share runs sessions by itself"
    for cid in charging:
        assert journal.calls(cid, "Authorize"), "a local start is authorised first"
        for session in complete_sessions(journal, version, cid):
            energies = [energy_of(f.frame[2], f.frame[3]) for f in session]
            assert energies == sorted(energies), energies
            assert len(set(energies)) == len(energies), energies
            if version == "1.6":
                transaction_id = journal.answer(session[0])[2]["transactionId"]
                assert {f.frame[3]["transactionId"] for f in session[1:]} == {transaction_id}
            else:
                assert [f.frame[3]["seqNo"] for f in session] == list(range(len(session)))
                assert len({f.frame[3]["transactionInfo"]["transactionId"] for f in session}) == 1
    for action in ("BootNotification", "StatusNotification", "Heartbeat", "Authorize"):
        assert stats.actions[action].latency.count == stats.actions[action].results > 0
    assert stats.sessions_started >= len(charging)
    received = len(journal.calls())
    assert stats.summary(1.0)["calls_answered"] <= received <= sum(a.sent for a in stats.actions.values())


# ---------------------------------------------------------------------------------------------- offline queue


@needs_websockets
@pytest.mark.parametrize("version", VERSIONS)
async def test_messages_queued_offline_are_replayed_in_order_with_their_original_timestamps(
    version: OcppVersion,
) -> None:
    events = Events()
    first = Journal()
    server = await start_library_server(first)
    port = server.port
    config = fast_config(port, version, idle_duration=0.0, session_duration=0.4, observer=events)
    fleet = Fleet(["SIM-OFFLINE"], config, charging_share=1.0)
    offline_queued: list[tuple[str, dict[str, Any]]] = []
    second = Journal()
    restarted = None
    try:
        async with running(fleet):
            # Online: a session is running and its meter values arrive.
            await first.wait_for(lambda: len(first.calls(actions=TX_ACTIONS)) >= 3)
            await server.close()
            await events.wait_for(lambda: events.count("disconnected") == 1)
            went_offline = len(events.log)

            def queued_offline() -> list[tuple[str, dict[str, Any]]]:
                return [(a, p) for _, e, a, p in events.log[went_offline:] if e == "queued"]

            def a_session_ended_and_another_began_offline() -> bool:
                kinds = [_kind(a, p) for a, p in queued_offline()]
                return "end" in kinds and "start" in kinds[kinds.index("end") :] and kinds[-1] == "sample"

            await events.wait_for(a_session_ended_and_another_began_offline)
            offline_queued = queued_offline()
            restarted_at = time.time()
            restarted = await start_library_server(second, port=port)
            await events.wait_for(lambda: fleet.stats.replayed >= len(offline_queued))
    finally:
        await (restarted or server).close()

    assert fleet.stats.connect_failures, "the charger tried to reconnect while the server was down"
    replayed = [f.frame for f in second.calls(actions=TX_ACTIONS)]
    first_replayed = next(i for i, f in enumerate(replayed) if f[3] == _with_id(offline_queued[0][1], f[3]))
    replayed = replayed[first_replayed : first_replayed + len(offline_queued)]
    assert [f[2] for f in replayed] == [action for action, _ in offline_queued], (
        "replayed in the order queued"
    )
    timestamps = [_timestamp(f[3]) for f in replayed]
    assert timestamps == [_timestamp(payload) for _, payload in offline_queued], (
        "with their original timestamps"
    )
    assert timestamps == sorted(timestamps)
    assert all(_epoch(t) < restarted_at for t in timestamps), "stamped when they happened, not when sent"
    assert not second.calls(actions="BootNotification"), "a reconnect is not a reboot"
    assert second.calls(actions="StatusNotification"), "statuses are refreshed after a reconnect"
    assert second.errors_sent() == []
    if version == "2.0.1":
        assert all(f[3]["offline"] is True for f in replayed)
        assert all(f[3] == p for f, (_, p) in zip(replayed, offline_queued, strict=True))
    else:
        # The start queued offline got its transactionId only when replayed: what follows it carries that id.
        start_index = next(i for i, f in enumerate(replayed) if f[2] == "StartTransaction")
        start_call = next(
            c for c in second.calls(actions="StartTransaction") if c.frame == replayed[start_index]
        )
        new_id = second.answer(start_call)[2]["transactionId"]
        assert all(f[3]["transactionId"] == new_id for f in replayed[start_index + 1 :])
    assert fleet.stats.replayed >= len(offline_queued)
    assert fleet.stats.errors == {}, fleet.stats.errors


@needs_websockets
async def test_a_charger_fails_over_to_the_next_node_when_one_refuses_or_goes_away() -> None:
    events = Events()
    first, second = Journal(), Journal()
    with socket.socket() as probe:  # a port nothing listens on: the charger's first endpoint is down
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    first_server = await start_library_server(first)
    second_server = await start_library_server(second)
    urls = [f"ws://127.0.0.1:{port}/ocpp" for port in (dead, first_server.port, second_server.port)]
    config = fast_config(dead, "1.6", failover_urls=tuple(urls[1:]), observer=events)
    fleet = Fleet(["SIM-FAILOVER"], config, charging_share=1.0)

    def connected_to() -> list[Any]:
        return [payload for _, event, _, payload in events.log if event == "connected"]

    try:
        async with running(fleet):
            await first.wait_for(lambda: len(first.calls(actions=TX_ACTIONS)) >= 2)
            await first_server.close()  # its node goes away: the charger moves on to the next one
            await second.wait_for(lambda: len(second.calls(actions=TX_ACTIONS)) >= 2)
    finally:
        await first_server.close()
        await second_server.close()

    assert connected_to() == [f"{urls[1]}/SIM-FAILOVER", f"{urls[2]}/SIM-FAILOVER"]
    assert fleet.stats.connect_failures == {"ClientConnectorError": 1}
    assert len(first.calls(actions="BootNotification")) == 1
    assert not second.calls(actions="BootNotification"), "a reconnect to another node is not a reboot"
    assert second.calls(actions="StatusNotification"), "the new node hears every connector's status"
    assert fleet.stats.errors == {}, fleet.stats.errors


def _kind(action: str, payload: dict[str, Any]) -> str:
    if action == "StartTransaction" or payload.get("eventType") == "Started":
        return "start"
    if action == "StopTransaction" or payload.get("eventType") == "Ended":
        return "end"
    return "sample"


def _with_id(queued: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
    """The queued payload as sent: 1.6 adds the transactionId at sending time."""
    return {**queued, "transactionId": sent["transactionId"]} if "transactionId" in sent else queued


def _timestamp(payload: dict[str, Any]) -> str:
    """When the message says it happened (1.6 MeterValues carry it on their meter value)."""
    return str(payload["timestamp"] if "timestamp" in payload else payload["meterValue"][0]["timestamp"])


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------------------------- CSMS calls


@needs_websockets
async def test_the_charger_answers_the_central_systems_calls_16() -> None:
    journal = Journal()
    server = await start_library_server(journal)
    config = fast_config(server.port, "1.6", heartbeat=60.0, meter_interval=0.1, session_duration=60.0)
    fleet = Fleet(["SIM-CALLS-16"], config, charging_share=0.0)
    cid = "SIM-CALLS-16"
    try:
        async with running(fleet):
            await journal.wait_for(lambda: len(journal.calls(cid, "StatusNotification")) >= 1)
            cs = journal.connections[cid]

            # The library validates each answer against the 1.6 schemas, and raises on a CALLERROR.
            config_keys = await cs.call(call16.GetConfiguration(), suppress=False)
            assert {k["key"] for k in config_keys.configuration_key} >= {
                "HeartbeatInterval",
                "NumberOfConnectors",
            }
            some = await cs.call(call16.GetConfiguration(key=["HeartbeatInterval", "Nope"]), suppress=False)
            assert some.unknown_key == ["Nope"]
            changed = await cs.call(
                call16.ChangeConfiguration(key="MeterValueSampleInterval", value="1"), suppress=False
            )
            assert changed.status == "Accepted"
            refused = await cs.call(
                call16.ChangeConfiguration(key="NumberOfConnectors", value="3"), suppress=False
            )
            assert refused.status == "Rejected"
            assert (await cs.call(call16.ClearCache(), suppress=False)).status == "Accepted"

            assert (
                await cs.call(call16.TriggerMessage(requested_message="Heartbeat"), suppress=False)
            ).status == "Accepted"
            await journal.wait_for(lambda: len(journal.calls(cid, "Heartbeat")) == 1)

            started = await cs.call(
                call16.RemoteStartTransaction(id_tag="REMOTE1", connector_id=1), suppress=False
            )
            assert started.status == "Accepted"
            await journal.wait_for(lambda: len(journal.answered(cid, "StartTransaction")) == 1)
            ((start, answer),) = journal.answered(cid, "StartTransaction")
            assert start.frame[3]["idTag"] == "REMOTE1"
            transaction_id = answer[2]["transactionId"]
            await journal.wait_for(
                lambda: any(
                    s.frame[3]["status"] == "Charging" for s in journal.calls(cid, "StatusNotification")
                )
            )
            wrong = await cs.call(
                call16.RemoteStopTransaction(transaction_id=transaction_id + 100), suppress=False
            )
            assert wrong.status == "Rejected"
            stopped = await cs.call(
                call16.RemoteStopTransaction(transaction_id=transaction_id), suppress=False
            )
            assert stopped.status == "Accepted"
            await journal.wait_for(lambda: len(journal.calls(cid, "StopTransaction")) == 1)
            stop = journal.calls(cid, "StopTransaction")[0].frame[3]
            assert stop["transactionId"] == transaction_id
            assert stop["reason"] == "Remote"

            assert (
                await cs.call(call16.UnlockConnector(connector_id=1), suppress=False)
            ).status == "Unlocked"
            assert (
                await cs.call(call16.UnlockConnector(connector_id=9), suppress=False)
            ).status == "NotSupported"

            off = await cs.call(call16.ChangeAvailability(connector_id=1, type="Inoperative"), suppress=False)
            assert off.status == "Accepted"
            await journal.wait_for(
                lambda: journal.calls(cid, "StatusNotification")[-1].frame[3]["status"] == "Unavailable"
            )
            on = await cs.call(call16.ChangeAvailability(connector_id=1, type="Operative"), suppress=False)
            assert on.status == "Accepted"
            await journal.wait_for(
                lambda: journal.calls(cid, "StatusNotification")[-1].frame[3]["status"] == "Available"
            )

            assert (await cs.call(call16.Reset(type="Soft"), suppress=False)).status == "Accepted"
            await journal.wait_for(lambda: len(journal.calls(cid, "BootNotification")) == 2)
    finally:
        await server.close()
    assert journal.errors_sent() == []
    assert fleet.stats.errors == {}, fleet.stats.errors
    assert fleet.stats.csms_calls["GetConfiguration"] == 2


@needs_websockets
async def test_the_charging_station_answers_the_csms_calls_201() -> None:
    journal = Journal()
    server = await start_library_server(journal)
    config = fast_config(server.port, "2.0.1", heartbeat=60.0, meter_interval=0.1, session_duration=60.0)
    cid = "SIM-CALLS-201"
    fleet = Fleet([cid], config, charging_share=0.0)
    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    try:
        async with running(fleet):
            await journal.wait_for(lambda: len(journal.calls(cid, "StatusNotification")) >= 1)
            cs = journal.connections[cid]

            got = await cs.call(
                call201.GetVariables(
                    get_variable_data=[
                        heartbeat,
                        {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "X"}},
                    ]
                ),
                suppress=False,
            )
            assert [r["attribute_status"] for r in got.get_variable_result] == [
                "Accepted",
                "UnknownComponent",
            ]
            assert got.get_variable_result[0]["attribute_value"] == "60"
            done = await cs.call(
                call201.SetVariables(set_variable_data=[{**heartbeat, "attribute_value": "120"}]),
                suppress=False,
            )
            assert done.set_variable_result[0]["attribute_status"] == "Accepted"

            trigger = await cs.call(call201.TriggerMessage(requested_message="Heartbeat"), suppress=False)
            assert trigger.status == "Accepted"
            await journal.wait_for(lambda: len(journal.calls(cid, "Heartbeat")) == 1)
            no_boot = await cs.call(
                call201.TriggerMessage(requested_message="BootNotification"), suppress=False
            )
            assert no_boot.status == "Rejected"

            started = await cs.call(
                call201.RequestStartTransaction(
                    id_token={"id_token": "REMOTE1", "type": "Central"}, remote_start_id=42
                ),
                suppress=False,
            )
            assert started.status == "Accepted"
            await journal.wait_for(lambda: len(journal.calls(cid, "TransactionEvent")) >= 1)
            first = journal.calls(cid, "TransactionEvent")[0].frame[3]
            assert first["eventType"] == "Started"
            assert first["triggerReason"] == "RemoteStart"
            assert first["transactionInfo"]["remoteStartId"] == 42
            assert first["idToken"] == {"idToken": "REMOTE1", "type": "Central"}
            transaction_id = first["transactionInfo"]["transactionId"]

            locked = await cs.call(call201.UnlockConnector(evse_id=1, connector_id=1), suppress=False)
            assert locked.status == "OngoingAuthorizedTransaction"
            triggered = await cs.call(
                call201.TriggerMessage(requested_message="TransactionEvent"), suppress=False
            )
            assert triggered.status == "Accepted"
            await journal.wait_for(
                lambda: any(
                    c.frame[3]["triggerReason"] == "Trigger" for c in journal.calls(cid, "TransactionEvent")
                )
            )
            stopped = await cs.call(
                call201.RequestStopTransaction(transaction_id=transaction_id), suppress=False
            )
            assert stopped.status == "Accepted"
            await journal.wait_for(
                lambda: journal.calls(cid, "TransactionEvent")[-1].frame[3]["eventType"] == "Ended"
            )
            events = [c.frame[3] for c in journal.calls(cid, "TransactionEvent")]
            assert events[-1]["transactionInfo"]["stoppedReason"] == "Remote"
            assert [e["seqNo"] for e in events] == list(range(len(events)))

            off = await cs.call(
                call201.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}), suppress=False
            )
            assert off.status == "Accepted"
            await journal.wait_for(
                lambda: (
                    journal.calls(cid, "StatusNotification")[-1].frame[3]["connectorStatus"] == "Unavailable"
                )
            )

            assert (await cs.call(call201.Reset(type="Immediate"), suppress=False)).status == "Accepted"
            await journal.wait_for(lambda: len(journal.calls(cid, "BootNotification")) == 2)
            assert journal.calls(cid, "BootNotification")[1].frame[3]["reason"] == "RemoteReset"
    finally:
        await server.close()
    assert journal.errors_sent() == []
    assert fleet.stats.errors == {}, fleet.stats.errors


# ---------------------------------------------------------------------------------------------- boot states


@dataclass
class ScriptedServer(Changes):
    """Answers BootNotification with the statuses given, in turn, and everything else with {}."""

    boot_answers: list[str]
    received: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("ocpp1.6",))
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        async for message in ws:
            _, uid, action, _ = orjson.loads(message.data)
            self.received.append((loop.time(), action))
            self.changed()
            payload: dict[str, Any] = {}
            if action == "BootNotification":
                status = self.boot_answers.pop(0) if self.boot_answers else "Accepted"
                payload = {"currentTime": "2024-01-01T00:00:00Z", "interval": 1, "status": status}
            elif action == "Heartbeat":
                payload = {"currentTime": "2024-01-01T00:00:00Z"}
            await ws.send_str(orjson.dumps([3, uid, payload]).decode())
        return ws


async def test_rejected_and_pending_boots_are_retried_after_the_interval_and_nothing_else_is_sent() -> None:
    script = ScriptedServer(["Rejected", "Pending"])
    app = web.Application()
    app.router.add_get("/ocpp/{cp}", script.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    # No heartbeat override: the charger must use the interval the CSMS returned (1 s).
    fleet = Fleet(["SIM-BOOT"], fast_config(port, "1.6", heartbeat=None), charging_share=0.0)
    try:
        async with running(fleet):
            await script.wait_for(lambda: any(action == "Heartbeat" for _, action in script.received))
    finally:
        await runner.cleanup()
    actions = [action for _, action in script.received]
    assert actions[:3] == ["BootNotification"] * 3, actions
    boot_times = [t for t, action in script.received if action == "BootNotification"]
    assert boot_times[1] - boot_times[0] >= 0.99, "Rejected: wait the interval before booting again"
    assert boot_times[2] - boot_times[1] >= 0.99, "Pending: wait the interval before booting again"
    heartbeat_at = next(t for t, action in script.received if action == "Heartbeat")
    assert heartbeat_at - boot_times[2] >= 0.99, "heartbeat at the interval the CSMS returned"
    assert fleet.stats.boots == {"Rejected": 1, "Pending": 1, "Accepted": 1}


# ------------------------------------------------------------------------------------------ bare responder


@pytest.mark.parametrize(
    ("subprotocol", "version", "actions"),
    [
        (
            "ocpp1.6",
            "1.6",
            ["BootNotification", "Heartbeat", "StartTransaction", "MeterValues", "StopTransaction"],
        ),
        ("ocpp2.0.1", "2.0.1", ["BootNotification", "Heartbeat", "TransactionEvent", "StatusNotification"]),
    ],
)
async def test_the_bare_responder_answers_each_call_with_its_canned_result(
    subprotocol: str, version: str, actions: list[str]
) -> None:
    server = await bare_responder.serve("127.0.0.1", 0)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"ws://127.0.0.1:{server.port}/ocpp/CP-1", protocols=(subprotocol,)) as ws,
        ):
            assert ws.protocol == subprotocol
            for n, action in enumerate(actions):
                await ws.send_str(orjson.dumps([2, f"id-{n}", action, {}]).decode())
                async with asyncio.timeout(5):
                    kind, unique_id, payload = orjson.loads((await ws.receive()).data)
                assert (kind, unique_id) == (3, f"id-{n}")
                assert_valid(version, action, payload, response=True)
    finally:
        await server.close()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_fleet_runs_against_the_bare_responder_without_errors(version: OcppVersion) -> None:
    server = await bare_responder.serve("127.0.0.1", 0)
    events = Events()
    fleet = Fleet(
        charger_ids("SIM-", 5), fast_config(server.port, version, observer=events), charging_share=0.4
    )
    try:
        async with running(fleet):
            await events.wait_for(lambda: events.count("queued") >= 10)
    finally:
        await server.close()
    assert fleet.stats.boots == {"Accepted": 5}
    assert fleet.stats.errors == {}, fleet.stats.errors


async def test_the_simulate_command_runs_a_fleet_and_writes_its_statistics(tmp_path: Path) -> None:
    server = await bare_responder.serve("127.0.0.1", 0)
    passwords = tmp_path / "passwords.txt"
    passwords.write_text("CP-A:secret-a\nCP-B secret-b\nCP-C secret-c\n", encoding="utf-8")
    report = tmp_path / "stats.json"
    args = [
        "--url", f"ws://127.0.0.1:{server.port}/ocpp",
        "--chargers", "2",
        "--ocpp", "2.0.1",
        "--meter-interval", "0.05",
        "--heartbeat", "0.2",
        "--password-file", str(passwords),
        "--charging-share", "0.5",
        "--session-duration", "0.3",
        "--idle-duration", "0",
        "--duration", "1.5",
        "--progress", "0",
        "--json", str(report),
    ]  # fmt: skip
    try:
        # The command runs its own event loop, so off this one (which serves it).
        result = await asyncio.wait_for(asyncio.to_thread(CliRunner().invoke, simulate, args), timeout=30)
    finally:
        await server.close()
    assert result.exit_code == 0, result.output
    assert "TransactionEvent" in result.output
    stats = orjson.loads(report.read_bytes())
    assert stats["chargers"] == 2
    assert stats["boots"] == {"Accepted": 2}
    assert stats["errors"] == {}
    assert stats["actions"]["TransactionEvent"]["results"] > 0
    assert stats["actions"]["Heartbeat"]["latency_ms"]["p50"] > 0
