"""Id tokens: what identifies a driver to a charger (an RFID card, the app, a contract id)."""

from dataclasses import dataclass
from enum import StrEnum

from csms.domain.errors import InvalidValue


class IdTokenType(StrEnum):
    """How the token was presented (OCPP 2.0.1 IdTokenEnumType, plus OCPI's RFID and APP)."""

    RFID = "RFID"
    APP = "APP"
    EMAID = "EMAID"
    ISO14443 = "ISO14443"
    ISO15693 = "ISO15693"
    CENTRAL = "CENTRAL"
    KEY_CODE = "KEY_CODE"
    LOCAL = "LOCAL"
    MAC_ADDRESS = "MAC_ADDRESS"
    NO_AUTHORIZATION = "NO_AUTHORIZATION"


@dataclass(frozen=True)
class IdToken:
    """A token value and its type.

    Values are 1..36 printable ASCII characters (OCPP 2.0.1 IdToken is 36; 1.6 idTag is 20).
    OCPP compares them case-insensitively (1.6 idTag is a CiString), hence `key`.
    """

    value: str
    type: IdTokenType

    def __post_init__(self) -> None:
        if not isinstance(self.value, str) or not 1 <= len(self.value) <= 36:
            raise InvalidValue(f"id token value must be 1..36 characters, got {self.value!r}")
        if not all("\x21" <= char <= "\x7e" for char in self.value):
            raise InvalidValue(f"id token value must be printable ASCII without spaces: {self.value!r}")
        if not isinstance(self.type, IdTokenType):
            raise InvalidValue(f"id token type must be an IdTokenType, got {self.type!r}")

    @property
    def key(self) -> str:
        """The value as tokens are compared: case-insensitively."""
        return token_key(self.value)


def token_key(value: str) -> str:
    """The comparison key of a token value as a charger sends it."""
    return value.upper()
