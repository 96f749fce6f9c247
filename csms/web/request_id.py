"""Request ids: every HTTP request gets one, carried by its log lines as `correlation_id` and echoed to the
client in `X-Request-ID`, so a client's report and a proxy's log lead to our lines about that request.

A client (or a proxy in front of us) may send its own id; one that is too long or has characters that could
forge log content or headers is replaced by a fresh one rather than trusted.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from csms.observability.logging import bind_log_fields

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
# UUIDs, ULIDs, hex and base64 ids, W3C trace ids; nothing that could break a log line or a header.
_PATTERN = rf"^[A-Za-z0-9._:+=/-]{{1,{MAX_REQUEST_ID_LENGTH}}}$"
_WELL_FORMED = re.compile(_PATTERN)

# The id of the request the current task serves: aiohttp runs every request in a task of its own, so this
# lives exactly as long as the request, up to and including its access log line.
_request_id: ContextVar[str | None] = ContextVar("csms_request_id", default=None)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_for(supplied: str | None) -> str:
    """The client's id if it is well formed, else a new one."""
    if supplied is not None and _WELL_FORMED.fullmatch(supplied):
        return supplied
    return str(uuid.uuid4())


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bind the request's id to every line logged while it is served. Outermost, so that every other
    middleware's lines (an unhandled error, the access log) carry it too."""
    request_id = request_id_for(request.headers.get(REQUEST_ID_HEADER))
    _request_id.set(request_id)
    # Bound for the rest of this request's task rather than inside a block: the access log line is written
    # after the middlewares have returned.
    bind_log_fields(correlation_id=request_id)
    return await handler(request)


async def echo_request_id(_request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the id in every response's headers, problems and streams included (a stream's
    headers go out from inside its handler, before the middleware sees the response)."""
    request_id = _request_id.get()
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id


REQUEST_ID_PARAMETER: dict[str, Any] = {
    "name": REQUEST_ID_HEADER,
    "in": "header",
    "required": False,
    "description": "An id for this request, echoed in the response and written to our logs with every line "
    "about the request (as `correlation_id`). Up to 128 letters, digits and `._:+=/-`; anything else is "
    "replaced by a generated id.",
    "schema": {"type": "string", "maxLength": MAX_REQUEST_ID_LENGTH, "pattern": _PATTERN},
}
REQUEST_ID_RESPONSE_HEADER: dict[str, Any] = {
    "description": "The request's id: the client's `X-Request-ID` if well formed, else a generated one.",
    "schema": {"type": "string"},
}


def document_request_ids(document: Mapping[str, Any]) -> dict[str, Any]:
    """`document` (an OpenAPI 3.1 document) with the `X-Request-ID` header on every operation and response."""
    parameter = {"$ref": "#/components/parameters/RequestId"}
    header = {"$ref": "#/components/headers/RequestId"}
    paths: dict[str, Any] = {}
    for template, path_item in document.get("paths", {}).items():
        paths[template] = {}
        for method, operation in path_item.items():
            if not isinstance(operation, Mapping) or "responses" not in operation:
                paths[template][method] = operation  # path-level parameters, summary
                continue
            responses = {
                status: {**response, "headers": {**response.get("headers", {}), REQUEST_ID_HEADER: header}}
                for status, response in operation["responses"].items()
            }
            parameters = [*operation.get("parameters", []), parameter]
            paths[template][method] = {**operation, "parameters": parameters, "responses": responses}
    components = dict(document.get("components", {}))
    components["parameters"] = {**components.get("parameters", {}), "RequestId": REQUEST_ID_PARAMETER}
    components["headers"] = {**components.get("headers", {}), "RequestId": REQUEST_ID_RESPONSE_HEADER}
    return {**document, "paths": paths, "components": components}
