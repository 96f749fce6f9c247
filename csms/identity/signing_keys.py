"""The Ed25519 keys our access tokens are signed with, and the JWKS document publishing their public halves.

In production the signing key is a PEM file (PKCS#8 Ed25519 private key) named by configuration; previous
keys' public PEMs can be listed too, so tokens they signed stay valid through a rotation. With no file
configured, development gets a key generated once and kept in `<data dir>/auth/signing-key.pem` (mode 0600),
so tokens survive restarts; a warning is logged, because a production deployment must not rely on it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWK

_log = logging.getLogger(__name__)

ALGORITHM = "EdDSA"
DEV_KEY_PATH = Path("auth") / "signing-key.pem"


class PublicKeys(Protocol):
    """What verifying our own tokens needs: the public key a `kid` names. `SigningKeys` is one."""

    def public_jwk(self, kid: str) -> PyJWK | None: ...


@dataclass(frozen=True, slots=True)
class VerificationKey:
    kid: str
    public_key: Ed25519PublicKey

    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 8037), with the fields clients select keys by."""
        return {**_public_members(self.public_key), "kid": self.kid, "alg": ALGORITHM, "use": "sig"}


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """The key that signs new tokens, and every public key whose tokens we still accept (its own first)."""

    private_key: Ed25519PrivateKey
    kid: str
    verification: tuple[VerificationKey, ...]

    @classmethod
    def of(cls, private_key: Ed25519PrivateKey, previous: Sequence[Ed25519PublicKey] = ()) -> SigningKeys:
        current = VerificationKey(key_id(private_key.public_key()), private_key.public_key())
        others = [VerificationKey(key_id(k), k) for k in previous]
        unique = {key.kid: key for key in [current, *others]}
        return cls(private_key, current.kid, tuple(unique.values()))

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document (RFC 7517): public keys only, never `d`."""
        return {"keys": [key.jwk() for key in self.verification]}

    def public_jwk(self, kid: str) -> PyJWK | None:
        """The verification key with this kid, bound to EdDSA (so a token cannot pick another algorithm)."""
        for key in self.verification:
            if key.kid == kid:
                return PyJWK(key.jwk(), algorithm=ALGORITHM)
        return None


def key_id(public_key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint: stable for a key, different for every other, nothing to configure."""
    canonical = json.dumps(_public_members(public_key), separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(canonical.encode()).digest())


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_signing_keys(
    signing_key_file: Path | None, data_dir: Path, verification_key_files: Sequence[Path] = ()
) -> SigningKeys:
    """Read the configured key files, or the development key (generated on first use) when none is set.

    Raises ValueError naming the file when one is unreadable or not an Ed25519 key.
    """
    if signing_key_file is not None:
        private_key = _read_private_key(signing_key_file)
    else:
        private_key = _development_key(data_dir / DEV_KEY_PATH)
    previous = [_read_public_key(path) for path in verification_key_files]
    return SigningKeys.of(private_key, previous)


def _development_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return _read_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = private_key_pem(generate_signing_key())
    # Written to a temporary file and hard-linked into place: the link fails if another process got there
    # first, and then everyone uses the winner's key.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        try:
            os.link(temporary, path)
            _log.warning(
                "generated a development signing key for access tokens; configure a key file in production",
                extra={"path": str(path)},
            )
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)
    return _read_private_key(path)


def _read_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key: Any = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"cannot read the signing key {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"the signing key {path} is not an Ed25519 private key")
    return key


def _read_public_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
        key: Any = (
            serialization.load_pem_private_key(data, password=None).public_key()
            if b"PRIVATE KEY" in data
            else serialization.load_pem_public_key(data)
        )
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"cannot read the verification key {path}: {error}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the verification key {path} is not an Ed25519 key")
    return key


def _public_members(public_key: Ed25519PublicKey) -> dict[str, str]:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
