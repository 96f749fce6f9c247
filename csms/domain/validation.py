"""Validation helpers shared by value objects and aggregates, so every rule fails the same way."""

from datetime import datetime
from decimal import Decimal
from typing import TypeVar

from csms.domain.errors import InvalidValue

_T = TypeVar("_T")


def require_aware(value: datetime, name: str) -> datetime:
    """Return `value` if it is a timezone-aware datetime (events store instants, never wall times)."""
    if not isinstance(value, datetime):
        raise InvalidValue(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value


def require_text(value: str, name: str, *, max_length: int) -> str:
    """Return `value` stripped, if it is non-blank and at most `max_length` characters."""
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise InvalidValue(f"{name} must not be blank")
    if len(stripped) > max_length:
        raise InvalidValue(f"{name} must be at most {max_length} characters, got {len(stripped)}")
    return stripped


def require_optional_text(value: str | None, name: str, *, max_length: int) -> str | None:
    """Like `require_text`, but None (and a blank string) mean "not given"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return require_text(value, name, max_length=max_length)


def require_int(value: int, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return `value` if it is an int (not a bool) within the inclusive bounds given."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(f"{name} must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise InvalidValue(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidValue(f"{name} must be at most {maximum}, got {value}")
    return value


def require_decimal(
    value: Decimal,
    name: str,
    *,
    minimum: Decimal | None = None,
    maximum: Decimal | None = None,
) -> Decimal:
    """Return `value` if it is a finite Decimal within the inclusive bounds given.

    Floats are refused: a binary float cannot hold 0.1 exactly, and money or coordinates
    must survive a JSON round trip unchanged.
    """
    if not isinstance(value, Decimal):
        raise InvalidValue(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise InvalidValue(f"{name} must be a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise InvalidValue(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InvalidValue(f"{name} must be at most {maximum}, got {value}")
    return value


def require_instance(value: _T, kind: type[_T], name: str) -> _T:
    """Return `value` if it is a `kind`; events must never carry a look-alike of another type."""
    if not isinstance(value, kind):
        raise InvalidValue(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
    return value
