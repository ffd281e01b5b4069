"""Production (and test) refuse what is weak, in every service; development, as `make run` starts it, starts."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from deploy.local.stack import Ports, Stack
from services.ingest.settings import IngestSettings
from services.notify.settings import DEVELOPMENT_LINK_KEY, NotifySettings
from services.scoring.settings import ScoringSettings
from shared.secrets import DEMO_ADMIN_TOKEN, DEMO_INGEST_KEY, DEMO_READ_KEY, estimated_bits, weakness

from .apps import digest

STRONG = secrets.token_hex(32)
HARDENED = ["production", "test"]


def notify(**fields: object) -> NotifySettings:
    return NotifySettings(**({"link_signing_key": STRONG, "smtp_starttls": True} | fields))


@pytest.mark.parametrize("environment", HARDENED)
def test_ingest_refuses_the_demo_key(environment: str) -> None:
    with pytest.raises(ValidationError, match="MEWS_INGEST_API_KEYS holds a demo key"):
        IngestSettings(environment=environment, api_keys=f"{digest(DEMO_INGEST_KEY)}:ingest")
    IngestSettings(environment=environment, api_keys=f"{digest(STRONG)}:ingest")


@pytest.mark.parametrize("environment", HARDENED)
def test_scoring_refuses_the_demo_read_key(environment: str) -> None:
    with pytest.raises(ValidationError, match="MEWS_SCORING_API_KEYS holds a demo key"):
        ScoringSettings(environment=environment, api_keys=f"{digest(DEMO_READ_KEY)}:government")
    ScoringSettings(environment=environment, api_keys=f"{digest(STRONG)}:government")


@pytest.mark.parametrize("environment", HARDENED)
@pytest.mark.parametrize("weak", ["a" * 32, "ab" * 20, "k" * 64, "short-but-random-Xq9", DEVELOPMENT_LINK_KEY])
def test_notify_refuses_a_weak_link_signing_key(environment: str, weak: str) -> None:
    with pytest.raises(ValidationError, match="MEWS_NOTIFY_LINK_SIGNING_KEY"):
        notify(environment=environment, link_signing_key=weak)


@pytest.mark.parametrize("weak", ["a" * 32, DEMO_ADMIN_TOKEN, "0123456789"])
def test_notify_refuses_a_weak_bootstrap_token(weak: str) -> None:
    with pytest.raises(ValidationError, match="MEWS_NOTIFY_BOOTSTRAP_ADMIN_TOKEN"):
        notify(environment="production", bootstrap_admin_token=weak)
    notify(environment="production", bootstrap_admin_token=secrets.token_urlsafe(32))


def test_notify_refuses_smtp_without_tls_unless_plaintext_is_allowed() -> None:
    with pytest.raises(ValidationError, match="MEWS_NOTIFY_SMTP_STARTTLS"):
        notify(environment="production", smtp_starttls=False)
    assert notify(environment="production", smtp_starttls=False, smtp_allow_plaintext=True).smtp_starttls is False
    assert NotifySettings(environment="development").smtp_starttls is False  # a laptop's local SMTP sink


def test_the_test_environment_refuses_what_production_refuses() -> None:
    # An ack of another organisation's alert was forged with the public development key under `test`.
    with pytest.raises(ValidationError, match="MEWS_NOTIFY_LINK_SIGNING_KEY"):
        NotifySettings(environment="test", smtp_starttls=True)
    with pytest.raises(ValidationError, match="PRIVATE_WEBHOOK"):
        notify(environment="test", allow_private_webhook_targets=True)


@pytest.mark.parametrize("settings_class", [IngestSettings, ScoringSettings, NotifySettings])
@pytest.mark.parametrize("environment", ["prod", "staging", "Production", ""])
def test_every_service_refuses_an_unknown_environment(settings_class, environment: str) -> None:
    with pytest.raises(ValidationError, match="environment"):
        settings_class(environment=environment)


@pytest.mark.parametrize("settings_class", [IngestSettings, ScoringSettings])
def test_a_weak_metrics_token_is_refused(settings_class) -> None:
    with pytest.raises(ValidationError, match="MEWS_METRICS_TOKEN"):
        settings_class(environment="production", metrics_token="metrics")
    settings_class(environment="production", metrics_token=STRONG)


def test_refusals_name_the_setting_never_the_secret() -> None:
    weak = "w" * 40
    with pytest.raises(ValidationError) as refused:
        notify(environment="production", link_signing_key=weak)
    assert "MEWS_NOTIFY_LINK_SIGNING_KEY" in str(refused.value)
    assert weak not in str(refused.value)


def test_random_secrets_pass_and_uniform_ones_do_not() -> None:
    assert weakness(secrets.token_hex(32)) is None
    assert weakness(secrets.token_urlsafe(32)) is None
    assert estimated_bits("a" * 32) == 0
    assert estimated_bits("ab" * 16) == pytest.approx(32.0)  # one bit per character, by hand
    assert weakness("a" * 31) == "is shorter than 32 characters"


def test_make_run_environment_still_starts_every_service(monkeypatch, tmp_path) -> None:
    for name, value in Stack(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:9092", ports=Ports()).service_env().items():
        if name.startswith(("MEWS_", "KAFKA_")):
            monkeypatch.setenv(name, value)
    assert IngestSettings().environment == "development"
    assert len(IngestSettings().static_keys()) == 1
    assert ScoringSettings().read_keys
    assert NotifySettings().allow_private_webhook_targets is True
