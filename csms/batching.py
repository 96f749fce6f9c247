"""Requests made at the same time, carried out together: one round trip per batch instead of one each.

A caller submits a request and waits for its result. Up to `max_in_flight` batches run at once; requests
arriving meanwhile wait and form the next batch, so under load a batch holds whatever piled up during the
previous round trip, and a lone request costs one round trip, as before. A batch that fails fails each of
its requests with the same error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Q = TypeVar("Q")
R = TypeVar("R")


class Coalescer(Generic[Q, R]):
    def __init__(
        self,
        run: Callable[[Sequence[Q]], Awaitable[Sequence[R]]],
        *,
        name: str,
        max_in_flight: int = 1,
        max_batch: int = 1000,
    ) -> None:
        """`run` carries out a batch and returns one result per request, in order."""
        if max_in_flight < 1 or max_batch < 1:
            raise ValueError("max_in_flight and max_batch must be at least 1")
        self._run = run
        self._name = name
        self._max_in_flight = max_in_flight
        self._max_batch = max_batch
        self._waiting: list[tuple[Q, asyncio.Future[R]]] = []
        self._senders: set[asyncio.Task[None]] = set()
        self.batches = 0  # round trips made, for tests and curiosity

    async def submit(self, request: Q) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((request, future))
        if len(self._senders) < self._max_in_flight:
            self._senders.add(asyncio.create_task(self._send(), name=self._name))
        return await future

    async def _send(self) -> None:
        try:
            await self._send_waiting()
        finally:
            # At once, with no await since the queue was seen empty: a sender that counts as running is
            # one that will still look at the queue (a done-callback would leave a gap for requests to hang).
            self._senders.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]

    async def _send_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            self.batches += 1
            try:
                results = await self._run([request for request, _future in batch])
            except BaseException as error:  # every request of the batch hears it
                for _request, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (_request, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
