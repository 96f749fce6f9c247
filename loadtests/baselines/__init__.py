"""Baselines measured beside the CSMS in the same benchmark run: the `ocpp` library alone, and the ceiling."""

from __future__ import annotations

from typing import Protocol


class RunningServer(Protocol):
    """What a baseline's `serve(host, port)` returns: the port it listens on (see port 0) and close()."""

    @property
    def port(self) -> int: ...

    async def close(self) -> None: ...
