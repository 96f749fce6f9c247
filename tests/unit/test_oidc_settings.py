"""The external OIDC issuer is configured from the environment, all three core settings or none."""

from __future__ import annotations

import pytest

from csms.identity.issuers_config import external_issuers
from csms.identity.roles import Role
from csms.settings import Settings, SettingsError

_OIDC = {
    "CSMS_AUTH_OIDC_ISSUER": "https://sso.example.com/realms/csms",
    "CSMS_AUTH_OIDC_JWKS_URL": "https://sso.example.com/realms/csms/protocol/openid-connect/certs",
    "CSMS_AUTH_OIDC_AUDIENCE": "csms-api",
    "CSMS_AUTH_OIDC_ROLE_CLAIM": "realm_access.roles",
    "CSMS_AUTH_OIDC_ROLE_MAP": "csms-admin=admin, csms-operator=operator",
    "CSMS_AUTH_OIDC_COMPANY_CLAIM": "company_id",
}


def test_a_configured_issuer_is_trusted_with_its_role_mapping() -> None:
    [issuer] = external_issuers(Settings.from_env(_OIDC))
    assert issuer.issuer == _OIDC["CSMS_AUTH_OIDC_ISSUER"]
    assert issuer.role_claim == "realm_access.roles"
    assert dict(issuer.role_map) == {"csms-admin": Role.ADMIN, "csms-operator": Role.OPERATOR}
    assert issuer.company_claim == "company_id"


def test_no_issuer_by_default() -> None:
    assert external_issuers(Settings.from_env({})) == ()


def test_a_partial_configuration_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="CSMS_AUTH_OIDC_ISSUER"):
        Settings.from_env({"CSMS_AUTH_OIDC_ISSUER": "https://sso.example.com"})


def test_a_malformed_role_map_names_itself() -> None:
    with pytest.raises(SettingsError, match="CSMS_AUTH_OIDC_ROLE_MAP"):
        Settings.from_env({**_OIDC, "CSMS_AUTH_OIDC_ROLE_MAP": "csms-admin=superuser"})
