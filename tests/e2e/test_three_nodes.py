"""Three nodes on one Postgres and one Redis, and what happens to their chargers when one crashes or drains.

Each node is a real `csms serve --role gateway --role write-api` process with its own ports. Simulated
chargers (OCPP 1.6, charging all the time) start spread over the three, each knowing the other nodes as
failover URLs. Commands go through the write API of a node that does not hold the charger's socket (the
command router carries them over Redis). Then node 0 is killed outright (SIGKILL) and node 1 is stopped
(SIGTERM, drained): their chargers reconnect to the survivors within a bound, commands reach them there, and
every message a charger got a CALLRESULT for, on whichever node, has its events in the event store.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest

from csms.directories import IdTokenDirectory
from csms.domain import Driver, IdToken, IdTokenType, charger_id_for
from csms.domain.topics import EVENT_TYPES
from csms.eventstore import EventCodec, EventStore, Repository, create_pool
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet
from tests.e2e.processes import RoleProcess, role_process
from tests.e2e.test_http_flow import Api, _create_admin, _login
from tests.integration.gateway.conftest import now, register_charger

_NODES = 3
_CHARGERS_PER_NODE = 3
# How long a charger of a node that went away may take to be served by another (its back-off is 0.1-0.4 s).
_RECONNECT_SECONDS = 20.0
# `Gateway.close_all`'s bound on answers in flight and disconnect records, plus process teardown.
_DRAIN_EXIT_SECONDS = 20.0
_STEP_SECONDS = 30.0  # any other wait for the chargers: generous, for a loaded two-core machine


@dataclass(frozen=True)
class Node:
    process: RoleProcess
    ocpp_url: str
    api: Api


@dataclass(frozen=True)
class Acknowledged:
    """A CALL a charger sent and got a CALLRESULT for: the CSMS told it its facts are stored."""

    at: float
    charger: str
    action: str
    request: dict[str, Any]
    result: dict[str, Any]


@dataclass
class Traffic:
    """What the simulated chargers saw, from their observer: their connections, every CALL acknowledged,
    the CSMS's calls they answered. `until` awaits a condition on it, woken by each new observation."""

    connections: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    acknowledged: list[Acknowledged] = field(default_factory=list)
    answered: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    _sent: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, charger: str, event: str, action: str, payload: Any) -> None:
        at = asyncio.get_running_loop().time()
        if event == "connected":
            self.connections[charger].append((at, payload))
        elif event == "sent":
            self._sent[charger] = (action, payload)
        elif event == "result":
            sent_action, request = self._sent.pop(charger)
            assert sent_action == action
            self.acknowledged.append(Acknowledged(at, charger, action, request, payload))
        elif event == "csms_call":
            self.answered[charger].append(action)
        self._changed.set()

    def acks(self, charger: str, action: str | None = None, since: float = 0.0) -> list[Acknowledged]:
        return [
            a
            for a in self.acknowledged
            if a.charger == charger and a.at > since and (action is None or a.action == action)
        ]

    def on(self, charger: str, node_url: str) -> bool:
        """Whether the charger's latest connection is to the node at `node_url`."""
        return self.connections[charger][-1][1].startswith(node_url + "/")

    def moved(self, charger: str, since: float, away_from: str) -> bool:
        """Whether, since `since`, the charger connected to a node other than `away_from` and got a message
        acknowledged there (so that node has claimed it in the routing registry: it does before it reads)."""
        moves = [
            at for at, url in self.connections[charger] if at > since and not url.startswith(away_from + "/")
        ]
        return bool(moves) and bool(self.acks(charger, since=moves[-1]))

    async def until(self, condition: Callable[[], bool], within: float, what: str) -> None:
        try:
            async with asyncio.timeout(within):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"not within {within:.0f} s: {what}", pytrace=False)


def _listening_port() -> int:
    """A free port below the kernel's ephemeral range. `free_port` picks from that range, where the nodes'
    own outgoing connections (Postgres, Redis, each other's routing) may take it before the node binds it;
    six ports and three nodes starting at once made that a real chance."""
    low = 32768
    with contextlib.suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    while True:
        port = random.randrange(10_000, low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


async def _register(database_url: str, token: str, count: int) -> dict[str, str]:
    """`count` chargers (one connector each, passwords by id) and a driver whose RFID card is `token`."""
    pool = await create_pool(database_url, max_size=2)
    store = EventStore(pool, database_url)
    try:
        repository = Repository(store, EventCodec(EVENT_TYPES))
        driver = Driver.register(uuid.uuid4(), f"{token.lower()}@example.com", "Node Driver", now())
        driver.add_id_token(IdToken(token, IdTokenType.RFID), now())
        await repository.save(driver)
        assert await IdTokenDirectory(pool).claim(token, driver.id)
        return dict([await register_charger(repository, evses=1) for _ in range(count)])
    finally:
        await store.close()
        await pool.close()


@contextlib.asynccontextmanager
async def _nodes(
    http: aiohttp.ClientSession, count: int, environment: dict[str, str]
) -> AsyncIterator[list[Node]]:
    """`count` nodes started side by side, each a gateway and a write API on ports of its own."""
    ports = [(_listening_port(), _listening_port()) for _ in range(count)]
    async with contextlib.AsyncExitStack() as stack:
        processes = await asyncio.gather(
            *(
                stack.enter_async_context(
                    role_process(
                        "gateway",
                        "write-api",
                        CSMS_OCPP_PORT=str(ocpp),
                        CSMS_WRITE_API_PORT=str(api),
                        **environment,
                    )
                )
                for ocpp, api in ports
            )
        )
        nodes = [
            Node(process, f"ws://127.0.0.1:{ocpp}/ocpp", Api(http, f"http://127.0.0.1:{api}"))
            for process, (ocpp, api) in zip(processes, ports, strict=True)
        ]
        await asyncio.gather(*(node.api.load_spec() for node in nodes))
        yield nodes


async def _trigger_status(node: Node, charger: str) -> tuple[int, dict[str, Any]]:
    return await node.api.call(
        "POST",
        f"/chargers/{charger}/commands/trigger",
        "/chargers/{charger_id}/commands/{command}",
        {"message": "StatusNotification"},
    )


async def _command_all(traffic: Traffic, chargers: Sequence[str], through: Callable[[str], Node]) -> None:
    """TriggerMessage to each charger through the node `through` picks; each must be accepted."""
    before = {charger: traffic.answered[charger].count("TriggerMessage") for charger in chargers}
    answers = await asyncio.gather(*(_trigger_status(through(charger), charger) for charger in chargers))
    refused = {
        charger: answer
        for charger, answer in zip(chargers, answers, strict=True)
        if answer != (200, {"status": "accepted", "chargerStatus": "Accepted"})
    }
    assert not refused, f"commands not accepted: {refused}"
    await traffic.until(
        lambda: all(traffic.answered[c].count("TriggerMessage") == before[c] + 1 for c in chargers),
        _STEP_SECONDS,
        "each charger answered its TriggerMessage once",
    )


async def _exit_code(node: Node) -> tuple[int, str]:
    """The exit code and the rest of the log of a node that was signalled (once: a second SIGTERM would find
    the default action restored and cut its drain short)."""
    process = node.process.process
    assert process.stderr is not None
    remaining = await asyncio.wait_for(process.stderr.read(), _DRAIN_EXIT_SECONDS)
    return await asyncio.wait_for(process.wait(), _DRAIN_EXIT_SECONDS), remaining.decode()


async def test_chargers_of_a_crashed_and_a_drained_node_move_to_the_others_and_nothing_acknowledged_is_lost(
    database_url: str, redis_url: str, redis_key_prefix: str, pool: asyncpg.Pool, tmp_path: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    token = f"NODES-{run}".upper()
    admin = f"nodes-admin-{run}@example.com"
    data_dir = str(tmp_path)  # one data folder: the nodes share the development key that signs tokens
    passwords = await _register(database_url, token, _NODES * _CHARGERS_PER_NODE)
    await _create_admin(database_url, admin, data_dir)
    environment = {
        "CSMS_DATABASE_URL": database_url,
        "CSMS_REDIS_URL": redis_url,
        "CSMS_REDIS_KEY_PREFIX": redis_key_prefix,
        "CSMS_DATA_DIR": data_dir,
        "CSMS_OCPP_CALL_TIMEOUT_SECONDS": "10",
        # Six roles on one Postgres: small pools keep the run well inside its connection limit.
        "CSMS_DB_POOL_SIZE": "3",
        "CSMS_STARTUP_RETRY_SECONDS": "20",
    }
    ids = list(passwords)
    placed = {node: ids[node::_NODES] for node in range(_NODES)}  # node index -> its chargers
    home = {charger: node for node, chargers in placed.items() for charger in chargers}
    traffic = Traffic()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    fleets: list[Fleet] = []

    async with aiohttp.ClientSession() as http, _nodes(http, _NODES, environment) as nodes:
        urls = [node.ocpp_url for node in nodes]
        await _login(nodes[0].api, admin)
        for node in nodes[1:]:
            node.api.token = nodes[0].api.token
        for index in range(_NODES):
            # Node i first, then the others in turn: each node's chargers fail over to the next node.
            order = urls[index:] + urls[:index]
            config = ChargerConfig(
                url=order[0],
                failover_urls=tuple(order[1:]),
                version="1.6",
                meter_interval=0.25,
                session_duration=1.5,
                idle_duration=0.3,
                id_tag=token,
                response_timeout=15.0,
                reconnect_min=0.1,
                reconnect_range=0.3,
                reconnect_repeat=3,
                ws_ping=None,
                observer=traffic,
            )
            fleets.append(Fleet(placed[index], config, passwords=passwords, charging_share=1.0, seed=index))
        runs = [asyncio.create_task(fleet.run(stop=stop)) for fleet in fleets]
        try:
            await traffic.until(
                lambda: all(traffic.acks(c, "StatusNotification") for c in ids),
                _STEP_SECONDS,
                "every charger booted and reported its connector's status",
            )
            assert all(traffic.on(c, urls[home[c]]) for c in ids)

            # Commands through a node that does not hold the charger's socket.
            await _command_all(traffic, ids, lambda c: nodes[(home[c] + 1) % _NODES])
            await traffic.until(
                lambda: (
                    all(len(traffic.acks(c, "MeterValues")) >= 2 for c in ids)
                    and any(traffic.acks(c, "StopTransaction") for c in ids)
                ),
                _STEP_SECONDS,
                "every charger charging with meter values, some session over",
            )

            # Node 0 crashes: its chargers lose their sockets mid-stream and go to node 1, next in their list
            # (or node 2, should node 1 fail them once).
            killed_at = loop.time()
            nodes[0].process.process.kill()
            await nodes[0].process.process.wait()
            await traffic.until(
                lambda: all(traffic.moved(c, killed_at, urls[0]) for c in placed[0]),
                _RECONNECT_SECONDS,
                f"node 0's chargers {placed[0]} served by another node after SIGKILL",
            )
            assert not any(traffic.on(c, urls[0]) for c in placed[0])
            await _command_all(traffic, placed[0], lambda c: nodes[1] if traffic.on(c, urls[2]) else nodes[2])

            # Node 1 drains: its chargers (its own and node 0's) are told to go away and move to node 2.
            on_node_1 = [c for c in ids if traffic.on(c, urls[1])]
            terminated_at = loop.time()
            nodes[1].process.process.send_signal(signal.SIGTERM)
            code, log = await _exit_code(nodes[1])
            assert code == 0, log
            await traffic.until(
                lambda: all(traffic.moved(c, terminated_at, urls[1]) for c in on_node_1),
                _RECONNECT_SECONDS,
                f"node 1's chargers {on_node_1} served by node 2 after SIGTERM",
            )
            assert all(traffic.on(c, urls[2]) for c in ids)
            await _command_all(traffic, ids, lambda _: nodes[2])
            await traffic.until(
                lambda: all(traffic.acks(c, "MeterValues", since=terminated_at) for c in ids),
                _STEP_SECONDS,
                "every charger's meter values acknowledged by node 2",
            )
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*runs), _STEP_SECONDS)
        code, log = await nodes[2].process.terminate()
        assert code == 0, log

    for fleet in fleets:
        assert fleet.stats.errors == {}, fleet.stats.errors
        assert fleet.stats.boots == {"Accepted": _CHARGERS_PER_NODE}, (
            "a failover is a reconnect, not a reboot"
        )
    lost = await _unrecorded(pool, traffic.acknowledged)
    assert not lost, f"{len(lost)} acknowledged messages have no events, e.g. {lost[:5]}"
    counts = Counter(ack.action for ack in traffic.acknowledged)
    # Not a check of nothing: enough was acknowledged, before and after each node went away.
    assert counts["StartTransaction"] >= len(ids), counts
    assert counts["MeterValues"] >= 3 * len(ids), counts
    assert counts["StopTransaction"] >= 1, counts


def _instant(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


async def _unrecorded(pool: asyncpg.Pool, acknowledged: Sequence[Acknowledged]) -> list[Acknowledged]:
    """The acknowledged messages whose facts the event store does not hold."""
    chargers = {charger_id_for(a.charger): a.charger for a in acknowledged}
    rows = await pool.fetch(
        """
        SELECT e.stream_id, e.topic, e.data FROM events e
        WHERE e.stream_id = ANY($1::uuid[]) OR e.stream_id IN (
            SELECT stream_id FROM events
            WHERE topic = 'ChargingSession.StartedAtCharger'
              AND (data ->> 'charger_id')::uuid = ANY($1::uuid[])
        )
        ORDER BY e.position
        """,
        list(chargers),
    )
    boots: set[str] = set()
    # Each connector's recorded statuses in commit order, which is also their reported order: the charger
    # aggregate ignores a report older than the one it holds.
    statuses: dict[tuple[str, int], list[tuple[datetime, str]]] = defaultdict(list)
    session_of: dict[uuid.UUID, tuple[str, str]] = {}  # session stream -> (charger, transaction id)
    starts: dict[tuple[str, str], int] = {}
    stops: dict[tuple[str, str], int] = {}
    readings: dict[tuple[str, str], set[tuple[datetime, int]]] = defaultdict(set)
    for row in rows:
        data = orjson.loads(row["data"])
        topic = row["topic"]
        if topic == "Charger.BootRecorded":
            boots.add(chargers[row["stream_id"]])
        elif topic == "Charger.ConnectorStatusChanged":
            statuses[chargers[row["stream_id"]], data["evse_id"]].append(
                (datetime.fromisoformat(data["reported_at"]), data["status"])
            )
        elif topic == "ChargingSession.StartedAtCharger":
            key = (chargers[uuid.UUID(data["charger_id"])], data["transaction_id"])
            session_of[row["stream_id"]] = key
            starts[key] = data["meter_start_wh"]
        elif topic == "ChargingSession.MeterValuesRecorded":
            for reading in data["readings"]:
                readings[session_of[row["stream_id"]]].add(
                    (datetime.fromisoformat(reading["measured_at"]), reading["energy_wh"])
                )
        elif topic == "ChargingSession.Stopped":
            stops[session_of[row["stream_id"]]] = data["meter_stop_wh"]

    lost: list[Acknowledged] = []
    for ack in acknowledged:
        request = ack.request
        if ack.action == "BootNotification":
            stored = ack.charger in boots
        elif ack.action == "StatusNotification":
            # Recorded, or a repeat of the status recorded before it: either way, the one in effect then.
            reported_at = _instant(request["timestamp"])
            in_effect = [
                status for at, status in statuses[ack.charger, request["connectorId"]] if at <= reported_at
            ]
            stored = bool(in_effect) and in_effect[-1] == request["status"]
        elif ack.action == "StartTransaction":
            key = (ack.charger, str(ack.result["transactionId"]))
            stored = starts.get(key) == request["meterStart"]
        elif ack.action == "MeterValues":
            key = (ack.charger, str(request["transactionId"]))
            energy = [
                (_instant(value["timestamp"]), int(sample["value"]))
                for value in request["meterValue"]
                for sample in value["sampledValue"]
                if sample["measurand"] == "Energy.Active.Import.Register"
            ]
            stored = bool(energy) and all(reading in readings[key] for reading in energy)
        elif ack.action == "StopTransaction":
            stored = stops.get((ack.charger, str(request["transactionId"]))) == request["meterStop"]
        else:  # Heartbeat, Authorize: no facts to store
            continue
        if not stored:
            lost.append(ack)
    return lost
