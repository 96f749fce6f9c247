"""Read API routes (being written)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

PATHS: dict[str, dict[str, Any]] = {}
SCHEMAS: dict[str, dict[str, Any]] = {}


def add_routes(app: web.Application) -> None:
    return None
