"""GET requests over one raw HTTP/1.1 keep-alive connection, as fast as answered or at a set pace.

A raw client (a request line out, a head and a Content-Length body back) costs the load generator a small
fraction of what aiohttp's client would, so a load process can keep thousands of requests a second going
without becoming what is measured. `csms bench nearby` runs it flat out; `csms bench mixed` paces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadtests.scratch import HOST
from loadtests.simulator.stats import LatencyHistogram

NO_ANSWER = 0
"""The status counted for a request that got no answer (connection refused or lost, timed out)."""


@dataclass
class Answers:
    """What a window's requests got: latency from send to answer, and every status (NO_ANSWER included)."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    behind: LatencyHistogram = field(default_factory=LatencyHistogram)
    """Paced only: latency from when each request was due, so a server that falls behind shows it."""
    statuses: Counter[int] = field(default_factory=Counter)


async def request_loop(
    port: int,
    paths: Sequence[bytes],
    offset: int,
    step: int,
    window: tuple[float, float],
    answers: Answers,
    *,
    interval: float = 0.0,
    answer_within: float = 30.0,
) -> None:
    """Send `paths[offset]`, `paths[offset + step]`, ... (cycling) to 127.0.0.1:`port` until the window
    (perf_counter from, to) closes, recording requests sent inside it. `interval` 0: the next request as
    soon as the answer is in; else one every `interval` seconds, or at once when the server is behind.
    A lost connection is counted as NO_ANSWER and opened again."""
    opened, closed = window
    index = offset
    due = time.perf_counter()
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        while True:
            if interval:
                wait = due - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
            began = time.perf_counter()
            if began >= closed:
                return
            path = paths[index % len(paths)]
            index += step
            status = NO_ANSWER
            try:
                async with asyncio.timeout(answer_within):
                    if writer is None:
                        reader, writer = await asyncio.open_connection(HOST, port)
                    assert reader is not None
                    writer.write(b"GET " + path + b" HTTP/1.1\r\nHost: bench\r\n\r\n")
                    head = await reader.readuntil(b"\r\n\r\n")
                    lowered = head.lower()
                    at = lowered.index(b"content-length:") + 15
                    length = int(lowered[at : lowered.index(b"\r\n", at)])
                    await reader.readexactly(length)
                status = int(head[9:12])
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
                if writer is not None:
                    writer.close()
                reader = writer = None
            ended = time.perf_counter()
            if began >= opened:
                answers.latency.record(ended - began)
                if interval:
                    answers.behind.record(ended - min(due, began))
                answers.statuses[status] += 1
            if interval:
                due += interval
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
