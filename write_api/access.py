"""Who is acting, and what they may touch: object-level authorization shared by every write-side service.

An operator acts only on their company's objects, a driver only on their own, an admin on everything. An
object outside the caller's reach is reported just like a missing one (`NotFound`), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


class NotFound(Exception):
    """No such object, or none this caller may see."""


class Forbidden(Exception):
    """The caller's role may not perform this action at all (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated caller, as the write side needs it."""

    role: str  # "driver", "operator" or "admin"
    account_id: UUID | None = None
    driver_id: UUID | None = None
    company_id: UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"a {self.role} may not do this")

    def owns_company_object(self, company_id: UUID) -> bool:
        return self.is_admin or (self.role == "operator" and self.company_id == company_id)

    def company_scope(self, company_id: UUID | None) -> UUID:
        """The company an operator acts for (their own), or the one an admin names."""
        if self.role == "operator" and self.company_id is not None:
            if company_id is not None and company_id != self.company_id:
                raise NotFound(f"no company {company_id}")
            return self.company_id
        if self.is_admin and company_id is not None:
            return company_id
        raise (
            Forbidden("name the company to act for")
            if self.is_admin
            else Forbidden(f"a {self.role} may not do this")
        )
