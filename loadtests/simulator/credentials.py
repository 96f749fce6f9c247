"""Charger passwords for Basic auth, from a file of `chargerId password` or `chargerId:password` lines."""

from __future__ import annotations

from pathlib import Path


def parse_passwords(text: str) -> dict[str, str]:
    """Charger id → password, in file order. Blank lines and lines starting with # are skipped.

    `SIM-000001:s3cret` splits at the first colon (a Basic-auth user id holds none, a password may);
    `SIM-000001 s3cret` at the first run of whitespace.
    """
    passwords: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":", 1) if ":" in line.split(None, 1)[0] else line.split(None, 1)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"line {number}: expected 'chargerId password' or 'chargerId:password'")
        charger_id, password = parts[0], parts[1].strip()
        if charger_id in passwords:
            raise ValueError(f"line {number}: charger {charger_id} listed twice")
        passwords[charger_id] = password
    return passwords


def load_passwords(path: Path) -> dict[str, str]:
    return parse_passwords(path.read_text(encoding="utf-8"))
