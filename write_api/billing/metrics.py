"""Prometheus metrics of billing: Stripe calls by outcome, payments settled, webhooks, and whether this
instance is the active process manager and how far behind it is (for on-call)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Module-level by Prometheus convention: a metric is registered once per process, whichever role uses it.
STRIPE_REQUESTS = Counter(
    "csms_stripe_requests_total",
    "Stripe API requests by operation and outcome (ok, rate_limited, server_error, network_error, card_error,"
    " client_error, auth_error).",
    ["operation", "outcome"],
)
STRIPE_SECONDS = Histogram(
    "csms_stripe_request_seconds", "Duration of one Stripe API request.", ["operation"]
)
STRIPE_GAVE_UP = Counter(
    "csms_stripe_calls_given_up_total",
    "Stripe calls that failed after every retry (the operation is tried again later).",
    ["operation"],
)
PAYMENTS = Counter(
    "csms_billing_payments_total",
    "Session payments settled by outcome (succeeded, failed, not_required, pending).",
    ["outcome"],
)
BILLING_ERRORS = Counter(
    "csms_billing_errors_total", "Sessions billing could not settle because a domain rule refused it."
)
WEBHOOKS = Counter(
    "csms_stripe_webhooks_total",
    "Stripe webhooks received by outcome (applied, duplicate, ignored, rejected).",
    ["outcome"],
)

# Gauges say how to combine processes when several share a metrics directory (`csms serve --workers N`).
ACTIVE = Gauge(
    "csms_billing_active",
    "1 while this instance is the active billing process manager (holds its lock), 0 on standby.",
    multiprocess_mode="livesum",
)
POSITION = Gauge(
    "csms_billing_position",
    "Log position billing has recorded as settled. It moves only past billing's own events (sessions"
    " priced, payments requested, refunds requested), so it is not the log's head even when nothing waits.",
    multiprocess_mode="livemax",
)
LAG_SECONDS = Gauge(
    "csms_billing_lag_seconds",
    "Age of the oldest event the active instance has taken up and not yet settled (0 when none waits, and on"
    " standby): how long money has been waiting.",
    multiprocess_mode="livemax",
)
