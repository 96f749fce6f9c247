"""What a new password must be (NIST SP 800-63B): long enough, not absurdly long, not a well-known one."""

from __future__ import annotations

import unicodedata

MIN_LENGTH = 12
MAX_LENGTH = 128  # also bounds the work an attacker can make us hash per request

# The commonest passwords of 12 characters or more in public breach corpora; the length rule catches the rest
# of the short classics ("123456", "password"). A tiny list on purpose: a breach-corpus check is a follow-up.
_COMMON = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789123",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "abc123abc123",
        "abcdefghijkl",
        "administrator",
        "baseball1234",
        "changeme1234",
        "charging1234",
        "chargepoint1",
        "football1234",
        "iloveyou1234",
        "letmein12345",
        "monkey123456",
        "p@ssw0rd1234",
        "p@ssword1234",
        "passw0rd1234",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "princess1234",
        "qwerty123456",
        "qwertyuiop12",
        "qwertyuiopas",
        "qwertyuiop[]",
        "starwars1234",
        "sunshine1234",
        "superman1234",
        "trustno1trustno1",
        "welcome12345",
        "zaq12wsxcde3",
    }
)


def normalize_password(password: str) -> str:
    """NFKC, as NIST SP 800-63B advises, so the same password typed on two keyboards hashes the same."""
    return unicodedata.normalize("NFKC", password)


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why `password` may not be chosen, or None when it may."""
    normalized = normalize_password(password)
    if len(normalized) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(normalized) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    folded = normalized.casefold()
    if folded in _COMMON or len(set(folded)) == 1:
        return "is too common; choose a less predictable password"
    if email is not None and folded == email.strip().casefold():
        return "must not be the email address"
    return None
