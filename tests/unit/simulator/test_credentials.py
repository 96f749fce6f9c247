"""Password files: `id password` and `id:password` lines; comments, blank lines skipped; mistakes reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtests.simulator.credentials import load_passwords, parse_passwords


def test_both_line_forms_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "passwords.txt"
    path.write_text(
        "# fleet\n\nSIM-000002 first-secret\nSIM-000001:pass:with:colons\n  SIM-000003\tspaced  \n",
        encoding="utf-8",
    )
    assert list(load_passwords(path).items()) == [
        ("SIM-000002", "first-secret"),
        ("SIM-000001", "pass:with:colons"),
        ("SIM-000003", "spaced"),
    ]


def test_a_colon_line_keeps_spaces_in_the_password() -> None:
    assert parse_passwords("SIM-1:two words") == {"SIM-1": "two words"}


@pytest.mark.parametrize("text", ["SIM-1", "SIM-1:", ":secret", "SIM-1 a\nSIM-1 b"])
def test_malformed_lines_are_reported_with_their_number(text: str) -> None:
    with pytest.raises(ValueError, match=r"line \d"):
        parse_passwords(text)
