"""The alert pipeline's state in the database: alert rows, what the stages read, the notification log, and the
outbox rows dispatch writes.

`AlertStore` is the interface the pipeline stages use (a fake of it tests dispatch without a database);
`SqlAlertStore` keeps it in the session's transaction with one bulk statement per kind of row and batch
(`INSERT ... ON CONFLICT` on SQLite and PostgreSQL), never a read and a flush per row.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Text, and_, bindparam, func, literal_column, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from services.notify.pipeline.alert import (
    Alert,
    ChannelRoute,
    GroupState,
    LogEntry,
    NotificationDraft,
    OpenNotification,
    OpenSlot,
    PipelineContext,
    QuietHours,
    Silence,
)
from services.notify.pipeline.inhibition import InhibitRule, source_severities
from services.notify.store import models
from shared.events import BreachStatus, Classification, Severity

ALERTS = cast(Table, models.Alert.__table__)
NOTIFICATIONS = cast(Table, models.Notification.__table__)
NOTIFICATION_LOG = cast(Table, models.NotificationLogEntry.__table__)


def _text(value: str | datetime | None) -> str | None:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        return value.isoformat()
    return value


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


SEPARATOR = "\x1f"


def array_literal(values: Sequence[str | datetime | None]) -> str:
    """A PostgreSQL array literal of the values (text, aware datetimes, NULLs), each quoted and escaped.

    Without NULLs the whole column is joined, escaped and split in a few string operations (C speed), not
    value by value: a bulk write costs the client little, and the server parses one literal per column.
    """
    texts = [_text(v) for v in values]
    present = [t for t in texts if t is not None]
    if len(present) < len(texts):
        return "{" + ",".join("NULL" if t is None else _quoted(t) for t in texts) + "}"
    joined = SEPARATOR.join(present)
    if not present or joined.count(SEPARATOR) != len(present) - 1:  # none, or a value holds the separator
        return "{" + ",".join(_quoted(t) for t in present) + "}"
    return "{" + _quoted(joined).replace(SEPARATOR, '","') + "}"


AlertKey = tuple[str, str]  # (organisation_id, fingerprint)
LogKey = tuple[str, str, str]  # (organisation_id, group_key, fingerprint)


class AlertStore(abc.ABC):
    """What the pipeline reads and writes besides the alerts it is handed."""

    @abc.abstractmethod
    def clearances(self, organisation_ids: Iterable[str]) -> dict[str, Classification]:
        """The clearance of each organisation that exists."""

    @abc.abstractmethod
    def firing_alerts(self, fingerprints: Iterable[str] | None = None) -> list[Alert]:
        """Every firing alert (of these fingerprints), of every organisation."""

    @abc.abstractmethod
    def alerts(self, keys: Iterable[AlertKey]) -> dict[AlertKey, Alert]:
        """The stored alerts of these (organisation, fingerprint) keys, locked until the transaction ends."""

    @abc.abstractmethod
    def save_alerts(self, alerts: list[Alert], acknowledgement_cleared: Iterable[str] = ()) -> None:
        """Create or update these alerts (each with its id); forget the acknowledgement of the ids given."""

    @abc.abstractmethod
    def load_context(self, ctx: PipelineContext, organisation_ids: Iterable[str], fingerprints: Iterable[str]) -> None:
        """Fill what the stages after the upsert read: critical firing alerts, silences, channels, log, groups."""

    @abc.abstractmethod
    def write_notifications(self, drafts: list[NotificationDraft], now: datetime) -> None:
        """Insert the new outbox rows and add the alerts of the others to their open rows."""

    @abc.abstractmethod
    def record_sent(self, entries: Mapping[LogKey, LogEntry]) -> None:
        """Remember in the notification log what each group was sent of each fingerprint, and when."""


def alert_from_row(row: Any) -> Alert:
    """The pipeline's alert for a stored row (an ORM object or a result row with the same attributes)."""
    breach = row.breach or {}
    observed = breach.get("observed_at")
    return Alert(
        organisation_id=row.organisation_id,
        fingerprint=row.fingerprint,
        material=row.material,
        rule=row.rule,
        severity=Severity(row.severity),
        status=BreachStatus(row.status),
        classification=Classification(row.classification),
        starts_at=row.starts_at,
        summary=row.summary,
        breach=breach,
        ends_at=row.ends_at,
        updated_at=row.updated_at,
        observed_at=datetime.fromisoformat(observed) if observed else None,
        via=tuple(row.via or ()),
        id=row.id,
        acknowledged_at=row.acknowledged_at,
        changed=False,
    )


def inhibition_sources(session: Session, organisation_ids: Sequence[str], rules: Sequence[InhibitRule]) -> list[Alert]:
    """The organisations' firing alerts that may inhibit another: of a severity some rule's source has, and only
    what inhibition compares, never the breach each row keeps."""
    if not rules:
        return []
    a = models.Alert
    query = select(
        a.id, a.organisation_id, a.fingerprint, a.material, a.rule, a.severity, a.classification, a.starts_at
    ).where(a.organisation_id.in_(organisation_ids), a.status == "firing")
    severities = source_severities(rules)
    if severities is not None:
        query = query.where(a.severity.in_(sorted(s.value for s in severities)))
    return [
        Alert(
            organisation_id=r.organisation_id,
            fingerprint=r.fingerprint,
            material=r.material,
            rule=r.rule,
            severity=Severity(r.severity),
            status=BreachStatus.FIRING,
            classification=Classification(r.classification),
            starts_at=r.starts_at,
            summary="",
            id=r.id,
            changed=False,
        )
        for r in session.execute(query)
    ]


def open_notification() -> tuple[Any, ...]:
    """Conditions of a notification still open to more alerts: never claimed, never tried (a replay was)."""
    tried = select(models.DeliveryAttempt.id).where(models.DeliveryAttempt.notification_id == models.Notification.id)
    return (models.Notification.status == "pending", models.Notification.attempts == 0, ~tried.exists())


def state_in_payload(alert: Mapping[str, Any]) -> str:
    """The notification-log state of one alert as a notification's payload carries it."""
    return f"firing:{alert.get('severity')}" if alert.get("status") == "firing" else "resolved"


# Columns an upsert of an alert rewrites; the acknowledgement is cleared on its own, never overwritten.
UPSERTED_COLUMNS = (
    "material",
    "rule",
    "severity",
    "status",
    "starts_at",
    "ends_at",
    "updated_at",
    "summary",
    "breach",
    "classification",
    "via",
)


class SqlAlertStore(AlertStore):
    """The alert state in one session's transaction (the caller commits)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _insert(self, table: Table) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as postgresql_insert

            return postgresql_insert(table)
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table)
        raise NotImplementedError(f"no upsert for the {self.dialect} dialect")

    def _unnest_upsert(
        self, table: Table, rows: list[dict[str, Any]], conflict: Sequence[str], updated: Sequence[str]
    ) -> None:
        """PostgreSQL: upsert the rows in ONE statement, each column sent as one array literal and `unnest`ed.

        An executemany runs (and the server plans and executes) one statement per row; this is one statement
        for the batch, with a third of the client's work and of the server's. JSON columns are given encoded.
        The rows must hold each conflict key once (one statement may not update a row twice).
        """
        from sqlalchemy.dialects.postgresql import ARRAY
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        columns = list(rows[0])
        arrays = [
            sql_cast(sql_cast(bindparam(name, type_=Text), ARRAY(Text)), ARRAY(table.c[name].type)) for name in columns
        ]
        insert = postgresql_insert(table).from_select(
            columns, select(literal_column("*")).select_from(func.unnest(*arrays))
        )
        upsert = insert.on_conflict_do_update(
            index_elements=list(conflict), set_={name: insert.excluded[name] for name in updated}
        )
        self.session.execute(upsert, {name: array_literal([row[name] for row in rows]) for name in columns})

    def _for_update(self, query: Any) -> Any:
        # SQLite has one writer at a time and no row locks; PostgreSQL locks what this transaction will write.
        return query.with_for_update() if self.dialect == "postgresql" else query

    def clearances(self, organisation_ids: Iterable[str]) -> dict[str, Classification]:
        ids = sorted(set(organisation_ids))
        if not ids:
            return {}
        rows = self.session.execute(
            select(models.Organisation.id, models.Organisation.clearance).where(models.Organisation.id.in_(ids))
        )
        return {org_id: Classification(clearance) for org_id, clearance in rows}

    def firing_alerts(self, fingerprints: Iterable[str] | None = None) -> list[Alert]:
        query = select(*models.Alert.__table__.c).where(models.Alert.status == "firing")
        if fingerprints is not None:
            wanted = sorted(set(fingerprints))
            if not wanted:
                return []
            query = query.where(models.Alert.fingerprint.in_(wanted))
        return [alert_from_row(row) for row in self.session.execute(query)]

    def alerts(self, keys: Iterable[AlertKey]) -> dict[AlertKey, Alert]:
        wanted = set(keys)
        if not wanted:
            return {}
        organisations = sorted({org for org, _ in wanted})
        fingerprints = sorted({fp for _, fp in wanted})
        query = self._for_update(
            select(*models.Alert.__table__.c).where(
                models.Alert.organisation_id.in_(organisations), models.Alert.fingerprint.in_(fingerprints)
            )
        )
        found = {}
        for row in self.session.execute(query):
            if (row.organisation_id, row.fingerprint) in wanted:
                found[(row.organisation_id, row.fingerprint)] = alert_from_row(row)
        return found

    def save_alerts(self, alerts: list[Alert], acknowledgement_cleared: Iterable[str] = ()) -> None:
        if alerts:
            table = ALERTS
            # The organisations' alerts of one breach share its dict: it is encoded once, not once per row.
            encoded: dict[int, str] = {}
            for a in alerts:
                if id(a.breach) not in encoded:
                    encoded[id(a.breach)] = json.dumps(a.breach)
            rows = [
                {
                    "id": a.id,
                    "organisation_id": a.organisation_id,
                    "fingerprint": a.fingerprint,
                    "material": a.material,
                    "rule": a.rule,
                    "severity": a.severity.value,
                    "status": a.status.value,
                    "starts_at": a.starts_at,
                    "ends_at": a.ends_at,
                    "updated_at": a.updated_at,
                    "summary": a.summary,
                    "breach_json": encoded[id(a.breach)],
                    "classification": a.classification.value,
                    "via": list(a.via),
                }
                for a in alerts
            ]
            if self.dialect == "postgresql":
                rows = list({(row["organisation_id"], row["fingerprint"]): row for row in rows}.values())
                for row in rows:
                    row["breach"] = row.pop("breach_json")
                    row["via"] = json.dumps(row["via"])
                self._unnest_upsert(table, rows, ("organisation_id", "fingerprint"), UPSERTED_COLUMNS)
            else:
                # JSON already encoded: SQLite keeps JSON as text.
                insert = self._insert(table).values(breach=bindparam("breach_json", type_=Text))
                upsert = insert.on_conflict_do_update(
                    index_elements=[table.c.organisation_id, table.c.fingerprint],
                    set_={name: insert.excluded[name] for name in UPSERTED_COLUMNS},
                )
                self.session.execute(upsert, rows)
        cleared = sorted(set(acknowledgement_cleared))
        if cleared:
            self.session.execute(
                update(ALERTS).where(models.Alert.id.in_(cleared)).values(acknowledged_at=None, acknowledged_by=None)
            )

    def load_context(self, ctx: PipelineContext, organisation_ids: Iterable[str], fingerprints: Iterable[str]) -> None:
        orgs = sorted(set(organisation_ids))
        if not orgs:
            return
        s = self.session
        ctx.firing = inhibition_sources(s, orgs, ctx.inhibit_rules)
        ctx.silences = [
            Silence(r.organisation_id, r.starts_at, r.ends_at, r.material, r.rule, r.severity, r.id)
            for r in s.execute(
                select(*models.Silence.__table__.c).where(
                    models.Silence.organisation_id.in_(orgs), models.Silence.ends_at > ctx.now
                )
            )
        ]
        c = models.Channel
        ctx.channels = {
            r.id: ChannelRoute(
                r.id,
                r.organisation_id,
                r.mode,
                r.enabled,
                r.digest_every,
                Severity(r.min_severity),
                None if r.quiet_from_hour is None else QuietHours(r.quiet_from_hour, r.quiet_until_hour or 0),
                r.timezone,
            )
            for r in s.execute(
                select(
                    c.id,
                    c.organisation_id,
                    c.mode,
                    c.enabled,
                    c.digest_every,
                    c.min_severity,
                    c.quiet_from_hour,
                    c.quiet_until_hour,
                    c.timezone,
                ).where(c.organisation_id.in_(orgs))
            )
        }
        wanted = sorted(set(fingerprints))
        log = models.NotificationLogEntry
        ctx.log = {
            (r.organisation_id, r.group_key, r.fingerprint): LogEntry(r.last_status, r.last_sent_at)
            for r in s.execute(
                select(log.organisation_id, log.group_key, log.fingerprint, log.last_status, log.last_sent_at).where(
                    log.organisation_id.in_(orgs), log.fingerprint.in_(wanted)
                )
            )
        }
        channel_ids = sorted(ctx.channels)
        ctx.notifications, ctx.groups = {}, {}
        if not channel_ids:
            return
        n = models.Notification
        mine = (n.channel_id.in_(channel_ids), n.kind != "admin_notice")
        flushed = {
            key: at
            for key, at in s.execute(
                select(n.group_key, func.max(n.scheduled_at))
                .where(*mine, ~and_(*open_notification()), n.scheduled_at.is_not(None))
                .group_by(n.group_key)
            )
            if at
        }
        # Open notifications are locked, so no outbox worker claims one while this transaction adds to it
        # (on SQLite the transaction holds the database's one write lock from its start).
        open_rows: dict[str, list[OpenNotification]] = {}
        for r in s.execute(
            self._for_update(
                select(n.id, n.group_key, n.next_attempt_at, n.alert_ids, n.payload, n.breach_observed_at).where(
                    *mine, *open_notification()
                )
            )
        ):
            open_rows.setdefault(r.group_key, []).append(
                OpenNotification(
                    r.id, r.next_attempt_at, tuple(r.alert_ids or ()), dict(r.payload or {}), r.breach_observed_at
                )
            )
        ctx.notifications = {o.id: o for rows in open_rows.values() for o in rows}
        for key in set(open_rows) | set(flushed):
            slots = tuple(
                OpenSlot(
                    o.id, o.due_at, {a.get("fingerprint"): state_in_payload(a) for a in o.payload.get("alerts", [])}
                )
                for o in sorted(open_rows.get(key, []), key=lambda o: o.due_at)
            )
            ctx.groups[key] = GroupState(last_flush_at=flushed.get(key), open=slots)

    def write_notifications(self, drafts: list[NotificationDraft], now: datetime) -> None:
        created = [
            {
                "id": d.id,
                "organisation_id": d.organisation_id,
                "channel_id": d.channel_id,
                "kind": d.kind,
                "group_key": d.group_key,
                "alert_ids": list(d.alert_ids),
                "payload": d.payload,
                "next_attempt_at": d.next_attempt_at,
                "scheduled_at": d.next_attempt_at,
                "created_at": now,
                "breach_observed_at": d.breach_observed_at,
            }
            for d in drafts
            if d.new
        ]
        if created:
            self.session.execute(NOTIFICATIONS.insert(), created)
        joined = [
            {
                "id": d.id,
                "kind": d.kind,
                "alert_ids": list(d.alert_ids),
                "payload": d.payload,
                "breach_observed_at": d.breach_observed_at,
            }
            for d in drafts
            if not d.new
        ]
        if joined:
            self.session.execute(update(models.Notification), joined)

    def record_sent(self, entries: Mapping[LogKey, LogEntry]) -> None:
        if not entries:
            return
        table = NOTIFICATION_LOG
        rows = [
            {
                "organisation_id": org,
                "group_key": key,
                "fingerprint": fp,
                "last_status": e.last_status,
                "last_sent_at": e.last_sent_at,
            }
            for (org, key, fp), e in entries.items()
        ]
        if self.dialect == "postgresql":
            self._unnest_upsert(
                table, rows, ("organisation_id", "group_key", "fingerprint"), ("last_status", "last_sent_at")
            )
            return
        insert = self._insert(table)
        upsert = insert.on_conflict_do_update(
            index_elements=[table.c.organisation_id, table.c.group_key, table.c.fingerprint],
            set_={"last_status": insert.excluded.last_status, "last_sent_at": insert.excluded.last_sent_at},
        )
        self.session.execute(upsert, rows)


__all__ = [
    "AlertStore",
    "SqlAlertStore",
    "alert_from_row",
    "inhibition_sources",
    "open_notification",
    "state_in_payload",
]
