"""One call that builds the token verifier, so every API trusts exactly the same issuers."""

from __future__ import annotations

from collections.abc import Sequence

import aiohttp

from csms.identity.external_issuers import ExternalIssuer
from csms.identity.issuers_config import ExternalIssuerConfig
from csms.identity.signing_keys import PublicKeys
from csms.identity.verification import LocalIssuer, TokenVerifier, TrustedIssuer


def build_token_verifier(
    *,
    accept_local_tokens: bool,
    issuer: str,
    audience: str,
    keys: PublicKeys,
    external_issuers: Sequence[ExternalIssuerConfig] = (),
    http: aiohttp.ClientSession | None = None,
    leeway_seconds: float = 30.0,
) -> TokenVerifier:
    """A verifier for our own tokens (`issuer`, `audience`, checked with `keys`) when `accept_local_tokens`,
    and for each external issuer's, whose JWKS is fetched with `http` (the caller's session, which it closes).

    Raises ValueError when external issuers are configured without a session to fetch their keys with.
    """
    if external_issuers and http is None:
        raise ValueError("external issuers need an aiohttp ClientSession to fetch their JWKS")
    issuers: list[TrustedIssuer] = []
    if accept_local_tokens:
        issuers.append(LocalIssuer(keys, issuer=issuer, audience=audience))
    if http is not None:
        issuers.extend(ExternalIssuer(external, http) for external in external_issuers)
    return TokenVerifier(issuers, leeway_seconds=leeway_seconds)
