"""The write side's `Actor` for the caller a bearer token names: the write API's `ActorResolver`."""

from __future__ import annotations

from aiohttp import web

from csms.web.bearer import authenticate
from write_api.access import Actor


async def authenticated_actor(request: web.Request) -> Actor:
    """The write side's `Actor` for the caller: an `ActorResolver` for `write_api.http.context.ACTOR`."""
    principal = await authenticate(request)
    return Actor(
        role=principal.role.value,
        account_id=principal.account_id,
        driver_id=principal.driver_id,
        company_id=principal.company_id,
    )
