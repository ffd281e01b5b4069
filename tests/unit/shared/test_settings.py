"""One naming scheme: MEWS_<SERVICE>_<NAME> for a service's own settings, MEWS_<NAME> for the shared ones."""

from __future__ import annotations

import typing
import warnings

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr, ValidationError

from services.ingest.settings import IngestSettings
from services.notify.settings import NotifySettings
from services.scoring.settings import ScoringSettings
from shared.settings import CommonSettings

SERVICES = {"INGEST": IngestSettings, "SCORING": ScoringSettings, "NOTIFY": NotifySettings}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MEWS_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("service", "settings_class", "field", "value", "expected"),
    [
        ("INGEST", IngestSettings, "max_batch", "17", 17),
        ("SCORING", ScoringSettings, "batch_max_inputs", "17", 17),
        ("NOTIFY", NotifySettings, "smtp_host", "mail.example.org", "mail.example.org"),
    ],
)
def test_a_service_reads_its_own_settings_under_its_prefix(
    monkeypatch, service, settings_class, field, value, expected
) -> None:
    monkeypatch.setenv(f"MEWS_{service}_{field.upper()}", value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the current name warns of nothing
        assert getattr(settings_class(), field) == expected


@pytest.mark.parametrize("settings_class", SERVICES.values())
def test_the_shared_settings_keep_one_name_in_every_service(monkeypatch, settings_class) -> None:
    monkeypatch.setenv("MEWS_TOPIC_NAMESPACE", "ns1")
    monkeypatch.setenv("MEWS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = settings_class()
    assert (settings.topic_namespace, settings.log_level, settings.kafka_bootstrap_servers) == (
        "ns1",
        "DEBUG",
        "127.0.0.1:1",
    )


def test_a_setting_under_another_services_prefix_is_not_read(monkeypatch) -> None:
    monkeypatch.setenv("MEWS_SCORING_PORT", "9001")
    monkeypatch.setenv("MEWS_NOTIFY_TOPIC_NAMESPACE", "not-shared")
    assert IngestSettings().port == 8001
    assert NotifySettings().topic_namespace == ""


def test_notifys_old_names_are_read_with_one_warning_each_naming_the_new_variable(monkeypatch) -> None:
    monkeypatch.setenv("MEWS_SMTP_HOST", "old-relay.example.org")
    monkeypatch.setenv("MEWS_GROUP_WAIT_SECONDS", "45")
    monkeypatch.setenv("MEWS_INHIBIT_RULES", "[]")  # a JSON value decodes as under its new name
    with pytest.warns(FutureWarning) as caught:
        settings = NotifySettings()
    assert (settings.smtp_host, settings.group_wait_seconds, settings.inhibit_rules) == (
        "old-relay.example.org",
        45.0,
        (),
    )
    assert sorted(str(w.message) for w in caught) == [
        f"MEWS_{name} is deprecated and read for this release only: set MEWS_NOTIFY_{name} instead"
        for name in ("GROUP_WAIT_SECONDS", "INHIBIT_RULES", "SMTP_HOST")
    ]
    assert (
        REGISTRY.get_sample_value(
            "mews_settings_deprecated_variable", {"variable": "MEWS_SMTP_HOST", "replacement": "MEWS_NOTIFY_SMTP_HOST"}
        )
        == 1
    )


def test_the_new_name_wins_over_the_old_one(monkeypatch) -> None:
    monkeypatch.setenv("MEWS_NOTIFY_SMTP_HOST", "new-relay.example.org")
    monkeypatch.setenv("MEWS_SMTP_HOST", "old-relay.example.org")
    with pytest.warns(FutureWarning, match="MEWS_SMTP_HOST is deprecated"):
        assert NotifySettings().smtp_host == "new-relay.example.org"


def test_an_old_name_is_validated_like_the_new_one(monkeypatch) -> None:
    monkeypatch.setenv("MEWS_SMTP_PORT", "not-a-port")
    with pytest.warns(FutureWarning), pytest.raises(ValidationError, match="smtp_port"):
        NotifySettings()


def test_no_shared_or_other_name_passes_for_a_deprecated_one(monkeypatch) -> None:
    # MEWS_HOST and MEWS_PORT were never notify's (it read MEWS_NOTIFY_HOST/PORT); the shared ones stay current.
    monkeypatch.setenv("MEWS_HOST", "0.0.0.0")
    monkeypatch.setenv("MEWS_PORT", "1")
    monkeypatch.setenv("MEWS_ENVIRONMENT", "development")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        settings = NotifySettings()
    assert (settings.host, settings.port) == ("127.0.0.1", 8003)


@pytest.mark.parametrize(
    ("variable", "value", "field", "seconds"),
    [
        ("MEWS_NOTIFY_GROUP_WAIT_SECONDS", "2m", "group_wait_seconds", 120.0),
        ("MEWS_NOTIFY_ACK_LINK_TTL_SECONDS", "7d", "ack_link_ttl_seconds", 7 * 86400),
        ("MEWS_SCORING_COMMIT_INTERVAL_SECONDS", "500", "commit_interval_seconds", 500.0),
        ("MEWS_AUTH_FAILURE_WINDOW_SECONDS", "1.5m", "auth_failure_window_seconds", 90.0),
    ],
)
def test_durations_in_settings_take_the_configuration_files_syntax(
    monkeypatch, variable, value, field, seconds
) -> None:
    monkeypatch.setenv(variable, value)
    settings_class = ScoringSettings if "SCORING" in variable else NotifySettings
    assert getattr(settings_class(), field) == seconds


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MEWS_NOTIFY_GROUP_WAIT_SECONDS", "soon"),
        ("MEWS_NOTIFY_ACK_LINK_TTL_SECONDS", "1.5s"),
        ("MEWS_NOTIFY_RETRY_INITIAL_SECONDS", "0s"),
    ],
)
def test_a_bad_duration_is_refused_naming_the_setting(monkeypatch, variable, value) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.removeprefix("MEWS_NOTIFY_").lower()):
        NotifySettings()


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


@pytest.mark.parametrize("settings_class", [CommonSettings, *SERVICES.values()])
def test_every_key_token_and_password_is_a_secret(settings_class) -> None:
    secret_words = ("key", "token", "password", "secret")
    named_as_secret = {name for name in settings_class.model_fields if any(w in name for w in secret_words)}
    assert named_as_secret, "the check must see something to check"
    plain = {name for name in named_as_secret if not _is_secret(settings_class.model_fields[name].annotation)}
    assert plain == set()


@pytest.mark.parametrize("settings_class", SERVICES.values())
def test_no_secret_shows_in_a_settings_repr(settings_class) -> None:
    secret = "do-not-print-" + "x" * 40
    values = {
        name: secret
        for name, info in settings_class.model_fields.items()
        if _is_secret(info.annotation) and name not in ("api_keys",)
    }
    settings = settings_class(**values)
    assert values, "the check must see something to check"
    assert secret not in repr(settings) + str(settings.model_dump())
