"""Charger passwords: OCPP-sized, random, and only ever stored as salted hashes."""

from __future__ import annotations

import re

from csms.credentials import hash_charger_password, new_charger_password, verify_charger_password


def test_passwords_are_40_hex_digits_and_unique() -> None:
    passwords = {new_charger_password() for _ in range(100)}
    assert len(passwords) == 100
    assert all(re.fullmatch(r"[0-9a-f]{40}", p) for p in passwords)


def test_hashes_are_salted_and_verify() -> None:
    password = new_charger_password()
    first, second = hash_charger_password(password), hash_charger_password(password)

    assert first != second
    assert password not in first
    assert verify_charger_password(password, first)
    assert verify_charger_password(password, second)
    assert not verify_charger_password(password[:-1] + "x", first)


def test_malformed_stored_hashes_never_verify() -> None:
    for stored in ("", "sha256$", "md5$abc$def", "sha256$!!$??", "plain-text-password"):
        assert not verify_charger_password("plain-text-password", stored)
