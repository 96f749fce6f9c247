"""Mapping an external provider's claims onto our roles: Keycloak's nested roles, Cognito's groups."""

from __future__ import annotations

import uuid

import pytest

from csms.identity.external_issuers import claim_value, external_driver_id, map_role
from csms.identity.issuers_config import ExternalIssuerConfig
from csms.identity.roles import Role
from write_api.auth.config import AuthConfig

ROLE_MAP = {"admins": Role.ADMIN, "operators": Role.OPERATOR, "drivers": Role.DRIVER}


def test_claims_are_found_by_name_first_then_by_dotted_path() -> None:
    claims = {
        "cognito:groups": ["drivers"],
        "realm_access": {"roles": ["operators"]},
        "https://example.com/roles": ["admins"],
    }

    assert claim_value(claims, "cognito:groups") == ["drivers"]
    assert claim_value(claims, "realm_access.roles") == ["operators"]
    assert claim_value(claims, "https://example.com/roles") == ["admins"]
    assert claim_value(claims, "realm_access.missing") is None
    assert claim_value(claims, "nothing") is None


@pytest.mark.parametrize(
    ("value", "role"),
    [
        (["drivers"], Role.DRIVER),
        (["drivers", "admins"], Role.ADMIN),
        (["operators", "drivers"], Role.OPERATOR),
        ("drivers operators", Role.OPERATOR),
        ("admins", Role.ADMIN),
        (["offline_access"], None),
        ([], None),
        (None, None),
        ({"admins": True}, None),
        ([1, "drivers"], Role.DRIVER),
    ],
)
def test_roles_map_with_the_most_capable_winning(value: object, role: Role | None) -> None:
    assert map_role(value, ROLE_MAP) is role


def test_an_external_driver_id_is_stable_per_issuer_and_subject() -> None:
    first = external_driver_id("https://idp.example", "user-1")

    assert first == external_driver_id("https://idp.example", "user-1")
    assert first != external_driver_id("https://idp.example", "user-2")
    assert first != external_driver_id("https://other.example", "user-1")
    assert isinstance(first, uuid.UUID)


@pytest.mark.parametrize("algorithms", [("none",), ("HS256",), ("RS256", "HS512"), ()])
def test_an_external_issuer_never_accepts_none_or_hmac(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="algorithm"):
        ExternalIssuerConfig(
            issuer="https://idp.example",
            jwks_url="https://idp.example/jwks",
            audience="csms-api",
            role_map=ROLE_MAP,
            algorithms=algorithms,
        )


def test_issuers_are_distinct_and_one_is_trusted() -> None:
    external = ExternalIssuerConfig(
        issuer="csms", jwks_url="https://idp.example/jwks", audience="csms-api", role_map=ROLE_MAP
    )
    with pytest.raises(ValueError, match="own `iss`"):
        AuthConfig(external_issuers=(external,))
    with pytest.raises(ValueError, match="no token issuer"):
        AuthConfig(accept_local_tokens=False)
