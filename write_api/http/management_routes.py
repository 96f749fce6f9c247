"""Commands of admins and operators (companies, stations, tariffs, chargers, tokens) and of drivers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import time
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from aiohttp import web

from csms.domain import (
    Address,
    Coordinates,
    Currency,
    DayOfWeek,
    DomainError,
    IdToken,
    IdTokenType,
    OpeningHours,
    PriceComponent,
    RegularHours,
    TariffDimension,
    TariffElement,
    TariffRestrictions,
)
from csms.web.problems import FieldError, problem_error, problem_type
from write_api.access import Actor, Forbidden, NotFound
from write_api.auth.errors import DuplicateEmail, InvalidInput, UnknownCompany
from write_api.auth.routes import AUTH_SERVICE
from write_api.charger_admin import ChargerAdminError, parse_evse
from write_api.http.context import ACTOR, CHARGER_ADMIN, COMMANDS, MANAGEMENT
from write_api.http.json_body import Fields, read_json_object, unprocessable
from write_api.http.responses import json_response
from write_api.management import TokenTaken, Written
from write_api.ocpp.commands import CommandOutcome, CommandStatus

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Callable[[web.Request, Actor], Awaitable[web.StreamResponse]]) -> Handler:
    """Authenticate, run, and turn the services' errors into problems (404 hides other tenants' objects)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        actor = await request.app[ACTOR](request)
        try:
            return await handler(request, actor)
        except NotFound as error:
            raise problem_error(404, "Not found", str(error), type_=problem_type("not-found")) from None
        except Forbidden as error:
            raise problem_error(403, "Forbidden", str(error), type_=problem_type("forbidden")) from None
        except TokenTaken as error:
            raise problem_error(409, "Id token taken", str(error), type_=problem_type("conflict")) from None
        except (DomainError, ChargerAdminError) as error:
            raise problem_error(422, "Not allowed", str(error), type_=problem_type("rule-violated")) from None

    return guarded


def _written(written: Written, name: str, status: int = 200) -> web.Response:
    return json_response({name: str(written.id), "position": written.position}, status=status)


def _uuid_in_path(request: web.Request, name: str) -> UUID:
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise problem_error(404, "Not found", f"no such {name}", type_=problem_type("not-found")) from None


def _optional_uuid(body: dict[str, Any], fields: Fields, name: str) -> UUID | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        return UUID(str(value))
    except ValueError:
        fields.errors.append(FieldError(name, "must be a UUID"))
        return None


# Companies (admin)


async def create_company(request: web.Request, actor: Actor) -> web.StreamResponse:
    fields = Fields(await read_json_object(request))
    name = fields.string("name", max_length=100)
    fields.check()
    return _written(await request.app[MANAGEMENT].create_company(actor, name), "companyId", 201)


async def suspend_company(request: web.Request, actor: Actor) -> web.StreamResponse:
    fields = Fields(await read_json_object(request))
    reason = fields.string("reason", max_length=500)
    fields.check()
    company_id = _uuid_in_path(request, "company_id")
    return _written(await request.app[MANAGEMENT].suspend_company(actor, company_id, reason), "companyId")


async def reactivate_company(request: web.Request, actor: Actor) -> web.StreamResponse:
    company_id = _uuid_in_path(request, "company_id")
    return _written(await request.app[MANAGEMENT].reactivate_company(actor, company_id), "companyId")


async def create_operator(request: web.Request, actor: Actor) -> web.StreamResponse:
    """An operator account for a company (admin): it acts only on that company's objects."""
    actor.require("admin")
    company_id = _uuid_in_path(request, "company_id")
    fields = Fields(await read_json_object(request))
    email = fields.string("email", max_length=254)
    password = fields.string("password", max_length=128)
    fields.check()
    try:
        account = await request.config_dict[AUTH_SERVICE].accounts.create_operator(
            email, password, company_id
        )
    except InvalidInput as error:
        raise unprocessable(list(error.errors)) from None
    except UnknownCompany as error:
        raise NotFound(str(error)) from None
    except DuplicateEmail as error:
        raise problem_error(
            409, "Email taken", str(error), type_=problem_type("conflict"), field="email"
        ) from None
    return json_response({"accountId": str(account.id), "companyId": str(company_id)}, status=201)


# Stations


def _address(body: dict[str, Any], fields: Fields) -> Address | None:
    raw = body.get("address")
    if not isinstance(raw, dict):
        fields.errors.append(FieldError("address", "is required: {street, city, postalCode, country}"))
        return None
    try:
        return Address(
            street=raw.get("street", ""),
            city=raw.get("city", ""),
            postal_code=raw.get("postalCode"),
            country=raw.get("country", ""),
            state=raw.get("state"),
        )
    except DomainError as error:
        fields.errors.append(FieldError("address", str(error)))
        return None


def _coordinates(body: dict[str, Any], fields: Fields) -> Coordinates | None:
    raw = body.get("coordinates")
    if not isinstance(raw, dict):
        fields.errors.append(
            FieldError("coordinates", "is required: {latitude, longitude} as decimal strings")
        )
        return None
    try:
        return Coordinates.parse(str(raw.get("latitude")), str(raw.get("longitude")))
    except DomainError as error:
        fields.errors.append(FieldError("coordinates", str(error)))
        return None


def _opening_hours(body: dict[str, Any], fields: Fields) -> OpeningHours | None:
    """OCPI Hours: `{"twentyfourseven": true}` or `{"regularHours": [{weekday, periodBegin, periodEnd}]}`."""
    raw = body.get("openingHours")
    if raw is None:
        return None
    try:
        if raw.get("twentyfourseven") is True:
            return OpeningHours.always()
        periods = tuple(
            RegularHours(
                int(p["weekday"]), time.fromisoformat(p["periodBegin"]), time.fromisoformat(p["periodEnd"])
            )
            for p in raw["regularHours"]
        )
        return OpeningHours(twentyfourseven=False, regular_hours=periods)
    except (AttributeError, KeyError, TypeError, ValueError, DomainError) as error:
        fields.errors.append(FieldError("openingHours", f"is not OCPI opening hours: {error}"))
        return None


async def create_station(request: web.Request, actor: Actor) -> web.StreamResponse:
    body = await read_json_object(request)
    fields = Fields(body)
    name = fields.string("name", max_length=255)
    time_zone = fields.string("timeZone", max_length=64)
    address = _address(body, fields)
    coordinates = _coordinates(body, fields)
    company_id = _optional_uuid(body, fields, "companyId")
    opening_hours = _opening_hours(body, fields)
    published = body.get("published", False)
    if not isinstance(published, bool):
        fields.errors.append(FieldError("published", "must be true or false"))
    fields.check()
    assert address is not None
    assert coordinates is not None
    written = await request.app[MANAGEMENT].create_station(
        actor, company_id, name, address, coordinates, time_zone, opening_hours, bool(published)
    )
    return _written(written, "stationId", 201)


async def update_station(request: web.Request, actor: Actor) -> web.StreamResponse:
    body = await read_json_object(request)
    fields = Fields(body)
    changes: dict[str, Any] = {"name": None, "address": None, "coordinates": None, "time_zone": None}
    changes["opening_hours"] = None
    if "name" in body:
        changes["name"] = fields.string("name", max_length=255)
    if "timeZone" in body:
        changes["time_zone"] = fields.string("timeZone", max_length=64)
    if "address" in body:
        changes["address"] = _address(body, fields)
    if "coordinates" in body:
        changes["coordinates"] = _coordinates(body, fields)
    if "openingHours" in body:
        changes["opening_hours"] = _opening_hours(body, fields)
    if "published" in body:
        if not isinstance(body["published"], bool):
            fields.errors.append(FieldError("published", "must be true or false"))
        changes["published"] = body["published"]
    if "tariffId" in body:
        changes["tariff_id"] = _optional_uuid(body, fields, "tariffId")
    fields.check()
    station_id = _uuid_in_path(request, "station_id")
    return _written(await request.app[MANAGEMENT].update_station(actor, station_id, changes), "stationId")


# Tariffs


def _decimal(raw: Any, name: str, fields: Fields) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        fields.errors.append(FieldError(name, 'must be a decimal string such as "0.35"'))
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        fields.errors.append(FieldError(name, 'must be a decimal string such as "0.35"'))
        return None


def _elements(body: dict[str, Any], fields: Fields) -> tuple[TariffElement, ...]:
    raw = body.get("elements")
    if not isinstance(raw, list) or not raw:
        fields.errors.append(FieldError("elements", "needs at least one element"))
        return ()
    elements = []
    for index, element in enumerate(raw):
        path = f"elements/{index}"
        try:
            components = tuple(
                PriceComponent(
                    TariffDimension(component["type"]),
                    _decimal(component.get("price"), f"{path}/price", fields) or Decimal(0),
                    int(component.get("stepSize", 1)),
                )
                for component in element.get("priceComponents", ())
            )
            restrictions = _restrictions(element.get("restrictions"))
            elements.append(TariffElement(components, restrictions))
        except (KeyError, TypeError, ValueError, AttributeError, DomainError) as error:
            fields.errors.append(FieldError(path, f"is not a valid tariff element: {error}"))
    return tuple(elements)


def _restrictions(raw: Any) -> TariffRestrictions | None:
    if raw is None:
        return None
    return TariffRestrictions(
        start_time=time.fromisoformat(raw["startTime"]) if raw.get("startTime") else None,
        end_time=time.fromisoformat(raw["endTime"]) if raw.get("endTime") else None,
        day_of_week=tuple(DayOfWeek(day) for day in raw.get("dayOfWeek", ())),
    )


async def create_tariff(request: web.Request, actor: Actor) -> web.StreamResponse:
    body = await read_json_object(request)
    fields = Fields(body)
    name = fields.string("name", max_length=100)
    currency_code = fields.string("currency", max_length=3)
    vat = _decimal(body.get("vatPercent"), "vatPercent", fields)
    grace = body.get("parkingGracePeriodS", 0)
    if isinstance(grace, bool) or not isinstance(grace, int) or grace < 0:
        fields.errors.append(FieldError("parkingGracePeriodS", "must be a non-negative integer"))
    elements = _elements(body, fields)
    company_id = _optional_uuid(body, fields, "companyId")
    currency = None
    if currency_code:
        try:
            currency = Currency(currency_code)
        except ValueError:
            fields.errors.append(FieldError("currency", "is not a supported ISO 4217 currency"))
    fields.check()
    assert currency is not None
    assert vat is not None
    written = await request.app[MANAGEMENT].create_tariff(
        actor, company_id, name, currency, vat, elements, int(grace)
    )
    return _written(written, "tariffId", 201)


# Chargers


async def register_charger(request: web.Request, actor: Actor) -> web.StreamResponse:
    actor.require("operator", "admin")
    body = await read_json_object(request)
    fields = Fields(body)
    charge_point_id = fields.string("chargerId", max_length=48)
    station_id = fields.uuid("stationId")
    company_id = _optional_uuid(body, fields, "companyId")
    specs = body.get("evses")
    if not isinstance(specs, list) or not specs or not all(isinstance(s, str) for s in specs):
        fields.errors.append(FieldError("evses", 'needs EVSE specs such as ["1:IEC_62196_T2_COMBO:150"]'))
        specs = []
    evses = []
    for index, spec in enumerate(specs):
        try:
            evses.append(parse_evse(spec))
        except ChargerAdminError as error:
            fields.errors.append(FieldError(f"evses/{index}", str(error)))
    fields.check()
    assert station_id is not None
    owner = actor.company_scope(company_id)
    registered = await request.app[CHARGER_ADMIN].register(owner, station_id, charge_point_id, tuple(evses))
    return json_response(
        {
            "chargerId": registered.charge_point_id,
            "password": registered.password,
            "position": registered.position,
            "note": "The password is shown only now; it is stored as a hash.",
        },
        status=201,
    )


async def rotate_charger_password(request: web.Request, actor: Actor) -> web.StreamResponse:
    actor.require("operator", "admin")
    charge_point_id = request.match_info["charger_id"]
    await _owned_charger(request, actor, charge_point_id)
    rotated = await request.app[CHARGER_ADMIN].rotate_password(charge_point_id)
    return json_response({"chargerId": charge_point_id, "password": rotated.password})


async def _owned_charger(request: web.Request, actor: Actor, charge_point_id: str) -> None:
    company_id = await request.app[CHARGER_ADMIN].company_of(charge_point_id)
    if company_id is None or not actor.owns_company_object(company_id):
        raise NotFound(f"no charger {charge_point_id}")


async def charger_command(request: web.Request, actor: Actor) -> web.StreamResponse:
    """`POST /chargers/{id}/commands/{command}`: reset, unlock, availability, trigger, clear-cache,
    remote-start (`idToken`, `evseId`), remote-stop (`transactionId`)."""
    actor.require("operator", "admin")
    charge_point_id = request.match_info["charger_id"]
    await _owned_charger(request, actor, charge_point_id)
    body = await read_json_object(request) if request.can_read_body else {}
    commands = request.app[COMMANDS]
    command = request.match_info["command"]
    evse = body.get("evseId")
    if evse is not None and (isinstance(evse, bool) or not isinstance(evse, int) or evse < 1):
        raise unprocessable([FieldError("evseId", "must be a positive integer")])
    if command == "reset":
        outcome = await commands.reset(charge_point_id, hard=body.get("type", "Soft") == "Hard")
    elif command == "unlock":
        outcome = await commands.unlock_connector(charge_point_id, evse or 1)
    elif command == "availability":
        operative = body.get("operative")
        if not isinstance(operative, bool):
            raise unprocessable([FieldError("operative", "must be true or false")])
        outcome = await commands.change_availability(charge_point_id, operative=operative, evse_id=evse)
    elif command == "trigger":
        message = body.get("message")
        if not isinstance(message, str) or not message:
            raise unprocessable(
                [FieldError("message", "names the message to trigger, e.g. StatusNotification")]
            )
        outcome = await commands.trigger_message(charge_point_id, message, evse)
    elif command == "clear-cache":
        outcome = await commands.clear_cache(charge_point_id)
    elif command == "remote-start":
        value = body.get("idToken")
        if not isinstance(value, str) or not value:
            raise unprocessable([FieldError("idToken", "names the token to start for")])
        try:
            token = IdToken(value, IdTokenType.CENTRAL)
        except DomainError as error:
            raise unprocessable([FieldError("idToken", str(error))]) from None
        outcome = await commands.remote_start(charge_point_id, evse or 1, token, remote_start_id=0)
    elif command == "remote-stop":
        transaction_id = body.get("transactionId")
        if not isinstance(transaction_id, str | int) or isinstance(transaction_id, bool):
            raise unprocessable([FieldError("transactionId", "names the charger's transaction")])
        outcome = await commands.remote_stop(charge_point_id, str(transaction_id))
    else:
        raise NotFound(f"no command {command}")
    return _outcome_response(outcome)


def _outcome_response(outcome: CommandOutcome) -> web.Response:
    if outcome.status in (CommandStatus.OFFLINE, CommandStatus.NOT_BOOTED):
        raise problem_error(
            503, "Charger offline", outcome.status.value, type_=problem_type("charger-offline")
        )
    if outcome.status is CommandStatus.TIMED_OUT:
        raise problem_error(504, "Charger did not answer", type_=problem_type("charger-timeout"))
    body: dict[str, Any] = {"status": outcome.status.value, "chargerStatus": outcome.charger_status}
    if outcome.detail:
        body["detail"] = outcome.detail
    return json_response(body)


# Id tokens


async def block_token(request: web.Request, actor: Actor) -> web.StreamResponse:
    body = await read_json_object(request) if request.can_read_body else {}
    reason = str(body.get("reason") or "blocked by the operator")[:500]
    token = request.match_info["token"]
    written = await request.app[MANAGEMENT].set_token_blocked(actor, token, True, reason)
    return _written(written, "driverId")


async def unblock_token(request: web.Request, actor: Actor) -> web.StreamResponse:
    token = request.match_info["token"]
    written = await request.app[MANAGEMENT].set_token_blocked(actor, token, False, "")
    return _written(written, "driverId")


async def add_my_token(request: web.Request, actor: Actor) -> web.StreamResponse:
    actor.require("driver")
    body = await read_json_object(request)
    fields = Fields(body)
    value = fields.string("idToken", max_length=36)
    fields.check()
    try:
        token = IdToken(value, IdTokenType(body.get("type", "RFID")))
    except (ValueError, DomainError) as error:
        raise unprocessable([FieldError("idToken", str(error))]) from None
    assert actor.driver_id is not None
    return _written(
        await request.app[MANAGEMENT].add_id_token(actor, actor.driver_id, token), "driverId", 201
    )


async def update_me(request: web.Request, actor: Actor) -> web.StreamResponse:
    actor.require("driver")
    body = await read_json_object(request)
    email = body.get("email")
    display_name = body.get("displayName")
    errors = [
        FieldError(name, "must be a string")
        for name, value in (("email", email), ("displayName", display_name))
        if value is not None and not isinstance(value, str)
    ]
    if errors:
        raise unprocessable(errors)
    assert actor.driver_id is not None
    written = await request.app[MANAGEMENT].update_profile(actor, actor.driver_id, email, display_name)
    return _written(written, "driverId")


def add_management_routes(app: web.Application) -> None:
    routes = app.router
    routes.add_post("/companies", _guarded(create_company))
    routes.add_post("/companies/{company_id}/suspend", _guarded(suspend_company))
    routes.add_post("/companies/{company_id}/reactivate", _guarded(reactivate_company))
    routes.add_post("/companies/{company_id}/operators", _guarded(create_operator))
    routes.add_post("/stations", _guarded(create_station))
    routes.add_patch("/stations/{station_id}", _guarded(update_station))
    routes.add_post("/tariffs", _guarded(create_tariff))
    routes.add_post("/chargers", _guarded(register_charger))
    routes.add_post("/chargers/{charger_id}/rotate-password", _guarded(rotate_charger_password))
    routes.add_post("/chargers/{charger_id}/commands/{command}", _guarded(charger_command))
    routes.add_post("/id-tokens/{token}/block", _guarded(block_token))
    routes.add_post("/id-tokens/{token}/unblock", _guarded(unblock_token))
    routes.add_post("/me/id-tokens", _guarded(add_my_token))
    routes.add_patch("/me", _guarded(update_me))
