"""The write API's OpenAPI 3.1 document, served at `/openapi.json` and checked against responses in tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from csms.web.problems import PROBLEM_SCHEMA
from csms.web.request_id import document_request_ids
from write_api.http.responses import json_response

_UUID = {"type": "string", "format": "uuid"}
_POSITION = {
    "type": "integer",
    "minimum": 0,
    "description": "Log position of the events written (read-your-writes).",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {"schema": _ref("Problem")}}}


def _written(id_name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [id_name, "position"],
        "properties": {id_name: _UUID, "position": _POSITION},
    }


_ERRORS = {
    "400": _problem("Malformed JSON"),
    "401": _problem("Missing or invalid access token"),
    "403": _problem("The caller's role may not do this"),
    "404": _problem("No such object (or not the caller's)"),
    "415": _problem("The body is not JSON"),
    "422": _problem("A field is missing or invalid, or a business rule refuses it"),
}


def _operation(
    summary: str,
    request: dict[str, Any] | None,
    responses: dict[str, Any],
    *,
    secured: bool = True,
    errors: tuple[str, ...] = ("400", "401", "403", "404", "415", "422"),
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {**responses, **{c: _ERRORS[c] for c in errors}},
    }
    if request is not None:
        operation["requestBody"] = {"required": True, **_json(request)}
    if secured:
        operation["security"] = [{"bearer": []}]
    operation["parameters"] = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "Repeat a POST with the same key and body to get the first answer again.",
        }
    ]
    return operation


def _id_path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


SCHEMAS: dict[str, Any] = {
    "Problem": PROBLEM_SCHEMA,
    "SessionAnswer": {
        "type": "object",
        "required": ["sessionId", "status"],
        "properties": {
            "sessionId": _UUID,
            "status": {
                "enum": [
                    "REQUESTED",
                    "ACCEPTED",
                    "REJECTED",
                    "EXPIRED",
                    "STARTED",
                    "STOPPED",
                    "PRICED",
                    "PAID",
                    "PAYMENT_FAILED",
                ]
            },
            "position": _POSITION,
            "chargerStatus": {"type": "string"},
        },
    },
    "Address": {
        "type": "object",
        "required": ["street", "city", "country"],
        "properties": {
            "street": {"type": "string"},
            "city": {"type": "string"},
            "postalCode": {"type": "string"},
            "country": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "state": {"type": "string"},
        },
    },
    "Coordinates": {
        "type": "object",
        "required": ["latitude", "longitude"],
        "properties": {"latitude": {"type": "string"}, "longitude": {"type": "string"}},
    },
    "CommandOutcome": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["accepted", "rejected", "scheduled", "not_supported"]},
            "chargerStatus": {"type": ["string", "null"]},
            "detail": {"type": "string"},
        },
    },
}

_TOKENS = {
    "type": "object",
    "required": ["accessToken", "refreshToken", "tokenType", "expiresIn"],
    "properties": {
        "accessToken": {"type": "string"},
        "refreshToken": {"type": "string"},
        "tokenType": {"const": "Bearer"},
        "expiresIn": {"type": "integer"},
    },
}
_CREDENTIALS: dict[str, Any] = {
    "type": "object",
    "required": ["email", "password"],
    "properties": {"email": {"type": "string"}, "password": {"type": "string"}},
}

AUTH_PATHS: dict[str, Any] = {
    "/auth/register": {
        "post": _operation(
            "Register as a driver",
            {
                **_CREDENTIALS,
                "required": ["email", "password", "displayName"],
                "properties": {**_CREDENTIALS["properties"], "displayName": {"type": "string"}},
            },
            {
                "201": {
                    "description": "Registered",
                    **_json(
                        {
                            "type": "object",
                            "required": ["accountId", "driverId"],
                            "properties": {"accountId": _UUID, "driverId": _UUID},
                        }
                    ),
                },
                "409": _problem("The email is taken"),
            },
            secured=False,
            errors=("400", "415", "422"),
        )
    },
    "/auth/login": {
        "post": _operation(
            "Log in: an access token (15 min) and a refresh token",
            _CREDENTIALS,
            {
                "200": {"description": "Logged in", **_json(_TOKENS)},
                "401": _problem("Wrong email or password"),
                "429": _problem("Too many failed attempts: see Retry-After"),
            },
            secured=False,
            errors=("400", "415", "422"),
        )
    },
    "/auth/refresh": {
        "post": _operation(
            "Exchange a refresh token for a new pair (the old one stops working)",
            {
                "type": "object",
                "required": ["refreshToken"],
                "properties": {"refreshToken": {"type": "string"}},
            },
            {
                "200": {"description": "Rotated", **_json(_TOKENS)},
                "401": _problem("Invalid or reused refresh token"),
            },
            secured=False,
            errors=("400", "415", "422"),
        )
    },
    "/auth/logout": {
        "post": _operation(
            "Revoke a refresh token (and the tokens it was rotated from)",
            {
                "type": "object",
                "required": ["refreshToken"],
                "properties": {"refreshToken": {"type": "string"}},
            },
            {"204": {"description": "Logged out"}},
            secured=False,
            errors=("400", "415", "422"),
        )
    },
    "/.well-known/jwks.json": {
        "get": {
            "summary": "Public keys verifying our access tokens",
            "responses": {"200": {"description": "JWKS", **_json({"type": "object", "required": ["keys"]})}},
        }
    },
}

PATHS: dict[str, Any] = {
    "/sessions/start": {
        "post": _operation(
            "Start charging (driver): the charger is asked and its answer awaited",
            {
                "type": "object",
                "required": ["chargerId"],
                "properties": {
                    "chargerId": {"type": "string"},
                    "connectorId": {"type": "integer", "minimum": 1},
                },
            },
            {
                "201": {
                    "description": "Session requested; status says what the charger answered",
                    **_json(_ref("SessionAnswer")),
                },
                "402": _problem("A payment method is required"),
                "409": _problem("Connector not available or already in a session"),
                "503": _problem("Charger offline"),
                "504": _problem("Charger did not answer in time"),
            },
        )
    },
    "/sessions/stop": {
        "post": _operation(
            "Stop a session (its driver, the owning operator, or an admin); idempotent",
            {"type": "object", "required": ["sessionId"], "properties": {"sessionId": _UUID}},
            {
                "200": {"description": "Stop sent (or nothing left to stop)", **_json(_ref("SessionAnswer"))},
                "503": _problem("Charger offline"),
                "504": _problem("Charger did not answer in time"),
            },
        )
    },
    "/companies": {
        "post": _operation(
            "Create a company (admin)",
            {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
            {"201": {"description": "Created", **_json(_written("companyId"))}},
        )
    },
    "/companies/{company_id}/suspend": {
        "parameters": [_id_path("company_id")],
        "post": _operation(
            "Suspend a company (admin): its chargers take no new sessions",
            {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}},
            {"200": {"description": "Suspended", **_json(_written("companyId"))}},
        ),
    },
    "/companies/{company_id}/reactivate": {
        "parameters": [_id_path("company_id")],
        "post": _operation(
            "Reactivate a company (admin)",
            None,
            {"200": {"description": "Active", **_json(_written("companyId"))}},
        ),
    },
    "/companies/{company_id}/operators": {
        "parameters": [_id_path("company_id")],
        "post": _operation(
            "Create an operator account for a company (admin)",
            {
                "type": "object",
                "required": ["email", "password"],
                "properties": {"email": {"type": "string"}, "password": {"type": "string"}},
            },
            {
                "201": {
                    "description": "Created",
                    **_json({"type": "object", "required": ["accountId", "companyId"]}),
                },
                "409": _problem("The email is taken"),
            },
        ),
    },
    "/stations": {
        "post": _operation(
            "Create a station (operator: own company; admin: companyId)",
            {
                "type": "object",
                "required": ["name", "address", "coordinates", "timeZone"],
                "properties": {
                    "name": {"type": "string"},
                    "address": _ref("Address"),
                    "coordinates": _ref("Coordinates"),
                    "timeZone": {"type": "string"},
                    "published": {"type": "boolean"},
                    "companyId": _UUID,
                },
            },
            {"201": {"description": "Created", **_json(_written("stationId"))}},
        )
    },
    "/stations/{station_id}": {
        "parameters": [_id_path("station_id")],
        "patch": _operation(
            "Update a station: name, address, coordinates, timeZone, published, tariffId",
            {"type": "object"},
            {"200": {"description": "Updated", **_json(_written("stationId"))}},
        ),
    },
    "/tariffs": {
        "post": _operation(
            "Create a tariff (OCPI-style elements)",
            {
                "type": "object",
                "required": ["name", "currency", "vatPercent", "elements"],
                "properties": {
                    "name": {"type": "string"},
                    "currency": {"type": "string"},
                    "vatPercent": {"type": "string"},
                    "parkingGracePeriodS": {"type": "integer", "minimum": 0},
                    "elements": {"type": "array", "minItems": 1},
                    "companyId": _UUID,
                },
            },
            {"201": {"description": "Created", **_json(_written("tariffId"))}},
        )
    },
    "/chargers": {
        "post": _operation(
            "Register a charger; the response shows its OCPP password once",
            {
                "type": "object",
                "required": ["chargerId", "stationId", "evses"],
                "properties": {
                    "chargerId": {"type": "string"},
                    "stationId": _UUID,
                    "evses": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "companyId": _UUID,
                },
            },
            {
                "201": {
                    "description": "Registered",
                    **_json(
                        {
                            "type": "object",
                            "required": ["chargerId", "password", "position"],
                            "properties": {
                                "chargerId": {"type": "string"},
                                "password": {"type": "string"},
                                "position": _POSITION,
                                "note": {"type": "string"},
                            },
                        }
                    ),
                }
            },
        )
    },
    "/chargers/{charger_id}/rotate-password": {
        "parameters": [_id_path("charger_id")],
        "post": _operation(
            "Give a charger a new OCPP password (shown once)",
            None,
            {
                "200": {
                    "description": "Rotated",
                    **_json({"type": "object", "required": ["chargerId", "password"]}),
                }
            },
        ),
    },
    "/chargers/{charger_id}/commands/{command}": {
        "parameters": [_id_path("charger_id"), _id_path("command")],
        "post": _operation(
            "Command a charger: reset, unlock, availability, trigger, clear-cache, remote-start, remote-stop",
            {"type": "object"},
            {
                "200": {"description": "The charger's answer", **_json(_ref("CommandOutcome"))},
                "503": _problem("Charger offline"),
                "504": _problem("Charger did not answer in time"),
            },
        ),
    },
    "/id-tokens/{token}/block": {
        "parameters": [_id_path("token")],
        "post": _operation(
            "Block an id token (lost card)",
            {"type": "object", "properties": {"reason": {"type": "string"}}},
            {"200": {"description": "Blocked", **_json(_written("driverId"))}},
        ),
    },
    "/id-tokens/{token}/unblock": {
        "parameters": [_id_path("token")],
        "post": _operation(
            "Unblock an id token", None, {"200": {"description": "Unblocked", **_json(_written("driverId"))}}
        ),
    },
    "/me": {
        "patch": _operation(
            "Update my profile (driver)",
            {
                "type": "object",
                "properties": {"email": {"type": "string"}, "displayName": {"type": "string"}},
            },
            {"200": {"description": "Updated", **_json(_written("driverId"))}},
        )
    },
    "/me/id-tokens": {
        "post": _operation(
            "Link an RFID card to my account (driver)",
            {
                "type": "object",
                "required": ["idToken"],
                "properties": {"idToken": {"type": "string"}, "type": {"type": "string"}},
            },
            {
                "201": {"description": "Linked", **_json(_written("driverId"))},
                "409": _problem("The card belongs to another account"),
            },
        )
    },
}


_METHODS = {
    "type": "object",
    "required": ["paymentMethods", "defaultPaymentMethodId"],
    "properties": {
        "paymentMethods": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["paymentMethodId", "brand", "last4", "expMonth", "expYear", "default"],
                "properties": {
                    "paymentMethodId": {"type": "string"},
                    "brand": {"type": "string"},
                    "last4": {"type": "string"},
                    "expMonth": {"type": "integer"},
                    "expYear": {"type": "integer"},
                    "default": {"type": "boolean"},
                },
            },
        },
        "defaultPaymentMethodId": {"type": ["string", "null"]},
        "position": _POSITION,
    },
}
_PAYMENT = {
    "type": "object",
    "required": ["sessionId", "status", "position"],
    "properties": {
        "sessionId": _UUID,
        "status": {"enum": ["PAID", "PROCESSING"]},
        "position": _POSITION,
        "paymentIntentId": {"type": "string"},
    },
}
_REFUND = {
    "type": "object",
    "required": ["sessionId", "status", "amount", "currency", "position"],
    "properties": {
        "sessionId": _UUID,
        "status": {"enum": ["refunded", "failed", "pending"]},
        "amount": {"type": "string"},
        "currency": {"type": "string"},
        "refundId": {"type": "string"},
        "position": _POSITION,
    },
}
_UNAVAILABLE = _problem("Stripe could not be reached (nothing was charged): retry after Retry-After")

PAYMENT_PATHS: dict[str, Any] = {
    "/me/payment-methods": {
        "post": _operation(
            "Save a card (driver): the PaymentMethod id from Stripe's client-side tokenization; it becomes"
            " the default. The first card creates the driver's Stripe customer.",
            {
                "type": "object",
                "required": ["paymentMethodId"],
                "properties": {"paymentMethodId": {"type": "string"}},
            },
            {
                "201": {"description": "Saved", **_json(_METHODS)},
                "402": _problem("The card was declined"),
                "503": _UNAVAILABLE,
            },
        ),
        "get": {
            "summary": "My saved cards (driver)",
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "Cards", **_json(_METHODS)},
                "401": _ERRORS["401"],
                "403": _ERRORS["403"],
            },
        },
    },
    "/me/payment-methods/{payment_method_id}": {
        "parameters": [_id_path("payment_method_id")],
        "delete": {
            "summary": "Remove a card (driver); another saved card becomes the default",
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "Removed", **_json(_METHODS)},
                "401": _ERRORS["401"],
                "403": _ERRORS["403"],
                "404": _ERRORS["404"],
                "503": _UNAVAILABLE,
            },
        },
    },
    "/me/payment-methods/{payment_method_id}/default": {
        "parameters": [_id_path("payment_method_id")],
        "post": _operation(
            "Make a saved card the default (driver)",
            None,
            {"200": {"description": "Done", **_json(_METHODS)}},
        ),
    },
    "/sessions/{session_id}/payments": {
        "parameters": [_id_path("session_id")],
        "post": _operation(
            "Pay a session whose payment failed again (its driver), with a saved card (default if omitted)",
            {"type": "object", "properties": {"paymentMethodId": {"type": "string"}}},
            {
                "200": {"description": "Paid", **_json(_PAYMENT)},
                "202": {"description": "Still processing: look again later", **_json(_PAYMENT)},
                "402": _problem(
                    "Declined, or the bank asks for authentication (`nextAction.clientSecret` confirms it"
                    " in the app with Stripe.js)"
                ),
                "409": _problem("Nothing to pay, or a payment is already in progress"),
            },
        ),
    },
    "/sessions/{session_id}/refunds": {
        "parameters": [_id_path("session_id")],
        "post": _operation(
            "Refund a paid session (its company's operator, or an admin): all that is left, or `amount`",
            {
                "type": "object",
                "properties": {"amount": {"type": "string"}, "reason": {"type": "string"}},
            },
            {
                "200": {"description": "Refunded (or refused by Stripe)", **_json(_REFUND)},
                "202": {"description": "Requested; billing carries it out", **_json(_REFUND)},
                "409": _problem("The session is not paid"),
            },
        ),
    },
    "/webhooks/stripe": {
        "post": {
            "summary": "Stripe webhook endpoint (signed with STRIPE_WEBHOOK_SECRET)",
            "responses": {
                "200": {
                    "description": "Received (applied, duplicate or ignored)",
                    **_json({"type": "object"}),
                },
                "400": _problem("Bad signature, or timestamp outside the tolerance"),
                "503": _problem("Webhooks are not configured"),
            },
        }
    },
}


def document(extra_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The whole document; the auth routes add their paths through `extra_paths`."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "CSMS write API", "version": "1"},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "paths": {**AUTH_PATHS, **PATHS, **PAYMENT_PATHS, **(extra_paths or {})},
    }


def add_openapi_route(app: web.Application, extra_paths: dict[str, Any] | None = None) -> None:
    spec = document_request_ids(document(extra_paths))

    async def openapi(_request: web.Request) -> web.Response:
        return json_response(spec)

    app.router.add_get("/openapi.json", openapi)
