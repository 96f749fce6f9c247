"""Start `csms serve --role ...` as real processes for end-to-end tests, and stop them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

_START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RoleProcess:
    process: asyncio.subprocess.Process
    log: list[dict[str, object]] = field(default_factory=list)
    _follower: asyncio.Task[None] | None = None
    _followed: list[bytes] = field(default_factory=list)

    def follow_log(self) -> None:
        """Keep reading the process's log into `log` from now on. A chatty process (several workers, many
        chargers) otherwise fills the pipe nobody reads, and blocks on its next log line."""
        if self._follower is None:
            self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self._followed.append(line)
            _append_line(self.log, line)

    async def terminate(self) -> tuple[int, str]:
        """SIGTERM, then the exit code and whatever it logged after."""
        assert self.process.stderr is not None
        self.process.send_signal(signal.SIGTERM)
        if self._follower is not None:
            already = len(self._followed)
            await asyncio.wait_for(asyncio.shield(self._follower), _START_TIMEOUT_SECONDS)
            remaining = b"".join(self._followed[already:])
        else:
            remaining = await asyncio.wait_for(self.process.stderr.read(), _START_TIMEOUT_SECONDS)
        return await asyncio.wait_for(self.process.wait(), _START_TIMEOUT_SECONDS), remaining.decode()


def _append_line(log: list[dict[str, object]], line: bytes) -> None:
    try:
        log.append(json.loads(line))
    except ValueError:  # not one of our log lines (a crash's traceback): keep it for the report
        log.append({"raw": line.decode(errors="replace")})


@contextlib.asynccontextmanager
async def role_process(role: str, *more_roles: str, **environment: str) -> AsyncIterator[RoleProcess]:
    """`csms serve --role ROLE ...` with the given CSMS_* variables, once every role logs that it listens."""
    async with serve_process((role, *more_roles), environment) as running:
        yield running


@contextlib.asynccontextmanager
async def serve_process(
    roles: Sequence[str],
    environment: Mapping[str, str],
    *,
    args: Sequence[str] = (),
    listeners: int | None = None,
) -> AsyncIterator[RoleProcess]:
    """`csms serve --role R ... ARGS` with the given variables, once `listeners` processes or roles (by
    default one per role) have logged that they listen."""
    role = roles[0]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "csms.cli", "serve", *(arg for r in roles for arg in ("--role", r)), *args,
        env={**os.environ, "CSMS_LOG_LEVEL": "INFO", **environment},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    running = RoleProcess(process)
    expected = len(roles) if listeners is None else listeners
    try:
        async with asyncio.timeout(_START_TIMEOUT_SECONDS):
            while sum(entry.get("message") == "listening" for entry in running.log) < expected:
                line = await process.stderr.readline()
                assert line, f"csms serve --role {role} exited early: {running.log}"
                _append_line(running.log, line)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        if running._follower is not None:
            running._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running._follower
