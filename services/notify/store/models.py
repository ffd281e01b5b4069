"""SQLAlchemy 2 tables of the notifier: organisations and access, subscriptions and BOMs, alerts, the outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

ORGANISATION_KINDS = ("company", "ministry", "agency")
CLEARANCES = ("public", "restricted", "government")
ROLES = ("admin", "member")
LANGUAGES = ("nl", "en")
CHANNEL_KINDS = ("email", "webhook", "teams", "slack")
CHANNEL_MODES = ("immediate", "digest")
SEVERITIES = ("warning", "critical")
ALERT_STATUSES = ("firing", "resolved")
NOTIFICATION_KINDS = ("alert", "resolved", "digest", "admin_notice")
NOTIFICATION_STATUSES = ("pending", "sending", "delivered", "failed", "cancelled")
FEEDBACK_REASONS = ("irrelevant", "duplicate", "false_data", "wrong_material", "useful")


def new_id() -> str:
    """A fresh primary key: a random UUID as text, portable across SQLite and PostgreSQL."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always aware UTC in Python, whatever the database keeps.

    SQLite has no time zone type and hands back naive values; storing naive UTC there and tagging it on the
    way out keeps comparisons (`next_attempt_at <= now`) correct on both databases.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    # Named constraints, so Alembic can alter and drop them on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class Organisation(Base):
    """A company, ministry or agency: the unit of tenancy; every row below belongs to exactly one."""

    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ORGANISATION_KINDS), name="kind"),
        CheckConstraint(_one_of("clearance", CLEARANCES), name="clearance"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    clearance: Mapped[str] = mapped_column(String(16), default="public")
    # Beyond the agreed schema: keys of a platform organisation may create other organisations.
    platform_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    """A person of an organisation, who receives email and may hold API keys."""

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("organisation_id", "email", name="uq_users_organisation_id_email"),
        CheckConstraint(_one_of("role", ROLES), name="role"),
        CheckConstraint(_one_of("language", LANGUAGES), name="language"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="member")
    language: Mapped[str] = mapped_column(String(2), default="en")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignInLink(Base):
    """An emailed one-time console sign-in for a user: only the token's SHA-256 is kept; used once, before expiry."""

    __tablename__ = "sign_in_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class ApiKey(Base):
    """A bearer credential; only its SHA-256 is kept, the prefix finds the row without a scan."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_one_of("role", ROLES), name="role"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default="member")
    prefix: Mapped[str] = mapped_column(String(8), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Product(Base):
    """Something an organisation makes or buys, described by its bill of materials."""

    __tablename__ = "products"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")

    bom_lines: Mapped[list[BomLine]] = relationship(
        back_populates="product", cascade="all, delete-orphan", passive_deletes=True, order_by="BomLine.component"
    )


class BomLine(Base):
    """One line of a bill of materials: a component of a product and the material it needs."""

    __tablename__ = "bom_lines"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    component: Mapped[str] = mapped_column(String(200))
    material: Mapped[str] = mapped_column(String(64), index=True)
    share: Mapped[float | None] = mapped_column(Float)
    quantity: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32), default="")
    supplier: Mapped[str] = mapped_column(String(200), default="")
    origin_country: Mapped[str | None] = mapped_column(String(2))

    product: Mapped[Product] = relationship(back_populates="bom_lines")


class Channel(Base):
    """Where an organisation's alerts go: an email address or a webhook URL with its signing secret."""

    __tablename__ = "channels"
    __table_args__ = (
        CheckConstraint(_one_of("kind", CHANNEL_KINDS), name="kind"),
        CheckConstraint(_one_of("language", LANGUAGES), name="language"),
        CheckConstraint(_one_of("mode", CHANNEL_MODES), name="mode"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str | None] = mapped_column(String(200))  # webhook signing secret; never leaves the service
    language: Mapped[str] = mapped_column(String(2), default="en")
    mode: Mapped[str] = mapped_column(String(16), default="immediate")
    # Added without CHECK constraints: on SQLite one means rebuilding the table, and the rebuild's DROP would
    # cascade to every notification of the channel. The API validates them.
    digest_every: Mapped[str] = mapped_column(String(8), default="day", server_default="day")  # day | week
    min_severity: Mapped[str] = mapped_column(String(16), default="warning", server_default="warning")
    # Quiet hours, in the channel's time zone: warnings wait until they end (from 22 until 7 spans midnight).
    quiet_from_hour: Mapped[int | None] = mapped_column(Integer)
    quiet_until_hour: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SubscriptionChannel(Base):
    """Which channels a subscription sends to."""

    __tablename__ = "subscription_channels"

    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True)
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True, index=True)


class Subscription(Base):
    """Interest in a material, directly or through a product's BOM, from a minimum severity up."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("(material IS NULL) <> (product_id IS NULL)", name="material_xor_product"),
        CheckConstraint(_one_of("min_severity", SEVERITIES), name="min_severity"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    material: Mapped[str | None] = mapped_column(String(64), index=True)
    product_id: Mapped[str | None] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    min_severity: Mapped[str] = mapped_column(String(16), default="warning")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    channels: Mapped[list[Channel]] = relationship(secondary="subscription_channels", order_by="Channel.created_at")
    product: Mapped[Product | None] = relationship()


class Alert(Base):
    """A breach as one organisation sees it: one row per (organisation, fingerprint), updated as it evolves."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("organisation_id", "fingerprint", name="uq_alerts_organisation_id_fingerprint"),
        CheckConstraint(_one_of("severity", SEVERITIES), name="severity"),
        CheckConstraint(_one_of("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_one_of("classification", CLEARANCES), name="classification"),
        Index("ix_alerts_organisation_id_status", "organisation_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(200))
    material: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")
    breach: Mapped[dict[str, Any]] = mapped_column(default=dict)
    classification: Mapped[str] = mapped_column(String(16), default="public")
    via: Mapped[list[Any]] = mapped_column(default=list)
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(320))


class Silence(Base):
    """A muting of matching alerts (by material, rule or severity) until it ends."""

    __tablename__ = "silences"
    __table_args__ = (CheckConstraint(f"severity IS NULL OR {_one_of('severity', SEVERITIES)}", name="severity"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    material: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[str | None] = mapped_column(String(200))
    severity: Mapped[str | None] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(320), default="")
    starts_at: Mapped[datetime] = mapped_column(default=utcnow)
    ends_at: Mapped[datetime]


class OpenBreach(Base):
    """The latest firing state of each breach still open, whoever it concerned: what catch-up offers a newcomer."""

    __tablename__ = "open_breaches"

    fingerprint: Mapped[str] = mapped_column(String(200), primary_key=True)
    material: Mapped[str] = mapped_column(String(64), index=True)
    observed_at: Mapped[datetime]
    breach: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AlertFeedback(Base):
    """What a person of the organisation said about an alert; material and rule kept, so counts and exports
    survive the alert changing."""

    __tablename__ = "alert_feedback"
    __table_args__ = (CheckConstraint(_one_of("reason", FEEDBACK_REASONS), name="reason"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    material: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    silence_id: Mapped[str | None] = mapped_column(ForeignKey("silences.id", ondelete="SET NULL"))


class Notification(Base):
    """The outbox: a message to one channel, persisted before it is sent, retried until delivered or failed."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(_one_of("kind", NOTIFICATION_KINDS), name="kind"),
        CheckConstraint(_one_of("status", NOTIFICATION_STATUSES), name="status"),
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
        # The crisis list counts deliveries of organisations since a time (store/exposure.py).
        Index("ix_notifications_organisation_id_status_delivered_at", "organisation_id", "status", "delivered_at"),
        Index("ix_notifications_group_key_scheduled_at", "group_key", "scheduled_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    channel_id: Mapped[str] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    alert_ids: Mapped[list[Any]] = mapped_column(default=list)
    group_key: Mapped[str] = mapped_column(String(500), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Stable across retries and replays, so a receiver can recognise a repeat.
    webhook_id: Mapped[str] = mapped_column(String(64), default=lambda: f"msg_{uuid.uuid4().hex}")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    breach_observed_at: Mapped[datetime | None]
    # When the group stage scheduled it (its payload's `scheduled_at`); the latest of a group's sent ones is
    # when the group last flushed. A column, so finding that never parses payloads.
    scheduled_at: Mapped[datetime | None]


class DeliveryAttempt(Base):
    """One try at sending a notification, with what the receiver answered."""

    __tablename__ = "delivery_attempts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    notification_id: Mapped[str] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str] = mapped_column(String(32))
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)


class NotificationLogEntry(Base):
    """Alertmanager's nflog: what was last sent per group and fingerprint, for de-duplication and repeats."""

    __tablename__ = "notification_log"

    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    group_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_status: Mapped[str] = mapped_column(String(16))
    last_sent_at: Mapped[datetime]
