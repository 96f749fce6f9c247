"""Where a charger's connectivity lives in Redis: written by the gateway holding its socket, read by anyone.

The layout is shared by the writer (write_api/ocpp/presence.py, which documents the hash's fields) and the
readers (the read API's operator views), which may not import each other.
"""

from __future__ import annotations


def presence_key(key_prefix: str, charge_point_id: str) -> str:
    """The presence hash of one charger."""
    return f"{key_prefix}presence:{charge_point_id}"
