"""Charger passwords (OCPP Basic auth): generated with full entropy, stored only as salted hashes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# OCPP 1.6 security whitepaper, A00.FR.205 / AuthorizationKey: at least 16 bytes, randomly generated binary,
# "hexadecimal represented (20 bytes maximum, represented as a string of up to 40 hexadecimal digits)".
PASSWORD_BYTES = 20
_SCHEME = "sha256"


def new_charger_password() -> str:
    """A fresh charger password: 20 random bytes as 40 hex digits (the most OCPP allows)."""
    return secrets.token_hex(PASSWORD_BYTES)


def hash_charger_password(password: str) -> str:
    """`sha256$<salt>$<digest>`: a salted SHA-256, on purpose not a slow password hash.

    Slow hashes (argon2, bcrypt) protect low-entropy human passwords from guessing. A 160-bit random
    secret cannot be guessed, so one SHA-256 is as safe here and lets 10,000 chargers reconnecting
    at once authenticate in milliseconds instead of minutes of CPU.
    """
    salt = secrets.token_bytes(16)
    digest = hashlib.sha256(salt + password.encode()).digest()
    return f"{_SCHEME}${_b64(salt)}${_b64(digest)}"


def verify_charger_password(password: str, stored_hash: str) -> bool:
    """True when `password` matches `stored_hash`; constant time in the digest comparison."""
    try:
        scheme, salt, digest = stored_hash.split("$")
        if scheme != _SCHEME:
            return False
        expected = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
        actual = hashlib.sha256(base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4)) + password.encode())
    except ValueError:
        return False
    return hmac.compare_digest(actual.digest(), expected)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
