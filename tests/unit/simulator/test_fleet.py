"""Who charges in a fleet, how chargers are named, and the simulate command's interface."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from loadtests.simulator.cli import simulate
from loadtests.simulator.config import ChargerConfig
from loadtests.simulator.fleet import Fleet, charger_ids, charges


@given(st.integers(min_value=0, max_value=2000), st.floats(min_value=0.0, max_value=1.0))
def test_the_charging_share_is_exact_and_spread_out(count: int, share: float) -> None:
    chosen = [index for index in range(count) if charges(index, share)]
    assert len(chosen) == int(count * share)
    if len(chosen) >= 2 and share > 0:
        gaps = [b - a for a, b in itertools.pairwise(chosen)]
        assert max(gaps) <= 1 / share + 1


def test_charger_ids_are_padded_and_unique() -> None:
    assert charger_ids("SIM-", 3) == ["SIM-000001", "SIM-000002", "SIM-000003"]
    assert charger_ids("X", 1_234_567)[-1] == "X1234567"


def test_a_fleet_gives_each_charger_its_password() -> None:
    fleet = Fleet(["A", "B"], ChargerConfig(), passwords={"A": "pa"}, charging_share=0.5)
    assert [c._password for c in fleet.chargers] == ["pa", None]
    assert [c.charges for c in fleet.chargers] == [False, True]
    with pytest.raises(ValueError, match="charging_share"):
        Fleet(["A"], ChargerConfig(), charging_share=1.5)


def test_simulate_offers_the_documented_options() -> None:
    result = CliRunner().invoke(simulate, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--url",
        "--failover-url",
        "--chargers",
        "--ocpp",
        "--meter-interval",
        "--heartbeat",
        "--password-file",
        "--id-prefix",
        "--charging-share",
        "--duration",
        "--json",
    ):
        assert option in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [("SIM-1\n", "line 1"), ("SIM-1 a\n", "fewer than --chargers 2")],
)
def test_simulate_rejects_a_bad_password_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "passwords.txt"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(simulate, ["--chargers", "2", "--password-file", str(path)])
    assert result.exit_code == 2
    assert message in result.output
