"""Why a bearer token was refused, in words safe to send back to the caller."""

from __future__ import annotations


class InvalidToken(Exception):
    """A bearer token failed verification; the message is safe to show (it names no key material)."""
