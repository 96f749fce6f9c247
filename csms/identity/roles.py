"""The roles an account or token carries: what its holder may do is decided by role, then by ownership."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    DRIVER = "driver"  # charges and pays; sees only their own sessions
    OPERATOR = "operator"  # works for one company (charge point operator); sees only that company's things
    ADMIN = "admin"  # runs the platform; sees everything
