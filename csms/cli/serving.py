"""Serving an aiohttp app until cancelled: the one place that binds ports, for every HTTP role."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import NoReturn

from aiohttp import web

from csms.web.access_log import StructuredAccessLogger

_log = logging.getLogger(__name__)

# In-flight requests get this long to finish when the process is asked to stop.
_SHUTDOWN_TIMEOUT_SECONDS = 10.0
_LISTEN_BACKLOG = 4096  # capped by the kernel's net.core.somaxconn


async def serve_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    access_log: bool = True,
    ssl_context: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> NoReturn:
    """Serve `app` on host:port (TLS with `ssl_context`) until the calling task is cancelled, then shut it
    down gracefully. With `reuse_port` several processes listen on the same port (SO_REUSEPORT) and the
    kernel spreads new connections over them."""
    runner = web.AppRunner(
        app,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        access_log_class=StructuredAccessLogger,
        shutdown_timeout=_SHUTDOWN_TIMEOUT_SECONDS,
    )
    await runner.setup()
    try:
        # A deep accept queue: after a restart thousands of chargers reconnect at once, and with the default
        # backlog of 128 the kernel drops their SYNs, leaving them to retry with back-off for minutes.
        site = web.TCPSite(
            runner,
            host,
            port,
            ssl_context=ssl_context,
            backlog=_LISTEN_BACKLOG,
            reuse_port=reuse_port or None,
        )
        await site.start()
        scheme = "https" if ssl_context else "http"
        _log.info("listening", extra={"url": f"{scheme}://{host}:{port}"})
        await asyncio.get_running_loop().create_future()  # never resolves: only cancellation ends serving
        raise AssertionError("unreachable")
    finally:
        await runner.cleanup()
