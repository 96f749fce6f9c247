"""Where Stripe is and how we authenticate to it: the real API, or a localstripe server in development."""

from __future__ import annotations

from dataclasses import dataclass

from csms.settings import Settings

STRIPE_API_BASE = "https://api.stripe.com"


@dataclass(frozen=True, slots=True)
class StripeEndpoint:
    """The API base URL and secret key every Stripe call uses, and the secret webhooks are signed with."""

    api_key: str
    api_base: str = STRIPE_API_BASE
    webhook_secret: str | None = None

    def __repr__(self) -> str:  # never print the keys
        return f"StripeEndpoint(api_base={self.api_base!r})"


def configured_endpoint(settings: Settings) -> StripeEndpoint | None:
    """The Stripe configured by STRIPE_API_KEY / CSMS_STRIPE_API_BASE, or None when neither is set."""
    if settings.stripe_api_key is None:
        return None
    return StripeEndpoint(
        api_key=settings.stripe_api_key,
        api_base=(settings.stripe_api_base or STRIPE_API_BASE).rstrip("/"),
        webhook_secret=settings.stripe_webhook_secret,
    )
