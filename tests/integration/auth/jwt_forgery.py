"""Building JWTs by hand, so tests can forge what no JWT library would sign."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assemble(header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """`header.claims.signature`, the signature computed by `sign` over the first two parts."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"
