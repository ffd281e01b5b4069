"""Settings shared by every service; each service subclasses `CommonSettings` with its own fields.

Settings come from environment variables (prefix `MEWS_`, except the Kafka standard
`KAFKA_BOOTSTRAP_SERVERS`) and are built at start-up, never at import.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CommonSettings(BaseSettings):
    """What every mews process needs: where Kafka is, which topic namespace, how to log."""

    model_config = SettingsConfigDict(env_prefix="MEWS_", extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "MEWS_KAFKA_BOOTSTRAP_SERVERS"),
    )
    topic_namespace: str = Field(default="", pattern=r"^[A-Za-z0-9._-]*$",
                                 description="Prefix for every topic name; keeps test runs apart")
    environment: str = Field(default="development", pattern=r"^(development|test|production)$")
    log_level: str = "INFO"
    log_json: bool = True

    def topic(self, declared) -> str:
        """The broker name of a declared topic in this namespace."""
        return declared.qualified(self.topic_namespace)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"
