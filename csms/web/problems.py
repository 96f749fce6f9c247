"""RFC 9457 problem details: every error our HTTP APIs answer is `application/problem+json`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from redis.exceptions import RedisError

_log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:csms:problem:"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document, as `problem_body` writes it.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {
                    "field": {"type": "string"},
                    "pointer": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}
"""Our problem types are URNs, `urn:csms:problem:<slug>` (RFC 9457 §3.1.1: a type need not resolve)."""


def problem_type(slug: str) -> str:
    """The type URI of one of our problems, e.g. `problem_type("invalid-credentials")`."""
    return PROBLEM_TYPE_PREFIX + slug


@dataclass(frozen=True, slots=True)
class FieldError:
    """One request field at fault: its name as the client sent it (camelCase) and what is wrong with it."""

    field: str
    detail: str

    def as_member(self) -> dict[str, str]:
        # `pointer` is the JSON Pointer RFC 9457's own example uses; `field` is easier to read in a client.
        return {"field": self.field, "pointer": "#/" + _escape_pointer(self.field), "detail": self.detail}


def problem_body(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    field: str | None = None,
    errors: Iterable[FieldError] = (),
    extensions: Mapping[str, Any] | None = None,
) -> bytes:
    """The JSON document; `field` is shorthand for a single error naming that field with `detail`."""
    document: dict[str, Any] = {"type": type_, "title": title, "status": status}
    if detail is not None:
        document["detail"] = detail
    members = [error.as_member() for error in errors]
    if field is not None:
        members.insert(0, FieldError(field, detail or title).as_member())
    if members:
        document["errors"] = members
    if extensions:
        document.update({k: v for k, v in extensions.items() if k not in document})
    return orjson.dumps(document)


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    field: str | None = None,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> web.Response:
    """A problem response to return from a handler."""
    body = problem_body(status, title, detail, type_=type_, field=field, errors=errors, extensions=extensions)
    return web.Response(status=status, body=body, content_type=PROBLEM_JSON, headers=headers)


def problem_error(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    field: str | None = None,
    errors: Iterable[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> web.HTTPException:
    """The same problem as an exception to raise from helpers deep in a handler (needs no middleware)."""
    body = problem_body(status, title, detail, type_=type_, field=field, errors=errors, extensions=extensions)
    if not 400 <= status <= 599:
        raise ValueError(f"a problem's status is 4xx or 5xx, not {status}")
    error_class = _HTTP_ERRORS.get(status)
    if error_class is None:
        return _StatusError(status, text=body.decode(), content_type=PROBLEM_JSON, headers=headers)
    return error_class(text=body.decode(), content_type=PROBLEM_JSON, headers=headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn aiohttp's plain-text errors (404, 405, 413, ...) and unexpected exceptions into problems.

    Every error is answered with a response returned from here, never the raised exception: aiohttp answers
    with a raised `HTTPException` itself, and keeps it, traceback and all, while the traceback's frames hold
    the request handler that holds it: a reference cycle per error answer. Roles freeze what lives longer
    than a second out of the collector's reach (`csms.observability.gc_pauses`), so on a keep-alive
    connection older than that each cycle stayed for good (measured: about 49 objects per error answer).
    """
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _response(error) if error.content_type == PROBLEM_JSON else _as_problem(error)
    except asyncio.CancelledError:
        raise
    except _UNAVAILABLE as error:
        # Postgres or Redis did not answer: nothing about the request was wrong, and asking again shortly
        # may well work. A 503 says so (with Retry-After) where a 500 would read as a bug.
        _log.error("a dependency failed during %s %s: %s", request.method, request.path, type(error).__name__)
        return problem(
            503,
            "Service Unavailable",
            "A storage service did not answer in time; try again shortly.",
            headers={"Retry-After": "1"},
        )
    except Exception:
        _log.exception("unhandled error in %s %s", request.method, request.path)
        return problem(500, "Internal Server Error", "The server failed to handle the request.")


_UNAVAILABLE = (
    RedisError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    ConnectionError,
)


def _response(error: web.HTTPException) -> web.Response:
    """The answer `error` stands for, as a plain response that holds no traceback."""
    headers = {name: value for name, value in error.headers.items() if name.lower() != "content-length"}
    return web.Response(status=error.status, reason=error.reason, body=error.body, headers=headers)


def _as_problem(error: web.HTTPException) -> web.Response:
    default_text = f"{error.status}: {error.reason}"
    detail = error.text if error.text and error.text != default_text else None
    kept = {
        name: value
        for name, value in error.headers.items()
        if name.lower() not in {"content-type", "content-length"}
    }
    title = error.reason or HTTPStatus(error.status).phrase
    return problem(error.status, title, detail, headers=kept)


def _escape_pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


class _StatusError(web.HTTPError):
    """An error status aiohttp has no plain exception class for (405 and 413 need extra arguments)."""

    def __init__(
        self, status: int, *, text: str, content_type: str, headers: Mapping[str, str] | None
    ) -> None:
        self.status_code = status  # read by HTTPException.__init__
        super().__init__(text=text, content_type=content_type, headers=headers)


def _error_classes() -> dict[int, type[web.HTTPException]]:
    """aiohttp's exception class per status, so `except web.HTTPNotFound` still catches our problems."""
    found: dict[int, type[web.HTTPException]] = {}
    pending: list[type[web.HTTPException]] = [web.HTTPError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        plain = cls.__init__ is web.HTTPException.__init__  # no extra required arguments
        if plain and cls.status_code >= 400 and cls.__module__.startswith("aiohttp."):
            found.setdefault(cls.status_code, cls)
    return found


_HTTP_ERRORS = _error_classes()
