"""The notify settings refuse weak secrets in production and keep secrets masked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notify.settings import NotifySettings


def test_production_refuses_the_development_link_key() -> None:
    with pytest.raises(ValidationError, match="LINK_SIGNING_KEY"):
        NotifySettings(environment="production")


def test_production_refuses_private_webhook_targets() -> None:
    with pytest.raises(ValidationError, match="PRIVATE_WEBHOOK"):
        NotifySettings(environment="production", link_signing_key="k" * 40, allow_private_webhook_targets=True)


def test_https_is_required_outside_development() -> None:
    assert NotifySettings(environment="development").require_https_webhooks is False
    assert NotifySettings(environment="test").require_https_webhooks is True
    assert NotifySettings(environment="production", link_signing_key="k" * 40).require_https_webhooks is True


def test_secrets_are_masked_when_settings_are_printed() -> None:
    settings = NotifySettings(smtp_password="smtp-pass-123", link_signing_key="link-key-456",
                              bootstrap_admin_token="boot-789")
    shown = repr(settings) + str(settings.model_dump())
    for secret in ("smtp-pass-123", "link-key-456", "boot-789"):
        assert secret not in shown


def test_port_comes_from_mews_notify_port(monkeypatch) -> None:
    monkeypatch.setenv("MEWS_NOTIFY_PORT", "9123")
    assert NotifySettings().port == 9123
