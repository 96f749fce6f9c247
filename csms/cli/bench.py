"""`csms bench NAME`: benchmarks, found in `loadtests/` and imported only when run.

A module `loadtests/bench_<name>.py` exposing a click command `<name>` becomes `csms bench <name>` with no
change here. Its context object is a mapping with `settings`, `database_url` and `redis_url` (the configured
servers, or embedded ones started for the run).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from collections.abc import Iterator, Mapping

import click

from csms.cli.runtime import run
from csms.connectivity import wait_for_servers
from csms.embedded import resolve_servers
from csms.observability.logging import configure_logging
from csms.settings import Settings

_PACKAGE = "loadtests"
_PREFIX = "bench_"


def _benchmark_modules() -> dict[str, str]:
    """Command name -> module name, found without importing any benchmark (or, if absent, anything)."""
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.submodule_search_locations is None:
        return {}
    return {
        module.name.removeprefix(_PREFIX).replace("_", "-"): f"{_PACKAGE}.{module.name}"
        for module in pkgutil.iter_modules(spec.submodule_search_locations)
        if module.name.startswith(_PREFIX)
    }


class _BenchmarkGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_benchmark_modules()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        module_name = _benchmark_modules().get(cmd_name)
        if module_name is None:
            return None
        module = importlib.import_module(module_name)
        found = getattr(module, cmd_name.replace("-", "_"), None)
        if not isinstance(found, click.Command):
            raise click.ClickException(
                f"{module_name} has no click command named {cmd_name.replace('-', '_')}"
            )
        return found


class _RunContext(Mapping[str, object]):
    """A benchmark's context object: `settings`, and the `database_url` and `redis_url` of the configured
    servers, or of embedded ones started on first use (so `csms bench NAME --help` starts nothing)."""

    def __init__(self, ctx: click.Context, settings: Settings) -> None:
        self._ctx = ctx
        self._values: dict[str, object] = {"settings": settings}

    def _resolve(self) -> None:
        settings = self._values["settings"]
        assert isinstance(settings, Settings)
        servers = self._ctx.with_resource(resolve_servers(settings))
        run(
            wait_for_servers(
                database_url=servers.database_url,
                redis_url=servers.redis_url,
                retry_seconds=settings.startup_retry_seconds,
            )
        )
        self._values.update(database_url=servers.database_url, redis_url=servers.redis_url)

    def __getitem__(self, key: str) -> object:
        if key in _SERVER_KEYS and key not in self._values:
            self._resolve()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("settings", *_SERVER_KEYS))

    def __len__(self) -> int:
        return 1 + len(_SERVER_KEYS)


_SERVER_KEYS = ("database_url", "redis_url")


@click.group(cls=_BenchmarkGroup)
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Benchmarks: our figures beside baselines measured in the same run (see docs/benchmarks.md)."""
    settings: Settings = ctx.obj
    configure_logging(settings.log_level)
    ctx.obj = _RunContext(ctx, settings)
