"""Domain errors: why a command was refused, in words the API can show and map (no HTTP codes)."""

from typing import ClassVar


class DomainError(Exception):
    """A command was refused by a domain rule.

    `code` is a stable, machine-readable name the API layer maps to a response.
    """

    code: ClassVar[str] = "domain_error"


class InvalidValue(DomainError, ValueError):
    """A value does not satisfy its rules (range, length, format, consistency)."""

    code = "invalid_value"


class InvalidState(DomainError):
    """The command is not allowed in the aggregate's current state."""

    code = "invalid_state"


class CompanySuspended(DomainError):
    """The company is suspended, so it may not operate."""

    code = "company_suspended"


class ChargerDecommissioned(InvalidState):
    """The charger was decommissioned and accepts no further commands."""

    code = "charger_decommissioned"


class UnknownConnector(InvalidValue):
    """The charger has no such EVSE or connector."""

    code = "unknown_connector"


class ConnectorUnavailable(DomainError):
    """A session cannot start on this connector now (offline, inoperative, or not free)."""

    code = "connector_unavailable"


class SessionConflict(DomainError):
    """Another session already holds this connector."""

    code = "session_conflict"


class UnknownIdToken(DomainError):
    """The id token is not registered."""

    code = "unknown_id_token"


class IdTokenBlocked(DomainError):
    """The id token is blocked and may not start sessions."""

    code = "id_token_blocked"


class PaymentMethodRequired(DomainError):
    """The driver has no usable payment method."""

    code = "payment_method_required"


class TariffArchived(InvalidState):
    """The tariff was archived: it can no longer be changed or assigned."""

    code = "tariff_archived"
