"""`POST /sessions/start` and `POST /sessions/stop`: thin handlers over the session service."""

from __future__ import annotations

from aiohttp import web

from csms.domain import CompanySuspended, ConnectorUnavailable, PaymentMethodRequired, SessionConflict
from csms.web.problems import FieldError, problem, problem_type
from write_api.access import NotFound
from write_api.http.context import ACTOR, SESSIONS
from write_api.http.json_body import Fields, read_json_object
from write_api.http.responses import json_response
from write_api.sessions import ChargerOffline, ChargerTimedOut, SessionAnswer


async def start_session(request: web.Request) -> web.StreamResponse:
    actor = await request.app[ACTOR](request)
    if actor.role != "driver" or actor.driver_id is None:
        return problem(403, "Forbidden", "Only drivers start sessions.", type_=problem_type("forbidden"))
    body = await read_json_object(request)
    fields = Fields(body)
    charger_id = fields.string("chargerId", max_length=48)
    connector_id = optional_positive_int(body, fields, "connectorId")
    fields.check()
    try:
        answer = await request.app[SESSIONS].start(actor.driver_id, charger_id, connector_id)
    except NotFound as error:
        return problem(404, "Unknown charger", str(error), type_=problem_type("not-found"), field="chargerId")
    except (ConnectorUnavailable, SessionConflict, CompanySuspended) as error:
        return problem(
            409, "Connector not available", str(error), type_=problem_type("connector-unavailable")
        )
    except PaymentMethodRequired as error:
        return problem(
            402, "Payment method required", str(error), type_=problem_type("payment-method-required")
        )
    except ChargerOffline as error:
        return problem(503, "Charger offline", str(error), type_=problem_type("charger-offline"))
    except ChargerTimedOut as error:
        return problem(504, "Charger did not answer", str(error), type_=problem_type("charger-timeout"))
    return json_response(_answer(answer), status=201)


async def stop_session(request: web.Request) -> web.StreamResponse:
    actor = await request.app[ACTOR](request)
    fields = Fields(await read_json_object(request))
    session_id = fields.uuid("sessionId")
    fields.check()
    assert session_id is not None
    try:
        answer = await request.app[SESSIONS].stop(session_id, actor)
    except NotFound as error:
        return problem(404, "Unknown session", str(error), type_=problem_type("not-found"), field="sessionId")
    except ChargerOffline as error:
        return problem(503, "Charger offline", str(error), type_=problem_type("charger-offline"))
    except ChargerTimedOut as error:
        return problem(504, "Charger did not answer", str(error), type_=problem_type("charger-timeout"))
    return json_response(_answer(answer))


def _answer(answer: SessionAnswer) -> dict[str, object]:
    body: dict[str, object] = {"sessionId": str(answer.session_id), "status": answer.status.value}
    if answer.position is not None:
        body["position"] = answer.position
    if answer.charger_status is not None:
        body["chargerStatus"] = answer.charger_status
    return body


def optional_positive_int(body: dict[str, object], fields: Fields, name: str) -> int | None:
    """An optional JSON integer >= 1 (booleans are not integers here)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        fields.errors.append(FieldError(name, "must be a positive integer"))
        return None
    return value


def add_session_routes(app: web.Application) -> None:
    app.router.add_post("/sessions/start", start_session)
    app.router.add_post("/sessions/stop", stop_session)
