"""The write API's dependencies, as typed application keys (built once in the app factory, never globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from write_api.access import Actor
from write_api.charger_admin import ChargerAdmin
from write_api.management import Management
from write_api.ocpp.commands import ChargerCommands
from write_api.sessions import SessionService

ActorResolver = Callable[[web.Request], Awaitable[Actor]]
"""Authenticates a request and says who is acting (401 problem when it cannot)."""

ACTOR: web.AppKey[ActorResolver] = web.AppKey("actor", ActorResolver)  # type: ignore[arg-type]
SESSIONS: web.AppKey[SessionService] = web.AppKey("sessions", SessionService)
MANAGEMENT: web.AppKey[Management] = web.AppKey("management", Management)
CHARGER_ADMIN: web.AppKey[ChargerAdmin] = web.AppKey("charger_admin", ChargerAdmin)
COMMANDS: web.AppKey[ChargerCommands] = web.AppKey("commands", ChargerCommands)
