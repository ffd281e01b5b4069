"""Value types the pipeline stages pass along: alerts, silences, the notification log and the decisions taken."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.events import BreachStatus, Classification, Severity

if TYPE_CHECKING:
    from services.notify.pipeline.inhibition import InhibitRule
    from services.notify.store.alert_state import AlertStore

SEVERITY_RANK = {Severity.WARNING: 0, Severity.CRITICAL: 1}


@dataclass(frozen=True)
class Alert:
    """One organisation's view of one breach fingerprint; after routing, one copy per channel."""

    organisation_id: str
    fingerprint: str
    material: str
    rule: str
    severity: Severity
    status: BreachStatus
    classification: Classification
    starts_at: datetime
    summary: str
    breach: dict[str, Any] = field(default_factory=dict, compare=False)
    ends_at: datetime | None = None
    updated_at: datetime | None = None
    observed_at: datetime | None = None
    via: tuple[str, ...] = ()
    channel_ids: tuple[str, ...] = ()
    id: str | None = None
    acknowledged_at: datetime | None = None
    changed: bool = True  # the breach changed the alert's status or severity (or created it)
    # Set when it reaches a channel only after it began (a new subscription or channel): when it opened.
    open_since: datetime | None = None
    # set by the route and group stages
    channel_id: str | None = None
    group_key: str | None = None
    due_at: datetime | None = None
    notification_id: str | None = None  # the outbox row the group stage put it in (new or still open)

    def evolve(self, **changes: Any) -> Alert:
        """A copy with these fields changed: `dataclasses.replace` without re-running `__init__` over every field.

        The stages copy each alert several times on its way (upsert, route, group); in a crisis fan-out
        `dataclasses.replace` alone was a seventh of dispatch's time. Alert has no `__post_init__` to skip.
        """
        unknown = changes.keys() - self.__dataclass_fields__.keys()
        if unknown:
            raise TypeError(f"Alert has no field {', '.join(sorted(unknown))}")
        copy = object.__new__(Alert)
        copy.__dict__.update(self.__dict__, **changes)
        return copy

    @property
    def state(self) -> str:
        """What the notification log remembers: `firing:<severity>` or `resolved` (fits its 16 characters)."""
        return f"firing:{self.severity.value}" if self.firing else "resolved"

    @property
    def firing(self) -> bool:
        return self.status == BreachStatus.FIRING


@dataclass(frozen=True)
class Silence:
    """Mute an organisation's firing alerts that match every given field, between two times."""

    organisation_id: str
    starts_at: datetime
    ends_at: datetime
    material: str | None = None
    rule: str | None = None
    severity: str | None = None
    id: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, alert: Alert) -> bool:
        return (
            alert.organisation_id == self.organisation_id
            and (self.material is None or self.material == alert.material)
            and (self.rule is None or self.rule == alert.rule)
            and (self.severity is None or self.severity == alert.severity.value)
        )


@dataclass(frozen=True)
class LogEntry:
    """The notification log's memory of one fingerprint in one group: what was last sent, and when."""

    last_status: str
    last_sent_at: datetime


@dataclass(frozen=True)
class OpenSlot:
    """A notification of a group still open for more alerts: its id, when it is due, and what it carries
    (fingerprint -> state, `firing:<severity>` or `resolved`)."""

    id: str | None
    due_at: datetime
    members: Mapping[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class GroupState:
    """Where a group stands: its notifications still open for more alerts (by due time), and when the last one
    went out."""

    last_flush_at: datetime | None = None
    open: tuple[OpenSlot, ...] = ()


@dataclass(frozen=True)
class OpenNotification:
    """An outbox row not yet tried, that more alerts of its group may still join."""

    id: str
    due_at: datetime
    alert_ids: tuple[str, ...] = ()
    payload: dict[str, Any] = field(default_factory=dict, compare=False)
    breach_observed_at: datetime | None = None


@dataclass(frozen=True)
class NotificationDraft:
    """An outbox row as the enqueue stage writes it: created (`new`) or an open one with more alerts."""

    id: str
    organisation_id: str
    channel_id: str
    group_key: str
    kind: str
    alert_ids: tuple[str, ...]
    payload: dict[str, Any] = field(compare=False)
    next_attempt_at: datetime
    breach_observed_at: datetime | None
    new: bool


@dataclass(frozen=True)
class QuietHours:
    """Hours of a channel's local day when warnings wait; from 22 until 7 spans midnight. Never drops anything."""

    from_hour: int
    until_hour: int

    def covers(self, hour: int) -> bool:
        if self.from_hour <= self.until_hour:
            return self.from_hour <= hour < self.until_hour
        return hour >= self.from_hour or hour < self.until_hour

    def release(self, at: datetime, zone: tzinfo) -> datetime:
        """`at`, or the end of the quiet hours it falls in (in the zone given), as UTC."""
        local = at.astimezone(zone)
        if self.from_hour == self.until_hour or not self.covers(local.hour):
            return at
        end = local.replace(hour=self.until_hour, minute=0, second=0, microsecond=0)
        if end <= local:
            end = (local + timedelta(days=1)).replace(hour=self.until_hour, minute=0, second=0, microsecond=0)
        # replace() on the wall clock keeps DST right: 07:00 local is 07:00 on either side of a change.
        return end.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class ChannelRoute:
    """What routing needs to know about a channel."""

    id: str
    organisation_id: str
    mode: str = "immediate"  # immediate | digest
    enabled: bool = True
    digest_every: str = "day"  # day | week
    min_severity: Severity = Severity.WARNING
    quiet: QuietHours | None = None
    timezone: str = "UTC"

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Timing:
    """Alertmanager's three group timers, plus the hour of the daily digest and the weekday of the weekly one
    (in the channel's time zone; Monday is 0)."""

    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    digest_at: time = time(7, 0)
    digest_weekday: int = 0

    def next_digest(self, now: datetime, zone: tzinfo = UTC) -> datetime:
        """The next daily digest time strictly after `now`."""
        local = now.astimezone(zone)
        candidate = datetime.combine(local.date(), self.digest_at, tzinfo=zone)
        if candidate <= now:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.digest_at, tzinfo=zone)
        return candidate.astimezone(UTC)

    def next_weekly_digest(self, now: datetime, zone: tzinfo = UTC) -> datetime:
        """The next weekly digest time strictly after `now`: the daily digest time on the digest weekday."""
        local = now.astimezone(zone)
        day = local.date() + timedelta(days=(self.digest_weekday - local.weekday()) % 7)
        candidate = datetime.combine(day, self.digest_at, tzinfo=zone)
        if candidate <= now:
            candidate = datetime.combine(day + timedelta(days=7), self.digest_at, tzinfo=zone)
        return candidate.astimezone(UTC)


@dataclass(frozen=True)
class Decision:
    """One stage's verdict on one alert, with the reason a person can read."""

    stage: str
    decision: str
    reason: str
    organisation_id: str
    fingerprint: str
    channel_id: str | None = None


@dataclass
class PipelineContext:
    """Everything the stages read besides the alerts; the shell loads it from the store once per batch."""

    now: datetime
    timing: Timing = field(default_factory=Timing)
    clearance: dict[str, Classification] = field(default_factory=dict)
    channels: dict[str, ChannelRoute] = field(default_factory=dict)
    silences: list[Silence] = field(default_factory=list)
    firing: list[Alert] = field(default_factory=list)  # the firing alerts that may inhibit (of these organisations)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    log: dict[tuple[str, str, str], LogEntry] = field(default_factory=dict)  # (org, group_key, fingerprint)
    groups: dict[str, GroupState] = field(default_factory=dict)  # group_key -> state
    notifications: dict[str, OpenNotification] = field(default_factory=dict)  # open outbox rows by id
    decisions: list[Decision] = field(default_factory=list)
    store: AlertStore | None = None  # where the stages that read or write state find it
    notifications_created: int = 0
    notifications_joined: int = 0

    def decide(self, stage: str, decision: str, reason: str, alert: Alert, channel_id: str | None = None) -> None:
        self.decisions.append(
            Decision(stage, decision, reason, alert.organisation_id, alert.fingerprint, channel_id or alert.channel_id)
        )
