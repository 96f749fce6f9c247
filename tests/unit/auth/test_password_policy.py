"""New passwords: long enough, not too long, not a well-known one, not the email; Unicode normalized."""

from __future__ import annotations

import pytest

from write_api.auth.password_policy import MAX_LENGTH, MIN_LENGTH, normalize_password, password_problem


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "Tr0ub4dor&3-extra", "été à la plage", "x" * (MAX_LENGTH - 1) + "y"],
)
def test_good_passwords_pass(password: str) -> None:
    assert password_problem(password) is None


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12"),
        ("x" * (MIN_LENGTH - 2) + "y", "at least 12"),
        ("ab" * MAX_LENGTH, "at most 128"),
        ("Password1234", "too common"),
        ("QWERTY123456", "too common"),
        ("aaaaaaaaaaaaaaaa", "too common"),
    ],
)
def test_bad_passwords_say_why(password: str, reason: str) -> None:
    problem = password_problem(password)
    assert problem is not None
    assert reason in problem


def test_the_email_is_not_a_password() -> None:
    assert password_problem("Long.Name@Example.com", email="long.name@example.com") is not None


def test_lengths_count_normalized_characters() -> None:
    # "ﬁ" (one ligature character) is "fi" under NFKC: the same password however it was typed.
    assert normalize_password("ﬁ") == "fi"
    assert normalize_password("e\u0301") == "é"
    # Twelve code points typed as letter + combining accent are six characters: too short.
    assert password_problem("e\u0301" * 6) == f"must be at least {MIN_LENGTH} characters"
