"""A fault-injecting proxy in front of localstripe that behaves, where it matters, like Stripe itself.

localstripe never answers 429 and ignores idempotency keys. This proxy injects 429s (with and without
`Stripe-Should-Retry`), 500s, dropped connections and delays, and keeps Stripe's idempotency promise: a
request whose key was answered before gets that first answer again without reaching localstripe. Every
request is logged, so tests assert what our code sent (the same key on every retry), not what localstripe did.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web


@dataclass
class Faults:
    """Probabilities per request (evaluated in this order) and how long a delayed request waits."""

    rate_limit: float = 0.0  # 429, no advice
    rate_limit_retry: float = 0.0  # 429 with Stripe-Should-Retry: true
    rate_limit_no_retry: float = 0.0  # 429 with Stripe-Should-Retry: false
    server_error: float = 0.0  # 500 before reaching localstripe
    drop_before: float = 0.0  # connection closed before forwarding
    drop_after: float = 0.0  # forwarded (the charge happened), then the answer is lost
    delay: float = 0.0
    delay_seconds: float = 0.0
    only_paths: tuple[str, ...] = ()  # empty: every path


@dataclass
class Logged:
    method: str
    path: str
    idempotency_key: str | None
    body: bytes
    answer: str  # forwarded, replayed, 429, 429-retry, 429-no-retry, 500, dropped-before, dropped-after
    reached_upstream: bool = False  # localstripe saw this request (a PaymentIntent created, say)


@dataclass
class FaultProxy:
    upstream: str
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    log: list[Logged] = field(default_factory=list)
    # Called after localstripe answered and before the answer goes back (a process killed there, say).
    after_forward: Callable[[Logged], Awaitable[None]] | None = None
    _answers: dict[str, tuple[int, bytes, str]] = field(default_factory=dict)
    _in_flight: dict[str, asyncio.Lock] = field(default_factory=dict)
    _http: aiohttp.ClientSession | None = None
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        self._http = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    def _roll(self, probability: float) -> bool:
        return probability > 0 and self.rng.random() < probability

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        entry = Logged(request.method, request.path, key, body, "forwarded")
        self.log.append(entry)
        f = self.faults
        faulty = not f.only_paths or any(request.path.startswith(p) for p in f.only_paths)
        if faulty:
            if self._roll(f.rate_limit):
                entry.answer = "429"
                return _error(429, "rate_limit", {})
            if self._roll(f.rate_limit_retry):
                entry.answer = "429-retry"
                return _error(429, "rate_limit", {"Stripe-Should-Retry": "true"})
            if self._roll(f.rate_limit_no_retry):
                entry.answer = "429-no-retry"
                return _error(429, "rate_limit", {"Stripe-Should-Retry": "false"})
            if self._roll(f.server_error):
                entry.answer = "500"
                return _error(500, "api_error", {})
            if self._roll(f.drop_before):
                entry.answer = "dropped-before"
                return await _drop(request)
            if self._roll(f.delay):
                await asyncio.sleep(f.delay_seconds)
        lock = self._in_flight.setdefault(key, asyncio.Lock()) if key else None
        if lock is not None:
            await lock.acquire()
        try:
            if key is not None and key in self._answers:
                entry.answer = "replayed"
                status, payload, content_type = self._answers[key]
            else:
                status, payload, content_type = await self._forward(request, body)
                entry.reached_upstream = True
                if key is not None and status < 500:
                    self._answers[key] = (status, payload, content_type)
                if self.after_forward is not None:
                    await self.after_forward(entry)
        finally:
            if lock is not None:
                lock.release()
        if faulty and self._roll(f.drop_after):
            entry.answer = "dropped-after"
            return await _drop(request)
        return web.Response(status=status, body=payload, content_type=content_type.split(";")[0])

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, bytes, str]:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        async with self._http.request(
            request.method, self.upstream + request.path_qs, data=body, headers=headers
        ) as answer:
            return answer.status, await answer.read(), answer.headers.get("Content-Type", "application/json")


def _error(status: int, kind: str, headers: dict[str, str]) -> web.Response:
    return web.json_response(
        {"error": {"type": kind, "message": f"injected {status}"}}, status=status, headers=headers
    )


async def _drop(request: web.Request) -> web.StreamResponse:
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=500)  # never reaches the client
