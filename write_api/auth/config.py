"""The auth service's knobs in one frozen object, with production defaults that meet OWASP's guidance."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from csms.identity.issuers_config import ExternalIssuerConfig


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """argon2id cost. Defaults: OWASP's Password Storage Cheat Sheet minimum (19 MiB, 2 passes, 1 lane)."""

    time_cost: int = 2
    memory_kib: int = 19 * 1024
    parallelism: int = 1

    def meets_owasp_minimum(self) -> bool:
        """True for OWASP's minimum or anything costlier in every dimension (tests use cheaper ones)."""
        return self.memory_kib >= 19 * 1024 and self.time_cost >= 2 and self.parallelism >= 1


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Everything the auth service reads; the composition root fills it from settings."""

    issuer: str = "csms"
    audience: str = "csms-api"
    access_token_ttl_seconds: int = 15 * 60
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    leeway_seconds: float = 30.0
    signing_key_file: Path | None = None
    verification_key_files: tuple[Path, ...] = ()
    data_dir: Path = Path(".data")
    accept_local_tokens: bool = True
    external_issuers: tuple[ExternalIssuerConfig, ...] = ()
    argon2: Argon2Parameters = field(default_factory=Argon2Parameters)
    max_concurrent_hashes: int | None = None  # None: one per CPU
    login_window_seconds: int = 15 * 60
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 20
    redis_key_prefix: str = "csms:"
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("the auth issuer and audience must not be empty")
        issuers = [self.issuer, *(e.issuer for e in self.external_issuers)]
        if len(set(issuers)) != len(issuers):
            raise ValueError("every trusted issuer needs its own `iss` value")
        if not self.accept_local_tokens and not self.external_issuers:
            raise ValueError(
                "no token issuer is trusted: accept local tokens or configure an external issuer"
            )
        for name in ("access_token_ttl_seconds", "refresh_token_ttl_seconds", "login_window_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
