"""Which external OIDC providers we trust and how their claims map onto our roles, checked at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from csms.identity.roles import Role
from csms.settings import Settings

# RFC 8725 §3.1: each issuer gets an explicit list; never "none", never a symmetric (HS*) algorithm,
# which would let anyone holding the published public key mint tokens.
EXTERNAL_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)


@dataclass(frozen=True, slots=True)
class ExternalIssuerConfig:
    """An OIDC provider (Cognito, Keycloak, ...) whose access tokens we accept beside or instead of ours.

    `role_claim` names the claim holding the user's groups or roles: a top-level name first (`cognito:groups`,
    `https://example.com/roles`), else a dotted path (`realm_access.roles` for Keycloak). `role_map` maps its
    values to our roles; a token with no mapped value is refused. Operators also need `company_claim`.
    """

    issuer: str
    jwks_url: str
    audience: str
    role_map: Mapping[str, Role]
    algorithms: tuple[str, ...] = ("RS256",)
    role_claim: str = "roles"
    company_claim: str | None = None
    jwks_cache_seconds: float = 300.0
    jwks_min_refresh_seconds: float = (
        30.0  # a token with an unknown kid refetches the JWKS at most this often
    )
    http_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("an external issuer needs both an issuer and an audience")
        if not self.jwks_url.startswith(("https://", "http://")):
            raise ValueError(f"JWKS URL must be http(s): {self.jwks_url!r}")
        if not self.algorithms:
            raise ValueError("an external issuer needs at least one algorithm")
        refused = set(self.algorithms) - EXTERNAL_ALGORITHMS
        if refused:
            raise ValueError(f"algorithms not allowed for an external issuer: {sorted(refused)}")


def external_issuers(settings: Settings) -> tuple[ExternalIssuerConfig, ...]:
    """The external issuer the settings configure (`CSMS_AUTH_OIDC_*`), or none."""
    if not (settings.auth_oidc_issuer and settings.auth_oidc_jwks_url and settings.auth_oidc_audience):
        return ()
    role_map = {
        name.strip(): Role(role.strip())
        for name, _, role in (pair.partition("=") for pair in settings.auth_oidc_role_map.split(",") if pair)
    }
    return (
        ExternalIssuerConfig(
            issuer=settings.auth_oidc_issuer,
            jwks_url=settings.auth_oidc_jwks_url,
            audience=settings.auth_oidc_audience,
            role_map=role_map,
            role_claim=settings.auth_oidc_role_claim,
            company_claim=settings.auth_oidc_company_claim,
        ),
    )
