"""The OCPP versions the gateway speaks, named as WebSocket subprotocols, and choosing one per connection."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence


class ProtocolVersion(enum.StrEnum):
    """An OCPP version, valued as its IANA-registered WebSocket subprotocol name.

    OCPP-J 1.6 §3.1.2 Table 1 and OCPP 2.0.1 Part 4 §3.1.2 Table 1.
    """

    OCPP16 = "ocpp1.6"
    OCPP201 = "ocpp2.0.1"


DEFAULT_PREFERENCE: tuple[ProtocolVersion, ...] = (ProtocolVersion.OCPP201, ProtocolVersion.OCPP16)
"""Newest first: a charger offering both gets 2.0.1."""


def choose_version(
    offered: Iterable[str], preference: Sequence[ProtocolVersion] = DEFAULT_PREFERENCE
) -> ProtocolVersion | None:
    """The first version in `preference` that the charger offered in `Sec-WebSocket-Protocol`, or None.

    The server's preference wins over the order of the client's list (which only states the client's
    preference, OCPP 2.0.1 Part 4 §3.1.3). On None the server must still complete the handshake, without a
    `Sec-WebSocket-Protocol` header, and then close the connection (OCPP 2.0.1 Part 4 §3.2). Names are matched
    exactly, as registered; surrounding whitespace from a hand-split header is ignored.
    """
    names = {name.strip() for name in offered}
    return next((version for version in preference if version.value in names), None)
