"""Settings shared by every service; each service subclasses `CommonSettings` with its own fields.

Settings come from environment variables (prefix `MEWS_`, except the Kafka standard
`KAFKA_BOOTSTRAP_SERVERS`) and are built at start-up, never at import.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.secrets import refuse_weak


class CommonSettings(BaseSettings):
    """What every mews process needs: where Kafka is, which topic namespace, how to log."""

    # A refused secret must not be echoed in the start-up error that refuses it.
    model_config = SettingsConfigDict(env_prefix="MEWS_", extra="ignore", frozen=True, hide_input_in_errors=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MEWS_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$",
                                 description="Prefix for every topic name; keeps test runs apart")
    # Only these three: a typo such as `prod` must not start a service with development's leniency.
    environment: str = Field(default="development", pattern=r"^(development|test|production)$")
    log_level: str = "INFO"
    log_json: bool = True
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token /metrics requires; unset: /metrics is open (or on its own port)")
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535,
        description="Serve /metrics on this port only (for a scraper inside the cluster), not on the API's")
    metrics_host: str = Field(default="127.0.0.1", description="Address of MEWS_METRICS_PORT (0.0.0.0 in a pod)")
    auth_failure_limit: int = Field(default=20, ge=1,
                                    description="Failed authentications per client address (and per key "
                                                "prefix) within the window before 429")
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)

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
