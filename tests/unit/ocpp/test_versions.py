"""Subprotocol negotiation: the gateway picks the version, or says it speaks none of those offered."""

from __future__ import annotations

import pytest

from write_api.ocpp.versions import ProtocolVersion, choose_version


def test_versions_are_named_as_their_websocket_subprotocols() -> None:
    assert ProtocolVersion("ocpp1.6") is ProtocolVersion.OCPP16
    assert ProtocolVersion("ocpp2.0.1") is ProtocolVersion.OCPP201


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6"], ProtocolVersion.OCPP16),
        (["ocpp2.0.1"], ProtocolVersion.OCPP201),
        # OCPP 2.0.1 Part 4 §3.1.3: the charger lists its preference first, but the server decides.
        (["ocpp1.6", "ocpp2.0.1"], ProtocolVersion.OCPP201),
        (["ocpp2.0.1", "ocpp1.6"], ProtocolVersion.OCPP201),
        # OCPP-J 1.6 §3.1.3's example header, split on commas.
        (["ocpp1.6", " ocpp1.5"], ProtocolVersion.OCPP16),
        (["ocpp1.5", "ocpp2.0"], None),
        ([], None),
        (["OCPP1.6"], None),
    ],
)
def test_the_default_preference_is_the_newest_offered_version(
    offered: list[str], chosen: ProtocolVersion | None
) -> None:
    assert choose_version(offered) is chosen


def test_the_preference_is_configurable() -> None:
    offered = ("ocpp2.0.1", "ocpp1.6")
    assert (
        choose_version(offered, [ProtocolVersion.OCPP16, ProtocolVersion.OCPP201]) is ProtocolVersion.OCPP16
    )
    assert choose_version(offered, [ProtocolVersion.OCPP16]) is ProtocolVersion.OCPP16
    assert choose_version(["ocpp2.0.1"], [ProtocolVersion.OCPP16]) is None
