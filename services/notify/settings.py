"""Settings of the notify service: database, SMTP, links, outbound safety, grouping and retry timing."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.notify.pipeline.inhibition import DEFAULT_INHIBIT_RULES, InhibitRule
from shared.durations import Duration, WholeDuration
from shared.secrets import refuse_weak
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = ROOT / "var" / "notify"
# Only good enough for a laptop: production refuses to start with it.
DEVELOPMENT_LINK_KEY = "development-only-link-signing-key-change-me"


def _default_database_url() -> str:
    return f"sqlite:///{DEFAULT_STATE_DIR / 'notify.db'}"


class NotifySettings(CommonSettings):
    """Everything the notifier process reads from the environment: its own settings as MEWS_NOTIFY_<NAME>."""

    model_config = SettingsConfigDict(**{**CommonSettings.model_config, "env_prefix": "MEWS_NOTIFY_"})
    # Until this release they were MEWS_<NAME>: still read, each with a warning naming its new variable.
    deprecated_prefix: ClassVar[str | None] = "MEWS_"
    not_deprecated: ClassVar[frozenset[str]] = frozenset({"host", "port"})  # MEWS_NOTIFY_HOST/PORT already

    # Secret: it carries the database password.
    database_url: SecretStr = Field(
        default_factory=lambda: SecretStr(_default_database_url()),
        description="SQLAlchemy URL; sqlite:///path or postgresql+psycopg://...",
    )

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_allow_plaintext: bool = Field(
        default=False, description="Outside development, let SMTP (and its credentials) go without STARTTLS"
    )
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "mews <alerts@mews.localhost>"
    smtp_timeout_seconds: Duration = Field(default=20.0, gt=0)

    public_base_url: str = Field(
        default="http://127.0.0.1:8003", description="Base of links in emails (acknowledge, manage subscription)"
    )
    link_signing_key: SecretStr = SecretStr(DEVELOPMENT_LINK_KEY)
    ack_link_ttl_seconds: WholeDuration = Field(default=7 * 24 * 3600, gt=0)
    manage_url: str = Field(
        default="",
        description=(
            "Link to an organisation's subscription settings in notifications, `{organisation_id}` filled in; "
            "empty: the web console's subscriptions page under public_base_url"
        ),
    )
    unsubscribe_link_ttl_seconds: WholeDuration = Field(default=90 * 24 * 3600, gt=0)

    console_session_ttl_seconds: WholeDuration = Field(
        default=8 * 3600, gt=0, description="How long a console sign-in lasts"
    )
    console_link_ttl_seconds: WholeDuration = Field(
        default=15 * 60, ge=60, le=24 * 3600, description="How long an emailed sign-in link may be used (once)"
    )
    console_link_requests_per_window: int = Field(
        default=5,
        ge=1,
        description=("Sign-in links one client address, or one email address, may ask for within the window"),
    )
    console_link_window_seconds: Duration = Field(default=15 * 60, gt=0)
    grafana_url: str = Field(
        default="",
        max_length=500,
        pattern=r"^(https?://\S+)?$",
        description=(
            "Base URL of the Grafana holding the mews dashboards; the console's ops desk and crisis pages link to "
            "them when set"
        ),
    )

    # The ops desk reads risk from scoring's read API and feed freshness from ingest's: services the operator runs
    # and configures, so the webhook outbound policy does not apply to them.
    console_scoring_url: str = Field(
        default="",
        max_length=500,
        pattern=r"^(https?://\S+)?$",
        description=(
            "Base URL of the scoring read API (GET /v1/risk, /v1/history) for the ops desk; empty: the page says so"
        ),
    )
    console_scoring_key: SecretStr = Field(
        default=SecretStr(""), description=("A scoring read key with government clearance, presented as a bearer token")
    )
    console_ingest_url: str = Field(
        default="",
        max_length=500,
        pattern=r"^(https?://\S+)?$",
        description=(
            "Base URL of the ingest API (GET /v1/sources) for the ops desk's feed freshness; empty: the page says so"
        ),
    )
    console_ingest_key: SecretStr = Field(
        default=SecretStr(""), description=("An ingest API key with the ingest scope, presented as a bearer token")
    )
    console_upstream_timeout_seconds: Duration = Field(
        default=2.0,
        gt=0,
        le=30,
        description=("How long the ops desk waits for scoring or ingest before it shows the page without them"),
    )

    allow_private_webhook_targets: bool = Field(
        default=False, description="Let webhooks reach private, loopback and link-local addresses (tests, labs)"
    )
    webhook_timeout_seconds: Duration = Field(default=10.0, gt=0)

    # Alertmanager's defaults: wait for companions, then batch changes, then repeat unchanged groups rarely.
    group_wait_seconds: Duration = Field(default=30.0, ge=0)
    group_interval_seconds: Duration = Field(default=300.0, ge=0)
    repeat_interval_seconds: Duration = Field(default=4 * 3600.0, ge=0)
    digest_hour_utc: int = Field(
        default=7, ge=0, le=23, description="Hour of the daily and weekly digests, in each channel's time zone"
    )
    digest_weekday: int = Field(default=0, ge=0, le=6, description="Day of the weekly digest (0 is Monday)")
    # MEWS_NOTIFY_INHIBIT_RULES: a JSON list, e.g. [{"source_rules": ["export-control-*"], "source_severity":
    # "critical", "target_rules": ["price-*"], "target_severity": "warning"}]; [] turns inhibition off.
    inhibit_rules: tuple[InhibitRule, ...] = Field(
        default=DEFAULT_INHIBIT_RULES,
        description="Firing source alerts that mute target alerts of the same organisation and material",
    )

    # Exponential backoff with jitter: 30 s, 1 min, 2 min ... capped at 1 h; 15 attempts span about 8 h,
    # so an endpoint down for a working day still gets its alerts.
    retry_initial_seconds: Duration = Field(default=30.0, gt=0)
    retry_multiplier: float = Field(default=2.0, ge=1)
    retry_max_interval_seconds: Duration = Field(default=3600.0, gt=0)
    retry_jitter: float = Field(default=0.2, ge=0, le=1, description="Fraction of each delay drawn at random")
    retry_max_attempts: int = Field(default=15, ge=1)
    channel_disable_after_failures: int = Field(
        default=10, ge=1, description="Consecutive failed notifications after which a channel is disabled"
    )
    # Enqueues wake the outbox at once (in process, and through PostgreSQL NOTIFY in other replicas); the poll
    # is the fallback for a wake-up that went missing.
    outbox_poll_seconds: Duration = Field(default=1.0, gt=0)
    # A dispatch transaction holds at most this many alerts (breaches x matched organisations), so one crisis
    # batch never holds the database for long; the consumer fetches up to `consume_max_records` breaches at once.
    dispatch_max_pairs: int = Field(default=2000, ge=1)
    consume_max_records: int = Field(default=500, ge=1)
    # On PostgreSQL, dispatch transactions of organisations that do not overlap run this many at once.
    dispatch_parallel_transactions: int = Field(default=2, ge=1)
    # While a fetch waits for quiet partitions, the ones whose breaches are being dispatched are not fetched
    # again: a short wait keeps a breach from sitting out aiokafka's default of 0.5 s.
    consume_fetch_max_wait_seconds: Duration = Field(default=0.05, gt=0)
    delivery_concurrency: int = Field(default=100, ge=1, description="Sends at once, over every receiver")
    delivery_per_target_concurrency: int = Field(
        default=10, ge=1, description="Sends at once to one receiver (webhook host and port, or the SMTP server)"
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8003, ge=1, le=65535)
    bootstrap_admin_token: SecretStr | None = Field(
        default=None, description="Platform token that may create organisations before any exist"
    )

    @model_validator(mode="after")
    def _refuse_weak_secrets_in_production(self) -> NotifySettings:
        # `test` is refused the same: a test stack on a shared network is forged as easily as production.
        if self.is_hardened:
            key = self.link_signing_key.get_secret_value()
            if key == DEVELOPMENT_LINK_KEY:
                raise ValueError("MEWS_NOTIFY_LINK_SIGNING_KEY must be set outside development (the default is public)")
            refuse_weak("MEWS_NOTIFY_LINK_SIGNING_KEY", key)
            if self.allow_private_webhook_targets:
                raise ValueError("MEWS_NOTIFY_ALLOW_PRIVATE_WEBHOOK_TARGETS must not be set outside development")
            if self.bootstrap_admin_token is not None:
                refuse_weak("MEWS_NOTIFY_BOOTSTRAP_ADMIN_TOKEN", self.bootstrap_admin_token.get_secret_value())
            if not self.smtp_starttls and not self.smtp_allow_plaintext:
                raise ValueError(
                    "SMTP without TLS would send mail and credentials in the clear: set "
                    "MEWS_NOTIFY_SMTP_STARTTLS=true, or MEWS_NOTIFY_SMTP_ALLOW_PLAINTEXT=true for a relay "
                    "on the same host"
                )
        return self

    @property
    def require_https_webhooks(self) -> bool:
        """Plain http webhooks are tolerated only in development."""
        return self.environment != "development"
