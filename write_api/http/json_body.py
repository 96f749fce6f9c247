"""Reading a JSON request body field by field, so every bad request names the field at fault."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from aiohttp import web

from csms.web.problems import FieldError, problem_error, problem_type


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object: 415 unless it is declared JSON, 400 unless it parses to an object.

    Requiring a JSON content type also keeps cross-site HTML forms (which cannot send one) out.
    """
    content_type = request.content_type
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise problem_error(
            415,
            "Unsupported Media Type",
            "The request body must be JSON (Content-Type: application/json).",
            type_=problem_type("unsupported-media-type"),
        )
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise problem_error(
            400,
            "Malformed JSON",
            f"The request body is not valid JSON: {error}",
            type_=problem_type("malformed-json"),
        ) from None
    if not isinstance(body, dict):
        raise problem_error(
            400,
            "Malformed JSON",
            "The request body must be a JSON object.",
            type_=problem_type("malformed-json"),
        )
    return body


class Fields:
    """Typed reads of a JSON object's members that collect every error, then raise one 422 naming them all."""

    def __init__(self, body: dict[str, Any]) -> None:
        self._body = body
        self.errors: list[FieldError] = []

    def string(self, name: str, *, max_length: int | None = None) -> str:
        """A required non-empty string (returned unchanged, not stripped); "" after recording an error."""
        value = self._body.get(name)
        if value is None:
            self.errors.append(FieldError(name, "is required"))
            return ""
        if not isinstance(value, str):
            self.errors.append(FieldError(name, "must be a string"))
            return ""
        if not value:
            self.errors.append(FieldError(name, "must not be empty"))
            return ""
        if max_length is not None and len(value) > max_length:
            self.errors.append(FieldError(name, f"must be at most {max_length} characters"))
            return ""
        return value

    def uuid(self, name: str) -> UUID | None:
        """A required UUID in its canonical text form; None after recording an error."""
        text = self.string(name, max_length=36)
        if not text:
            return None
        try:
            return UUID(text)
        except ValueError:
            self.errors.append(FieldError(name, "must be a UUID"))
            return None

    def check(self) -> None:
        """Raise a 422 problem listing every field at fault, if any."""
        if self.errors:
            raise unprocessable(self.errors)


def unprocessable(errors: list[FieldError]) -> web.HTTPException:
    """422 with `errors`: the request parsed, but these fields are missing or invalid."""
    detail = "; ".join(f"{error.field} {error.detail}" for error in errors)
    return problem_error(
        422, "Invalid request", detail, type_=problem_type("validation-failed"), errors=errors
    )
