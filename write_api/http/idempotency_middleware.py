"""`Idempotency-Key` on POST: a retry with the same key and body gets the first answer, another body a 422."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from csms.web.problems import problem, problem_type
from write_api.http.context import ACTOR
from write_api.idempotency import Claim, IdempotencyKeys, StoredAnswer, request_hash

_log = logging.getLogger(__name__)
_MAX_KEY_LENGTH = 255
_KEPT_HEADERS = ("Content-Type", "Retry-After", "Location")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def idempotency_middleware(keys: IdempotencyKeys) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or key is None:
            return await handler(request)
        if not 0 < len(key) <= _MAX_KEY_LENGTH:
            return problem(
                400,
                "Invalid Idempotency-Key",
                f"must be 1..{_MAX_KEY_LENGTH} characters",
                field="Idempotency-Key",
            )
        caller = await _caller(request)
        fingerprint = request_hash(request.method, request.path_qs, await request.read())
        claim, stored = await keys.claim(caller, key, fingerprint)
        if claim is Claim.REPLAY:
            assert stored is not None
            return web.Response(
                status=stored.status,
                body=stored.body,
                headers={**stored.headers, "Idempotent-Replayed": "true"},
            )
        if claim is Claim.MISMATCH:
            return problem(
                422,
                "Idempotency-Key reused",
                "This key was used for a different request; use a new key for a new request.",
                type_=problem_type("idempotency-key-reused"),
                field="Idempotency-Key",
            )
        if claim is Claim.IN_PROGRESS:
            return problem(
                409,
                "Request in progress",
                "The first request with this key is still being handled; retry shortly.",
                type_=problem_type("idempotency-in-progress"),
                headers={"Retry-After": "1"},
            )
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = error
        except BaseException:
            # Nothing was answered: let the client retry with the same key.
            await asyncio.shield(keys.release(caller, key))
            raise
        if isinstance(response, web.Response) and response.body is not None and response.status < 500:
            body = response.body if isinstance(response.body, bytes) else bytes(response.text or "", "utf-8")
            headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
            await keys.complete(caller, key, StoredAnswer(response.status, headers, body))
        else:
            await keys.release(caller, key)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return middleware


async def _caller(request: web.Request) -> str:
    """Whose key this is: the authenticated account, or the client address for anonymous calls."""
    try:
        actor = await request.app[ACTOR](request)
    except web.HTTPException:
        return f"address:{request.remote}"
    return f"account:{actor.account_id or actor.driver_id or actor.role}"
