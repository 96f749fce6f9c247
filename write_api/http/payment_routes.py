"""Payments over HTTP: a driver's cards, paying a session again, operators' refunds, and Stripe's webhooks."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from csms.domain import DomainError, Driver, InvalidState, InvalidValue
from csms.web.problems import FieldError, problem, problem_type
from write_api.access import Actor, NotFound
from write_api.billing.payment_methods import CardRefused, PaymentMethods, PaymentsUnavailable
from write_api.billing.session_payments import PaymentAnswer, PaymentInProgress, SessionPayments
from write_api.billing.stripe_gateway import StripeUnavailable
from write_api.billing.webhooks import StripeWebhooks, WebhookRejected
from write_api.http.context import ACTOR
from write_api.http.json_body import Fields, read_json_object
from write_api.http.responses import json_response

PAYMENT_METHODS: web.AppKey[PaymentMethods] = web.AppKey("payment_methods", PaymentMethods)
SESSION_PAYMENTS: web.AppKey[SessionPayments] = web.AppKey("session_payments", SessionPayments)
WEBHOOKS: web.AppKey[StripeWebhooks | None] = web.AppKey("stripe_webhooks", StripeWebhooks)


async def _driver(request: web.Request) -> Actor:
    actor = await request.app[ACTOR](request)
    if actor.role != "driver" or actor.driver_id is None:
        raise _forbidden("Only drivers have payment methods.")
    return actor


def _forbidden(detail: str) -> web.HTTPException:
    return web.HTTPForbidden(
        body=problem(403, "Forbidden", detail, type_=problem_type("forbidden")).body,
        content_type="application/problem+json",
    )


def _methods(driver: Driver, position: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "paymentMethods": [
            {
                "paymentMethodId": m.payment_method_id,
                "brand": m.brand,
                "last4": m.last4,
                "expMonth": m.exp_month,
                "expYear": m.exp_year,
                "default": m.payment_method_id == driver.default_payment_method_id,
            }
            for m in driver.payment_methods
        ],
        "defaultPaymentMethodId": driver.default_payment_method_id,
    }
    if position is not None:
        body["position"] = position
    return body


def _unavailable(error: Exception) -> web.Response:
    return problem(
        503,
        "Payments unavailable",
        f"{error} Nothing was charged; try again shortly.",
        type_=problem_type("payments-unavailable"),
        headers={"Retry-After": "5"},
    )


async def add_payment_method(request: web.Request) -> web.StreamResponse:
    actor = await _driver(request)
    fields = Fields(await read_json_object(request))
    payment_method_id = fields.string("paymentMethodId", max_length=255)
    fields.check()
    assert actor.driver_id is not None
    try:
        driver, position = await request.app[PAYMENT_METHODS].add(actor.driver_id, payment_method_id)
    except CardRefused as error:
        title = "Card declined" if error.status == 402 else "Payment method refused"
        return problem(
            error.status,
            title,
            str(error),
            type_=problem_type("card-declined" if error.status == 402 else "payment-method-refused"),
            field="paymentMethodId",
            extensions={"code": error.code},
        )
    except (StripeUnavailable, PaymentsUnavailable) as error:
        return _unavailable(error)
    return json_response(_methods(driver, position), status=201)


async def list_payment_methods(request: web.Request) -> web.StreamResponse:
    actor = await _driver(request)
    assert actor.driver_id is not None
    try:
        driver = await request.app[PAYMENT_METHODS].list(actor.driver_id)
    except NotFound as error:
        return problem(404, "Unknown driver", str(error), type_=problem_type("not-found"))
    return json_response(_methods(driver))


async def remove_payment_method(request: web.Request) -> web.StreamResponse:
    actor = await _driver(request)
    assert actor.driver_id is not None
    try:
        driver, position = await request.app[PAYMENT_METHODS].remove(
            actor.driver_id, request.match_info["payment_method_id"]
        )
    except NotFound as error:
        return problem(404, "Unknown payment method", str(error), type_=problem_type("not-found"))
    except (StripeUnavailable, PaymentsUnavailable) as error:
        return _unavailable(error)
    return json_response(_methods(driver, position))


async def make_default_payment_method(request: web.Request) -> web.StreamResponse:
    actor = await _driver(request)
    assert actor.driver_id is not None
    try:
        driver, position = await request.app[PAYMENT_METHODS].make_default(
            actor.driver_id, request.match_info["payment_method_id"]
        )
    except NotFound as error:
        return problem(404, "Unknown payment method", str(error), type_=problem_type("not-found"))
    return json_response(_methods(driver, position))


def _session_id(request: web.Request) -> Any:
    fields = Fields({"sessionId": request.match_info["session_id"]})
    session_id = fields.uuid("sessionId")
    fields.check()
    return session_id


def _payment(answer: PaymentAnswer) -> dict[str, Any]:
    body: dict[str, Any] = {
        "sessionId": str(answer.session_id),
        "status": answer.status,
        "position": answer.position,
    }
    if answer.payment_intent_id:
        body["paymentIntentId"] = answer.payment_intent_id
    if answer.failure_code:
        body["failure"] = {"code": answer.failure_code, "message": answer.failure_message or ""}
    if answer.client_secret:
        body["nextAction"] = {"type": "authenticate", "clientSecret": answer.client_secret}
    return body


async def pay_session(request: web.Request) -> web.StreamResponse:
    actor = await request.app[ACTOR](request)
    session_id = _session_id(request)
    body = await read_json_object(request) if request.can_read_body else {}
    fields = Fields(body)
    method = body.get("paymentMethodId")
    if method is not None and not isinstance(method, str):
        fields.errors.append(FieldError("paymentMethodId", "must be a string"))
    fields.check()
    try:
        answer = await request.app[SESSION_PAYMENTS].pay(session_id, actor, method)
    except NotFound as error:
        return problem(404, "Not found", str(error), type_=problem_type("not-found"))
    except PaymentInProgress as error:
        return problem(409, "Payment in progress", str(error), type_=problem_type("payment-in-progress"))
    except InvalidState as error:
        return problem(409, "Nothing to pay", str(error), type_=problem_type("nothing-to-pay"))
    if answer.status == "PAYMENT_FAILED":
        return problem(
            402,
            "Payment failed",
            answer.failure_message or "The payment did not go through.",
            type_=problem_type("payment-failed"),
            extensions={k: v for k, v in _payment(answer).items() if k != "status"},
        )
    return json_response(_payment(answer), status=202 if answer.status == "PROCESSING" else 200)


async def refund_session(request: web.Request) -> web.StreamResponse:
    actor = await request.app[ACTOR](request)
    if actor.role not in ("operator", "admin"):
        raise _forbidden("Only operators and admins refund sessions.")
    session_id = _session_id(request)
    body = await read_json_object(request)
    fields = Fields(body)
    reason = body.get("reason", "refunded by the operator")
    raw_amount = body.get("amount")
    amount: Decimal | None = None
    if not isinstance(reason, str) or not reason.strip():
        fields.errors.append(FieldError("reason", "must be a non-empty string"))
    if raw_amount is not None:
        try:
            amount = Decimal(raw_amount) if isinstance(raw_amount, str) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            fields.errors.append(FieldError("amount", 'must be a decimal string such as "1.50"'))
    fields.check()
    try:
        answer = await request.app[SESSION_PAYMENTS].refund(session_id, actor, amount, str(reason))
    except NotFound as error:
        return problem(404, "Not found", str(error), type_=problem_type("not-found"))
    except InvalidValue as error:
        return problem(422, "Refund refused", str(error), type_=problem_type("invalid"), field="amount")
    except DomainError as error:
        return problem(409, "Refund refused", str(error), type_=problem_type("not-refundable"))
    result = {
        "sessionId": str(answer.session_id),
        "status": answer.status,
        "amount": str(answer.amount.amount),
        "currency": answer.amount.currency.value,
        "position": answer.position,
    }
    if answer.refund_id:
        result["refundId"] = answer.refund_id
    return json_response(result, status=202 if answer.status == "pending" else 200)


async def stripe_webhook(request: web.Request) -> web.StreamResponse:
    webhooks = request.app[WEBHOOKS]
    if webhooks is None:
        return problem(503, "Webhooks not configured", "STRIPE_WEBHOOK_SECRET is not set.")
    payload = await request.read()  # the signature covers the exact bytes, so never re-serialise
    try:
        outcome = await webhooks.receive(payload, request.headers.get("Stripe-Signature", ""))
    except WebhookRejected as error:
        return problem(400, "Webhook rejected", str(error), type_=problem_type("webhook-rejected"))
    return json_response({"received": True, "outcome": outcome})


def add_payment_routes(
    app: web.Application,
    payment_methods: PaymentMethods,
    session_payments: SessionPayments,
    webhooks: StripeWebhooks | None,
) -> None:
    app[PAYMENT_METHODS] = payment_methods
    app[SESSION_PAYMENTS] = session_payments
    app[WEBHOOKS] = webhooks
    app.router.add_post("/me/payment-methods", add_payment_method)
    app.router.add_get("/me/payment-methods", list_payment_methods)
    app.router.add_delete("/me/payment-methods/{payment_method_id}", remove_payment_method)
    app.router.add_post("/me/payment-methods/{payment_method_id}/default", make_default_payment_method)
    app.router.add_post("/sessions/{session_id}/payments", pay_session)
    app.router.add_post("/sessions/{session_id}/refunds", refund_session)
    app.router.add_post("/webhooks/stripe", stripe_webhook)
