"""Run N simulated chargers on one event loop: staggered start, one shared HTTP client, shared statistics."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence

import aiohttp

from loadtests.simulator.charger import Charger
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.protocol import OcppProtocol
from loadtests.simulator.protocol16 import Protocol16
from loadtests.simulator.protocol201 import Protocol201
from loadtests.simulator.stats import Stats

#: The ramp starts chargers in ticks this long: one sleep per charger would cost more than it spreads.
_RAMP_TICK = 0.01


def protocol_for(version: str) -> OcppProtocol:
    if version == "1.6":
        return Protocol16()
    if version == "2.0.1":
        return Protocol201()
    raise ValueError(f"unsupported OCPP version {version!r}")


def charger_ids(prefix: str, count: int) -> list[str]:
    """SIM-000001, SIM-000002, ...: zero-padded so that they sort in order."""
    width = max(6, len(str(count)))
    return [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]


def charges(index: int, share: float) -> bool:
    """Whether charger `index` is among the `share` that run sessions by themselves, spread evenly."""
    return int((index + 1) * share) > int(index * share)


class Fleet:
    """The chargers of one simulation run; `run()` drives them until its duration is over or `stop` is set."""

    def __init__(
        self,
        ids: Sequence[str],
        config: ChargerConfig,
        *,
        passwords: Mapping[str, str] | None = None,
        charging_share: float = 0.3,
        ramp_up: float = 0.0,
        stats: Stats | None = None,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= charging_share <= 1.0:
            raise ValueError("charging_share is a fraction between 0 and 1")
        self.config = config
        self.stats = stats or Stats()
        self.ramp_up = ramp_up
        protocol = protocol_for(config.version)
        rng = random.Random(seed)
        self.chargers = [
            Charger(
                charger_id,
                config=config,
                protocol=protocol,
                stats=self.stats,
                password=None if passwords is None else passwords.get(charger_id),
                charges=charges(index, charging_share),
                rng=rng,
            )
            for index, charger_id in enumerate(ids)
        ]

    async def run(self, *, duration: float | None = None, stop: asyncio.Event | None = None) -> Stats:
        """Run for `duration` seconds (ramp-up included) or until `stop` is set; neither: until cancelled."""
        loop = asyncio.get_running_loop()
        ends_at = None if duration is None else loop.time() + duration
        stop = stop or asyncio.Event()
        config = self.config
        timeout = aiohttp.ClientTimeout(total=None, connect=config.connect_timeout)
        # limit=0: a WebSocket holds its connection for its whole life, and the default pool stops at 100.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        tasks: list[asyncio.Task[None]] = []
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            stopped = loop.create_task(stop.wait())
            try:
                await self._start(http, tasks, stopped, ends_at)
                if not stopped.done():
                    remaining = None if ends_at is None else max(0.0, ends_at - loop.time())
                    await asyncio.wait((stopped,), timeout=remaining)
            finally:
                stopped.cancel()
                await self._stop(tasks)
        return self.stats

    async def _start(
        self,
        http: aiohttp.ClientSession,
        tasks: list[asyncio.Task[None]],
        stopped: asyncio.Task[bool],
        ends_at: float | None,
    ) -> None:
        loop = asyncio.get_running_loop()
        count = len(self.chargers)
        spacing = self.ramp_up / count if count else 0.0
        began = loop.time()
        for index, charger in enumerate(self.chargers):
            due = began + index * spacing
            if ends_at is not None and due >= ends_at:
                return
            if due - loop.time() >= _RAMP_TICK:
                await asyncio.wait((stopped,), timeout=due - loop.time())
                if stopped.done():
                    return
            task = loop.create_task(charger.run(http), name=f"charger {charger.id}")
            task.add_done_callback(self._finished)
            tasks.append(task)

    def _finished(self, task: asyncio.Task[None]) -> None:
        # A charger only returns when stopped: anything else is a bug in the simulator, and must show.
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.stats.errors[f"charger crashed: {exc!r}"] += 1

    async def _stop(self, tasks: list[asyncio.Task[None]]) -> None:
        for charger in self.chargers:
            charger.stop()
        if not tasks:
            return
        # A charger returns at its next step; one waiting on a slow close is cancelled.
        _, pending = await asyncio.wait(tasks, timeout=max(5.0, len(tasks) / 2000))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
