"""The verified caller every API authorizes against, whichever issuer vouched for them."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from csms.identity.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller. What they may touch is then decided by role and ownership (company, driver)."""

    subject: str  # the token's `sub`: our account id, or the external provider's user id
    role: Role
    issuer: str
    company_id: UUID | None = None  # operators: the one company they act for
    driver_id: UUID | None = None  # drivers: their Driver aggregate
    account_id: UUID | None = None  # set for our own accounts only
    token_id: str | None = None
