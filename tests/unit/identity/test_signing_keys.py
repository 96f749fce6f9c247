"""Signing keys: RFC 7638 key ids, a JWKS of public halves only, a development key kept across restarts."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key

from csms.identity.signing_keys import (
    DEV_KEY_PATH,
    SigningKeys,
    generate_signing_key,
    key_id,
    load_signing_keys,
    private_key_pem,
)


def test_the_key_id_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037 appendix A.2 / A.3: the example Ed25519 public key and its thumbprint.
    x = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    assert key_id(Ed25519PublicKey.from_public_bytes(x)) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_the_jwks_holds_public_keys_only() -> None:
    previous = generate_signing_key().public_key()
    keys = SigningKeys.of(generate_signing_key(), [previous])

    document = keys.jwks()

    assert [key["kid"] for key in document["keys"]] == [keys.kid, key_id(previous)]
    for key in document["keys"]:
        assert set(key) == {"kty", "crv", "x", "kid", "alg", "use"}
    assert keys.public_jwk(keys.kid) is not None
    assert keys.public_jwk("unknown") is None


def test_the_development_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_signing_keys(None, tmp_path)
    second = load_signing_keys(None, tmp_path)

    assert first.kid == second.kid
    mode = stat.S_IMODE(os.stat(tmp_path / DEV_KEY_PATH).st_mode)
    assert mode == 0o600
    assert list((tmp_path / DEV_KEY_PATH).parent.iterdir()) == [tmp_path / DEV_KEY_PATH]


def test_a_configured_key_file_and_previous_public_keys(tmp_path: Path) -> None:
    current, previous = generate_signing_key(), generate_signing_key()
    (tmp_path / "current.pem").write_bytes(private_key_pem(current))
    (tmp_path / "previous.pem").write_bytes(
        previous.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )

    keys = load_signing_keys(tmp_path / "current.pem", tmp_path / "unused", [tmp_path / "previous.pem"])

    assert keys.kid == key_id(current.public_key())
    assert [key.kid for key in keys.verification] == [keys.kid, key_id(previous.public_key())]
    assert not (tmp_path / "unused").exists()


def test_a_key_file_that_is_not_ed25519_is_refused_by_name(tmp_path: Path) -> None:
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "rsa.pem"
    path.write_bytes(
        rsa.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    with pytest.raises(ValueError, match=r"rsa\.pem is not an Ed25519"):
        load_signing_keys(path, tmp_path)
    with pytest.raises(ValueError, match="cannot read the signing key"):
        load_signing_keys(tmp_path / "missing.pem", tmp_path)
