"""Capturing what a test's servers log, as the JSON lines `configure_logging` writes in production."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson

from csms.observability.logging import JsonFormatter


class JsonLog:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self.text.splitlines()]

    def about(self, **fields: Any) -> list[dict[str, Any]]:
        """The lines carrying all of `fields`."""
        return [line for line in self.lines() if all(line.get(k) == v for k, v in fields.items())]


@contextmanager
def json_logs(level: int = logging.DEBUG) -> Iterator[JsonLog]:
    """Every record from `level` up, through our JsonFormatter, for the duration of the block."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield JsonLog(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
