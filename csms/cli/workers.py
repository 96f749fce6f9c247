"""`csms serve --workers N`: one box, every core. A supervisor runs each role in its own processes.

Python runs one thread of bytecode per process, so a role that should use several cores runs as several
processes. The gateway, the write API and the read API scale that way: N processes each, listening on the
same port with SO_REUSEPORT, so the kernel spreads new connections (chargers, HTTP clients) over them. The
projector and billing run once: each already has one active instance per projection or process manager and
any other instance only stands by.

The supervisor serves nothing itself. It starts the workers (`csms serve --role R --reuse-port`, with the
resolved Postgres and Redis addresses and a metrics directory per role, so `/metrics` on a shared port sums
the role's processes), restarts one that dies with a growing back-off, and on SIGTERM or SIGINT passes the
signal on and waits for every worker to drain (a gateway closes its chargers with going-away and finishes its
in-flight commits) before exiting. A worker that does not stop within the drain bound is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from csms.observability.metrics import MULTIPROCESS_DIRECTORY_VARIABLE

_log = logging.getLogger(__name__)

SCALABLE_ROLES = frozenset({"gateway", "write-api", "read-api"})
"""Roles that run as N processes sharing a port; every other role runs once."""

DRAIN_SECONDS = 30.0
"""How long workers get after SIGTERM: a gateway's drain (10 s), the HTTP shutdown bound (10 s), and slack."""

_PR_SET_PDEATHSIG = 1  # prctl(2)
_FIRST_BACKOFF_SECONDS = 1.0
_MAX_BACKOFF_SECONDS = 30.0
_HEALTHY_AFTER_SECONDS = 60.0
"""A worker that ran this long before dying is restarted at once again, not after the grown back-off."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    role: str
    index: int

    @property
    def name(self) -> str:
        return f"{self.role}#{self.index}"


def plan_workers(role_names: Sequence[str], workers: int) -> list[WorkerSpec]:
    """`workers` processes of each scalable role, one of every other, in the order the roles were given."""
    if workers < 1:
        raise ValueError("workers must be at least 1")
    return [
        WorkerSpec(role, index)
        for role in role_names
        for index in range(workers if role in SCALABLE_ROLES else 1)
    ]


@dataclass(slots=True)
class _Worker:
    spec: WorkerSpec
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    backoff: float = _FIRST_BACKOFF_SECONDS
    restarts: int = 0


class Supervisor:
    """Runs the planned workers until `stop` completes, then drains them."""

    def __init__(
        self,
        plan: Sequence[WorkerSpec],
        environment: Mapping[str, str],
        metrics_directory: Path,
        *,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self._workers = [_Worker(spec) for spec in plan]
        self._environment = dict(environment)
        self._metrics_directory = metrics_directory
        self._drain_seconds = drain_seconds
        self._stopping = False

    async def run(self, stop: Awaitable[None]) -> int:
        """Supervise until `stop` completes; 0 when every worker then exited cleanly, 1 otherwise."""
        for worker in self._workers:
            self._metrics_path(worker.spec.role).mkdir(parents=True, exist_ok=True)
        keepers = [asyncio.create_task(self._keep(worker), name=worker.spec.name) for worker in self._workers]
        try:
            await stop
        finally:
            self._stopping = True
            clean = await self._drain()
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            for worker in self._workers:  # one started while the drain began: not drained, so not kept
                if worker.process is not None and worker.process.returncode is None:
                    worker.process.kill()
                    await worker.process.wait()
        return 0 if clean else 1

    def _metrics_path(self, role: str) -> Path:
        return self._metrics_directory / role

    async def _keep(self, worker: _Worker) -> None:
        """Start the worker, and again whenever it dies, until the supervisor stops."""
        while not self._stopping:
            await self._start(worker)
            assert worker.process is not None
            code = await worker.process.wait()
            mark_process_dead(worker.process.pid, str(self._metrics_path(worker.spec.role)))  # type: ignore[no-untyped-call]
            if self._stopping:
                return
            ran = time.monotonic() - worker.started
            if ran >= _HEALTHY_AFTER_SECONDS:
                worker.backoff = _FIRST_BACKOFF_SECONDS
            _log.error(
                "worker died; restarting it",
                extra={"worker": worker.spec.name, "exit_code": code, "restart_in_seconds": worker.backoff},
            )
            await asyncio.sleep(worker.backoff)
            worker.backoff = min(worker.backoff * 2, _MAX_BACKOFF_SECONDS)
            worker.restarts += 1

    async def _start(self, worker: _Worker) -> None:
        environment = {
            **self._environment,
            MULTIPROCESS_DIRECTORY_VARIABLE: str(self._metrics_path(worker.spec.role)),
        }
        worker.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "csms.cli", "serve", "--role", worker.spec.role, "--reuse-port",
            env=environment, preexec_fn=_stop_with_parent,
        )  # fmt: skip
        worker.started = time.monotonic()
        _log.info("worker started", extra={"worker": worker.spec.name, "pid": worker.process.pid})

    async def _drain(self) -> bool:
        running = [w.process for w in self._workers if w.process is not None and w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waiting = [asyncio.ensure_future(process.wait()) for process in running]
        if waiting:
            _, late = await asyncio.wait(waiting, timeout=self._drain_seconds)
            if late:
                _log.warning("workers did not stop in time; killing them", extra={"workers": len(late)})
                for process in running:
                    if process.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            process.kill()
                await asyncio.wait(waiting)
        # Killed by our SIGTERM before it installed its handler: it was still starting and served nothing.
        clean = (0, -signal.SIGTERM)
        failed = {
            w.spec.name: w.process.returncode
            for w in self._workers
            if w.process is not None and w.process.returncode not in clean
        }
        if failed:
            _log.error("workers exited with errors", extra={"workers": failed})
        return not failed


def _stop_with_parent() -> None:
    """In the worker before it runs: SIGTERM it if the supervisor dies, even by SIGKILL, so no worker
    outlives it holding a shared port (Linux; elsewhere the supervisor's own drain is all there is)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def metrics_directory() -> Iterator[Path]:
    """A fresh directory for the workers' metric files, removed afterwards: files of processes from an
    earlier run would otherwise be summed as if they were still serving."""
    with tempfile.TemporaryDirectory(prefix="csms-metrics-") as temporary:
        yield Path(temporary)
