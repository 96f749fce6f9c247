"""The access log of `csms serve`: one line per request, its figures as fields of the JSON line.

aiohttp's own access logger renders an Apache-style format string for every request, its time field through
`strftime` (with the JSON line and its write, 3 % of the write API's CPU under `csms bench lifecycle`, by
py-spy). Our JSON lines carry their own timestamp, so the message here is the request line and its status,
and the rest goes in fields a log query can filter on.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse


class StructuredAccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s",
            request.method,
            request.path_qs,
            response.status,
            extra={
                "remote": request.remote,
                "status": response.status,
                "duration_ms": round(time * 1000, 2),
                "bytes_sent": response.body_length,  # headers included, as aiohttp counts them
                "user_agent": request.headers.get("User-Agent"),
            },
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
