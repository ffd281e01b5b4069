"""Settings shared by every service; each service subclasses `CommonSettings` with its own fields.

One naming scheme: a service's own settings come from `MEWS_<SERVICE>_<NAME>` (its `env_prefix`), the ones every
service shares from `MEWS_<NAME>` (environment, topic namespace, logging, metrics, the authentication throttle),
and Kafka's address from the standard `KAFKA_BOOTSTRAP_SERVERS`. Settings are built at start-up, never at import.
Durations take the syntax of the configuration files ("30s", "15m", "2h" or seconds; shared/durations.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

from prometheus_client import Gauge
from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from shared.durations import Duration
from shared.secrets import refuse_weak

DEPRECATED_VARIABLES = Gauge(
    "mews_settings_deprecated_variable",
    "1 for each setting this process read under its deprecated variable name",
    ["variable", "replacement"],
)


def shared_variable(name: str) -> str:
    """The variable of a setting every service shares: `MEWS_<NAME>`, whatever the service's prefix."""
    return f"MEWS_{name.upper()}"


class Variables(EnvSettingsSource):
    """The environment, each setting under its one variable: a field with its own (a shared setting's MEWS_<NAME>)
    is not read under the service's prefix too, although keyword arguments may use the field's name."""

    # pydantic-settings' hook for the variables a field is read from (private, so pinned in requirements.lock
    # and pinned in behaviour by tests/unit/shared/test_settings.py).
    def _extract_field_info(
        self, field: FieldInfo, field_name: str, model_config: Mapping[str, Any] | None = None
    ) -> list[tuple[str, str, bool]]:
        config = {**(model_config or self.config), "validate_by_name": False, "populate_by_name": False}
        return super()._extract_field_info(field, field_name, config)


class DeprecatedVariables(Variables):
    """A service's own settings under the names they had before its prefix, read for one release.

    Below the current names in priority; each old name found gives one FutureWarning naming its successor (shown
    on stderr: settings are built before logging is configured) and sets mews_settings_deprecated_variable.
    """

    def __init__(self, settings_cls: type[CommonSettings], old_prefix: str, fields: frozenset[str]) -> None:
        super().__init__(settings_cls, env_prefix=old_prefix)
        self.old_prefix = old_prefix
        self.new_prefix = settings_cls.model_config.get("env_prefix", "")
        self.fields = fields

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name not in self.fields:
            return None, field_name, False
        return super().get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        found = super().__call__()
        for name in sorted(found):
            old, new = f"{self.old_prefix}{name.upper()}", f"{self.new_prefix}{name.upper()}"
            warnings.warn(
                f"{old} is deprecated and read for this release only: set {new} instead", FutureWarning, stacklevel=1
            )
            DEPRECATED_VARIABLES.labels(old, new).set(1)
        return found


class CommonSettings(BaseSettings):
    """What every mews process needs: where Kafka is, which topic namespace, how to log."""

    # A refused secret must not be echoed in the start-up error that refuses it.
    model_config = SettingsConfigDict(
        env_prefix="MEWS_", extra="ignore", frozen=True, hide_input_in_errors=True, validate_by_name=True
    )
    # Where a service's own variables were before they took its prefix: read as deprecated aliases (one release).
    deprecated_prefix: ClassVar[str | None] = None
    not_deprecated: ClassVar[frozenset[str]] = frozenset()  # own fields whose old names were never that prefix's

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MEWS_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_namespace: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        validation_alias=shared_variable("topic_namespace"),
        description="Prefix for every topic name; keeps test runs apart",
    )
    # Only these three: a typo such as `prod` must not start a service with development's leniency.
    environment: str = Field(
        default="development",
        pattern=r"^(development|test|production)$",
        validation_alias=shared_variable("environment"),
    )
    log_level: str = Field(default="INFO", validation_alias=shared_variable("log_level"))
    log_json: bool = Field(default=True, validation_alias=shared_variable("log_json"))
    metrics_token: SecretStr | None = Field(
        default=None,
        validation_alias=shared_variable("metrics_token"),
        description="Bearer token /metrics requires; unset: /metrics is open (or on its own port)",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        validation_alias=shared_variable("metrics_port"),
        description="Serve /metrics on this port only (for a scraper inside the cluster), not on the API's",
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        validation_alias=shared_variable("metrics_host"),
        description="Address of MEWS_METRICS_PORT (0.0.0.0 in a pod)",
    )
    auth_failure_limit: int = Field(
        default=20,
        ge=1,
        validation_alias=shared_variable("auth_failure_limit"),
        description="Failed authentications per client address (and per key prefix) within the window before 429",
    )
    auth_failure_window_seconds: Duration = Field(
        default=60.0, gt=0, validation_alias=shared_variable("auth_failure_window_seconds")
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        current = Variables(settings_cls)
        if cls.deprecated_prefix is None:
            return init_settings, current, dotenv_settings, file_secret_settings
        own = frozenset(cls.model_fields) - frozenset(CommonSettings.model_fields) - cls.not_deprecated
        return (
            init_settings,
            current,
            DeprecatedVariables(cls, cls.deprecated_prefix, own),
            dotenv_settings,
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _refuse_weak_metrics_token(self) -> CommonSettings:
        if self.is_hardened and self.metrics_token is not None:
            refuse_weak("MEWS_METRICS_TOKEN", self.metrics_token.get_secret_value())
        return self

    def topic(self, declared) -> str:
        """The broker name of a declared topic in this namespace."""
        return declared.qualified(self.topic_namespace)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_hardened(self) -> bool:
        """Production's refusals (weak secrets, demo keys, private targets) apply: production, and test too."""
        return self.environment != "development"
