"""The read API's OpenAPI 3.1 document: building blocks for the route modules' fragments, and the assembly.

Each route module describes its own paths and schemas next to its handlers (`PATHS`, `SCHEMAS`); the app
merges them here and serves the result at `/openapi.json`. Tests check every response against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from csms.web.problems import PROBLEM_SCHEMA

UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid"}
OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict)

MIN_POSITION_PARAMETER: dict[str, Any] = {
    "name": "minPosition",
    "in": "query",
    "required": False,
    "description": "Wait (briefly) until the read model includes this log position (read-your-writes).",
    "schema": {"type": "integer", "minimum": 0},
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: Mapping[str, Any], media_type: str = "application/json") -> dict[str, Any]:
    return {"content": {media_type: {"schema": dict(schema)}}}


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, **json_content(ref("Problem"), "application/problem+json")}


def path_parameter(name: str, schema: Mapping[str, Any] = UUID_SCHEMA) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": dict(schema)}


def query_parameter(name: str, schema: Mapping[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": dict(schema),
    }


def operation(
    summary: str,
    responses: Mapping[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    secured: bool = True,
    errors: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One operation; `errors` maps status to description of each problem it may answer."""
    problems = {"400": "Invalid query parameter"}
    if secured:
        problems["401"] = "Missing or invalid access token"
    problems |= dict(errors or {})
    document: dict[str, Any] = {
        "summary": summary,
        "responses": {**responses, **{code: problem_response(text) for code, text in problems.items()}},
    }
    if parameters:
        document["parameters"] = parameters
    document["security"] = [{"bearer": []}] if secured else []
    return document


def build_document(
    paths: Mapping[str, Mapping[str, Any]], schemas: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CSMS read API",
            "version": "1",
            "description": "Queries served from projections of the event log: station discovery, live "
            "sessions, history and receipts, operator views. Pass `minPosition` (from a write API "
            "response) to read your own writes; the `CSMS-Position` header says which log position an "
            "answer reflects.",
        },
        "paths": dict(paths),
        "components": {
            "schemas": {"Problem": PROBLEM_SCHEMA, **schemas},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_DOCUMENT])
