"""The notify settings refuse weak secrets in production and keep secrets masked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.notify.settings import NotifySettings

# A key that is random enough for production (64 hex characters); the weak ones are in tests/security.
STRONG_KEY = "5f0c1e9a7b3d2486e1f0a9c8b7d6e5f4031a2b3c4d5e6f708192a3b4c5d6e7f8"


def test_production_refuses_the_development_link_key() -> None:
    with pytest.raises(ValidationError, match="LINK_SIGNING_KEY"):
        NotifySettings(environment="production")


def test_production_refuses_private_webhook_targets() -> None:
    with pytest.raises(ValidationError, match="PRIVATE_WEBHOOK"):
        NotifySettings(
            environment="production",
            link_signing_key=STRONG_KEY,
            smtp_starttls=True,
            allow_private_webhook_targets=True,
        )


def test_https_is_required_outside_development() -> None:
    assert NotifySettings(environment="development").require_https_webhooks is False
    assert (
        NotifySettings(environment="test", link_signing_key=STRONG_KEY, smtp_starttls=True).require_https_webhooks
        is True
    )
    assert (
        NotifySettings(environment="production", link_signing_key=STRONG_KEY, smtp_starttls=True).require_https_webhooks
        is True
    )


def test_secrets_are_masked_when_settings_are_printed() -> None:
    settings = NotifySettings(
        smtp_password="smtp-pass-123",
        link_signing_key="link-key-456",
        bootstrap_admin_token="boot-789",
        console_scoring_key="scoring-read-1",
        console_ingest_key="ingest-read-2",
        database_url="postgresql+psycopg://mews:db-pass-345@db.example.org/notify",
    )
    shown = repr(settings) + str(settings.model_dump()) + settings.model_dump_json()
    for secret in ("smtp-pass-123", "link-key-456", "boot-789", "scoring-read-1", "ingest-read-2", "db-pass-345"):
        assert secret not in shown


def test_the_database_url_is_read_as_a_secret_under_either_name(monkeypatch) -> None:
    url = "postgresql+psycopg://mews:db-pass-345@db.example.org/notify"
    monkeypatch.delenv("MEWS_NOTIFY_DATABASE_URL", raising=False)
    monkeypatch.setenv("MEWS_DATABASE_URL", url)
    with pytest.warns(FutureWarning, match="MEWS_DATABASE_URL is deprecated"):
        assert NotifySettings().database_url.get_secret_value() == url
    monkeypatch.delenv("MEWS_DATABASE_URL")
    monkeypatch.setenv("MEWS_NOTIFY_DATABASE_URL", url)
    assert NotifySettings().database_url.get_secret_value() == url
    assert url not in str(NotifySettings().database_url)


def test_port_comes_from_mews_notify_port(monkeypatch) -> None:
    monkeypatch.setenv("MEWS_NOTIFY_PORT", "9123")
    assert NotifySettings().port == 9123


def test_the_ops_desk_reads_other_services_by_an_http_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="console_scoring_url"):
        NotifySettings(console_scoring_url="file:///etc/passwd")
    monkeypatch.setenv("MEWS_NOTIFY_CONSOLE_INGEST_URL", "http://mews-ingest:8001")
    assert NotifySettings().console_ingest_url == "http://mews-ingest:8001"
