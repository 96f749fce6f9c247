"""A misconfigured key or URL stops start-up by name without printing the secret it holds."""

from __future__ import annotations

import pytest

from csms.settings import Settings, SettingsError


def test_a_rejected_stripe_key_is_not_shown() -> None:
    with pytest.raises(SettingsError, match="STRIPE_API_KEY") as rejected:
        Settings.from_env({"STRIPE_API_KEY": "pk_live_0123456789secret"})
    assert "0123456789secret" not in str(rejected.value)


def test_a_rejected_url_is_shown_without_its_password() -> None:
    with pytest.raises(SettingsError, match="CSMS_DATABASE_URL") as rejected:
        Settings.from_env({"CSMS_DATABASE_URL": "mysql://csms:hunter2-secret@db:5432/csms"})
    assert "hunter2-secret" not in str(rejected.value)
    assert "mysql://csms:***@db:5432/csms" in str(rejected.value)


def test_the_settings_repr_holds_no_key_secret_or_connection_password() -> None:
    settings = Settings(
        database_url="postgresql://csms:pg-secret@db/csms",
        redis_url="redis://:redis-secret@cache:6379/0",
        stripe_api_key="sk_test_key-secret",
        stripe_webhook_secret="whsec_hook-secret",
    )
    assert "secret" not in repr(settings)
