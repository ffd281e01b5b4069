"""Settings of the ingest service, from MEWS_INGEST_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shared.durations import Duration, WholeDuration
from shared.secrets import DEMO_KEY_DIGESTS
from shared.service_keys import StaticKey, parse_keys
from shared.settings import CommonSettings


class IngestSettings(CommonSettings):
    """What the ingest API and poller need; defaults run locally. Every variable of its own is MEWS_INGEST_<NAME>."""

    model_config = SettingsConfigDict(**{**CommonSettings.model_config, "env_prefix": "MEWS_INGEST_"})

    port: int = Field(default=8001, ge=1, le=65535)
    host: str = "127.0.0.1"
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description=("[name=]<sha256 hex>:scope[+scope][:public|restricted|government],... (shared/service_keys.py)"),
    )
    state_dir: Path = Path("var/ingest")
    max_batch: int = Field(default=1000, ge=1, le=100_000)
    max_body_bytes: int = Field(default=2_000_000, ge=1024)
    request_deadline_s: Duration = Field(
        default=5.0,
        gt=0,
        le=60,
        description="How long a batch may wait for Kafka's acknowledgement; the push API then answers 503. Keep "
        "it well below the clients' timeout, so they never give up on a request still in progress",
    )
    retry_after_s: WholeDuration = Field(default=5, ge=1, le=3600, description="Retry-After of a 503 answer")
    fetch_max_bytes: int = Field(default=50_000_000, ge=1024)
    fetch_timeout_s: Duration = Field(default=20.0, gt=0)
    fetch_retries: int = Field(default=3, ge=0, le=10)
    fetch_backoff_s: Duration = Field(default=1.0, ge=0)
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_private_sources: bool = Field(
        default=False,
        description="Let sources and their redirects reach private, loopback and link-local "
        "addresses (development and tests only; refused in production)",
    )
    future_tolerance_s: Duration = Field(
        default=86_400.0, ge=0, description="How far past now a timestamp may lie (clock skew)"
    )

    @field_validator("api_keys")
    @classmethod
    def _keys_parse(cls, v: SecretStr) -> SecretStr:
        parse_keys(v.get_secret_value())
        return v

    @model_validator(mode="after")
    def _refuse_private_sources_in_production(self) -> IngestSettings:
        if self.is_production and self.allow_private_sources:
            raise ValueError("MEWS_INGEST_ALLOW_PRIVATE_SOURCES must not be set in production")
        return self

    @model_validator(mode="after")
    def _refuse_demo_keys(self) -> IngestSettings:
        if self.is_hardened and any(k.digest in DEMO_KEY_DIGESTS for k in self.static_keys()):
            raise ValueError("MEWS_INGEST_API_KEYS holds a demo key, which is public; configure your own")
        return self

    def static_keys(self) -> tuple[StaticKey, ...]:
        """The configured keys with their scopes and clearances."""
        return parse_keys(self.api_keys.get_secret_value())

    @property
    def seen_store_path(self) -> Path:
        return self.state_dir / "seen.sqlite3"
