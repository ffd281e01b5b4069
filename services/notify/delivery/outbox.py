"""The outbox worker: claim due notifications, send each through its channel, record every attempt.

Sending is a bounded pool: at most `concurrency` sends at once, and at most `per_target` to one receiver
(host and port of a webhook; the SMTP server for email), so one slow or failing receiver holds only its own
share and never delays the others. A claim starts as soon as it is made; a claim for a receiver that already
has its share waits in memory (its channel is left out of further claims until a send to it ends), and the
notifications of one group go out one after another, in the order they fell due. While a
claim is held its lease is renewed, so a slow send is never claimed a second time; should it be anyway (the
process stalled past the lease), the attempt number fences the claim and the outcome is recorded once.

The worker wakes on enqueue (`OutboxWakeup`), when a send frees a slot it was short of, and when the next
notification falls due; polling is only the fallback. The queries live in store/outbox.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from services.notify.ack_links import ack_url, manage_url, unsubscribe_url
from services.notify.delivery import metrics
from services.notify.delivery.email import SmtpConfig, build_message, deliver_email, render_email
from services.notify.delivery.outcome import Outcome
from services.notify.delivery.payload import localised_payload, slack_message, teams_message
from services.notify.delivery.retry import Backoff, outage_backoff
from services.notify.delivery.wakeup import OutboxWakeup
from services.notify.delivery.webhook import TargetCheck, deliver_chat, deliver_webhook
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import database_away, unit_of_work
from services.notify.store.outbox import (
    Claimed,
    DeliveryPolicy,
    OutboxState,
    admin_recipients,
    claim_due,
    disable_channel,
    extend_leases,
    next_due_at,
    outbox_state,
    record_outcome,
    record_outcomes,
    release,
    release_claims,
)

log = logging.getLogger(__name__)

__all__ = [
    "Claimed",
    "DeliveryLimits",
    "DeliveryPolicy",
    "OutboxWorker",
    "admin_recipients",
    "claim_due",
    "disable_channel",
    "email_links",
    "observe_outbox",
    "record_outcome",
    "release_claims",
]


CHAT_MESSAGES = {"teams": teams_message, "slack": slack_message}  # channel kind -> (payload, links, language) -> body


@dataclass(frozen=True)
class DeliveryLimits:
    """How many sends at once: in all, and to one receiver."""

    concurrency: int = 100
    per_target: int = 10


def email_links(settings: NotifySettings, claimed: Claimed, now: datetime) -> dict[str, str]:
    """The manage and unsubscribe links, and a signed acknowledge link for each firing alert (for emails and chat
    cards; an admin notice has no unsubscribe link: it goes to the organisation's administrators)."""
    links = {"manage": manage_url(settings, claimed.organisation_id)}
    if claimed.kind != "admin_notice":
        links["unsubscribe"] = unsubscribe_url(settings, claimed.channel_id, claimed.organisation_id, now)
    for alert in claimed.payload.get("alerts", []):
        if alert.get("status") == "firing":
            links[f"ack:{alert['id']}"] = ack_url(settings, alert["id"], claimed.organisation_id, now)
    return links


def show_outbox(state: OutboxState, now: datetime) -> None:
    """Set the outbox gauges: depth per channel kind, and the age of the oldest due notification."""
    for kind in models.CHANNEL_KINDS:
        metrics.OUTBOX_DEPTH.labels(kind).set(state.depth.get(kind, 0))
    oldest = state.oldest_due_at
    metrics.OLDEST_PENDING.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)


def observe_outbox(session: Session, now: datetime) -> None:
    """Read the outbox and set its gauges."""
    show_outbox(outbox_state(session, now), now)


@dataclass(frozen=True)
class Sent:
    """One finished send, waiting to be recorded."""

    claimed: Claimed
    outcome: Outcome
    finished_at: datetime


@dataclass
class OutboxWorker:
    """Sends what the outbox holds: `run` until stopped (the pool), or `run_once` for one round."""

    sessions: sessionmaker[Session]
    http: httpx.AsyncClient
    smtp: SmtpConfig
    check_target: TargetCheck
    settings: NotifySettings
    policy: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    clock: Callable[[], datetime] | None = None  # () -> aware datetime; injected by tests
    limits: DeliveryLimits = field(default_factory=DeliveryLimits)
    wakeup: OutboxWakeup = field(default_factory=OutboxWakeup)

    def __post_init__(self) -> None:
        # Blocking work gets threads of its own: a hanging SMTP server must not take the threads that database
        # calls run in (asyncio's default executor); the webhook transport resolves in threads of its own.
        self._mail_threads = ThreadPoolExecutor(self.limits.per_target, thread_name_prefix="mews-smtp")
        self._held: dict[str, Claimed] = {}  # every claim not yet recorded: sending, waiting or finished
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._busy: dict[str, int] = defaultdict(int)  # sends in flight per target
        self._waiting: dict[str, deque[Claimed]] = defaultdict(deque)  # claims whose target had its share
        # A group's notifications go out one after another, as Alertmanager sends an aggregation group.
        self._group_sending: set[tuple[str, str]] = set()
        self._group_waiting: dict[tuple[str, str], deque[Claimed]] = defaultdict(deque)
        self._target_of_channel: dict[str, str] = {}
        self._finished: list[Sent] = []
        self._finished_event = asyncio.Event()
        self._short = False  # the last round left due work behind for lack of a slot
        self._closing = False

    def now(self) -> datetime:
        return self.clock() if self.clock else models.utcnow()

    # --- one send ------------------------------------------------------------------------------------

    def target_of(self, claimed: Claimed) -> str:
        """Whose share a send counts against: the webhook's host and port, or the SMTP server."""
        if claimed.kind == "admin_notice" or claimed.channel_kind == "email":
            return f"smtp:{self.smtp.host}:{self.smtp.port}"
        parts = urlsplit(claimed.target)
        try:
            port = parts.port
        except ValueError:
            port = None
        return f"{(parts.hostname or '').lower()}:{port or (443 if parts.scheme == 'https' else 80)}"

    def deadline(self, claimed: Claimed) -> float:
        """The longest one send may take, answer included (a receiver that trickles bytes is cut off too)."""
        if claimed.kind == "admin_notice" or claimed.channel_kind == "email":
            return 3 * self.smtp.timeout  # connect, hand over, quit: each may take the SMTP timeout
        return self.settings.webhook_timeout_seconds + 1.0

    async def send(self, claimed: Claimed) -> Outcome:
        """Send one claimed notification through its channel, within its deadline; never raises."""
        now = self.now()
        deadline = self.deadline(claimed)
        try:
            async with asyncio.timeout(deadline):
                if claimed.kind == "admin_notice" or claimed.channel_kind == "email":
                    recipients = (
                        claimed.payload.get("recipients") if claimed.kind == "admin_notice" else [claimed.target]
                    )
                    links = email_links(self.settings, claimed, now)
                    rendered = render_email(claimed.kind, claimed.payload, claimed.language, links, claimed.timezone)
                    message = build_message(self.smtp, list(recipients or []), rendered, claimed.webhook_id, now)
                    return await deliver_email(self.smtp, message, self._mail_threads)
                if claimed.channel_kind in CHAT_MESSAGES:
                    card = CHAT_MESSAGES[claimed.channel_kind](
                        claimed.payload, email_links(self.settings, claimed, now), claimed.language, claimed.timezone
                    )
                    return await deliver_chat(self.http, claimed.target, card, self.check_target)
                if not claimed.secret:
                    return Outcome("retry", None, "webhook channel has no signing secret")
                return await deliver_webhook(
                    self.http,
                    claimed.target,
                    claimed.secret,
                    claimed.webhook_id,
                    localised_payload(claimed.payload, claimed.language, claimed.timezone),
                    now,
                    self.check_target,
                )
        except TimeoutError:
            return Outcome("retry", None, f"timeout: no answer within {deadline:g} s")
        except Exception as exc:  # a bug in one notification must not stop the others; it is retried
            log.exception("delivery raised", extra={"notification_id": claimed.id})
            return Outcome("retry", None, f"{type(exc).__name__}: {exc}"[:500])

    async def _timed_send(self, claimed: Claimed) -> Sent:
        label = "email" if claimed.kind == "admin_notice" else claimed.channel_kind
        metrics.IN_FLIGHT.labels(label).inc()
        started = time.monotonic()
        try:
            outcome = await self.send(claimed)
        finally:
            metrics.IN_FLIGHT.labels(label).dec()
            metrics.SEND_SECONDS.labels(label).observe(time.monotonic() - started)
        return Sent(claimed, outcome, self.now())

    # --- the database, each call in a worker thread ---------------------------------------------------

    def _claim(self, limit: int, skip_channels: frozenset[str]) -> list[Claimed]:
        with metrics.DATABASE_SECONDS.labels("claim").time(), unit_of_work(self.sessions) as session:
            return claim_due(session, self.now(), self.policy, limit=limit, skip_channels=skip_channels)

    def _next_due(self, skip_channels: frozenset[str]) -> datetime | None:
        with metrics.DATABASE_SECONDS.labels("next_due").time(), unit_of_work(self.sessions) as session:
            return next_due_at(session, skip_channels=skip_channels)

    def _record(self, sent: list[Sent]) -> list[str]:
        with metrics.DATABASE_SECONDS.labels("record").time():
            return self._record_all(sent)

    def _record_all(self, sent: list[Sent]) -> list[str]:
        """Record finished sends in one transaction; should one of them fail, each in its own."""
        try:
            with unit_of_work(self.sessions) as session:
                return record_outcomes(session, [(s.claimed, s.outcome, s.finished_at) for s in sent], self.policy)
        except Exception as exc:
            if len(sent) == 1 or database_away(exc):
                raise
        states = []
        for s in sent:
            try:
                with unit_of_work(self.sessions) as session:
                    states.append(record_outcome(session, s.claimed, s.outcome, s.finished_at, self.policy))
            except Exception as exc:
                if database_away(exc):
                    raise
                # Not recorded: the lease runs out and the notification is sent again, never lost.
                log.exception("recording a delivery failed", extra={"notification_id": s.claimed.id})
                states.append("unrecorded")
        return states

    def _extend(self, claims: list[Claimed]) -> int:
        until = self.now() + self.policy.lease
        held = 0
        with metrics.DATABASE_SECONDS.labels("extend").time(), unit_of_work(self.sessions) as session:
            for start in range(0, len(claims), 200):
                held += extend_leases(session, claims[start : start + 200], until)
        return held

    def _release(self, claims: list[Claimed]) -> int:
        with metrics.DATABASE_SECONDS.labels("release").time(), unit_of_work(self.sessions) as session:
            return release(session, claims, self.now())

    def _observe(self) -> None:
        with metrics.DATABASE_SECONDS.labels("observe").time(), unit_of_work(self.sessions) as session:
            now = self.now()
            state = outbox_state(session, now)
        show_outbox(state, now)

    def _account(self, sent: Sent, state: str) -> None:
        """Count and log one recorded attempt."""
        c, outcome = sent.claimed, sent.outcome
        # The last of the tries gave up: it says so, as its recorded attempt does (store/outbox.py).
        said = "failed" if state == "failed" and outcome.outcome == "retry" else outcome.outcome
        if state not in ("superseded", "gone", "unrecorded"):
            label = "email" if c.kind == "admin_notice" else c.channel_kind
            metrics.DELIVERIES.labels(label, said).inc()
            if state == "retry":
                metrics.RETRIES.labels(label).inc()
                if outcome.retry_after is not None:
                    metrics.RETRY_AFTER.labels(label).inc()
            if outcome.delivered and c.breach_observed_at is not None:
                metrics.BREACH_TO_DELIVERY.labels(label).observe(
                    (sent.finished_at - c.breach_observed_at).total_seconds()
                )
        log.info(
            "delivery attempt",
            extra={
                "notification_id": c.id,
                "webhook_id": c.webhook_id,
                "channel_id": c.channel_id,
                "kind": c.kind,
                "attempt": c.attempts,
                "outcome": said,
                "status_code": outcome.status_code,
                "error": outcome.error,
                "state": state,
            },
        )

    # --- one round, for tests and tools --------------------------------------------------------------

    async def run_once(self) -> int:
        """One round: claim a batch, send it concurrently, record; returns how many were attempted."""
        claimed = await asyncio.to_thread(self._claim, self.policy.batch_size, frozenset())
        if not claimed:
            return 0
        sent = list(await asyncio.gather(*(self._timed_send(c) for c in claimed)))
        for s, state in zip(sent, await asyncio.to_thread(self._record, sent), strict=True):
            self._account(s, state)
        return len(claimed)

    # --- the pool --------------------------------------------------------------------------------------

    def _skipped_channels(self) -> frozenset[str]:
        """Channels whose receiver has its share of sends now: claiming for them would only make them wait."""
        full = {t for t, n in self._busy.items() if n >= self.limits.per_target}
        return frozenset(ch for ch, t in self._target_of_channel.items() if t in full)

    def _admit(self, claimed: Claimed) -> None:
        self._held[claimed.id] = claimed
        group = (claimed.channel_id, claimed.group_key)
        if group in self._group_sending:
            self._group_waiting[group].append(claimed)
            metrics.WAITING.inc()
            return
        self._group_sending.add(group)
        target = self.target_of(claimed)
        self._target_of_channel[claimed.channel_id] = target
        if self._busy[target] < self.limits.per_target:
            self._start(claimed, target)
        else:
            self._waiting[target].append(claimed)
            metrics.WAITING.inc()

    def _start(self, claimed: Claimed, target: str) -> None:
        self._busy[target] += 1
        self._sending[claimed.id] = asyncio.create_task(
            self._send_and_hand_on(claimed, target), name=f"send-{claimed.id}"
        )

    async def _send_and_hand_on(self, claimed: Claimed, target: str) -> None:
        try:
            sent = await self._timed_send(claimed)
        finally:
            self._busy[target] -= 1
            self._sending.pop(claimed.id, None)
        self._finished.append(sent)
        self._finished_event.set()
        group = (claimed.channel_id, claimed.group_key)
        self._group_sending.discard(group)
        if self._closing:
            return
        waiting = self._waiting.get(target)
        if waiting:
            metrics.WAITING.dec()
            self._start(waiting.popleft(), target)
        elif self._short:
            self.wakeup.set("slot")
        next_in_group = self._group_waiting.get(group)
        if next_in_group:
            metrics.WAITING.dec()
            following = next_in_group.popleft()
            if not next_in_group:
                del self._group_waiting[group]
            self._admit(following)

    async def _record_forever(self) -> None:
        """Record finished sends as they come, many to a transaction; waits out a database outage."""
        backoff = outage_backoff(0.25, 10.0)
        while True:
            if not self._finished:
                if self._closing and not self._sending:
                    return
                self._finished_event.clear()
                await self._finished_event.wait()
                continue
            batch, self._finished = self._finished, []
            try:
                states = await asyncio.to_thread(self._record, batch)
            except Exception as exc:
                self._finished[:0] = batch  # keep them, in order; the leases are renewed meanwhile
                delay = backoff.next()
                log.warning(
                    "recording deliveries failed; retrying",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "count": len(batch), "retry_in": delay},
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            for sent, state in zip(batch, states, strict=True):
                self._held.pop(sent.claimed.id, None)
                self._account(sent, state)

    async def _keep_leases(self) -> None:
        """Renew the lease of every claim not yet recorded, well before it runs out."""
        period = max(0.05, self.policy.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(period)
            claims = list(self._held.values())
            if not claims:
                continue
            try:
                await asyncio.to_thread(self._extend, claims)
            except Exception as exc:
                log.warning(
                    "renewing claim leases failed",
                    extra={"error": f"{type(exc).__name__}: {exc}"[:300], "claims": len(claims)},
                )

    async def _observe_forever(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self._observe)
            except Exception as exc:
                log.warning("reading the outbox depth failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), max(1.0, self.settings.outbox_poll_seconds))

    async def _round(self, backoff: Backoff) -> float:
        """Claim what free slots allow and start it; returns how long to wait before the next round."""
        poll = self.settings.outbox_poll_seconds
        free = self.limits.concurrency - len(self._sending)
        if free <= 0:
            self._short = True
            return poll  # a finishing send wakes us
        skip = self._skipped_channels()
        try:
            claimed = await asyncio.to_thread(self._claim, free, skip)
            now = self.now()
            for c in claimed:
                if c.attempts == 1 and c.created_at is not None:
                    metrics.CLAIM_DELAY.observe(max(0.0, (now - c.created_at).total_seconds()))
                self._admit(c)
            self._short = bool(skip) or len(claimed) >= free
            if len(claimed) >= free:
                return 0.0 if len(self._sending) < self.limits.concurrency else poll
            # Asked only now, with the sends already under way: the next retry or group falling due.
            due = await asyncio.to_thread(self._next_due, skip)
        except Exception as exc:
            delay = backoff.next()
            log.warning(
                "claiming from the outbox failed; retrying",
                extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_in": delay},
            )
            return delay
        backoff.reset()
        if due is None:
            return poll
        return min(poll, max(0.0, (due - self.now()).total_seconds()))

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and send until `stopping` is set, then finish the sends under way and record them."""
        helpers = [
            asyncio.create_task(self._record_forever(), name="outbox-record"),
            asyncio.create_task(self._keep_leases(), name="outbox-leases"),
            asyncio.create_task(self._observe_forever(stopping), name="outbox-observe"),
        ]
        backoff = outage_backoff(0.25, 10.0)
        try:
            while not stopping.is_set():
                self.wakeup.clear()
                wait = await self._round(backoff)
                if wait > 0:
                    reason = await self.wakeup.wait(wait, stopping)
                    if reason == "poll" and not stopping.is_set():
                        reason = "due" if wait < self.settings.outbox_poll_seconds else "poll"
                    metrics.OUTBOX_WAKEUPS.labels(reason).inc()
            await self._finish(helpers[0])
        finally:
            self._closing = True
            for task in (*helpers, *self._sending.values()):
                task.cancel()
            await asyncio.gather(*helpers, *self._sending.values(), return_exceptions=True)
            self._mail_threads.shutdown(wait=False, cancel_futures=True)

    async def _finish(self, recorder: asyncio.Task[None]) -> None:
        """A graceful stop: hand back claims not started, let the sends under way end, record them."""
        self._closing = True
        waiting = [c for queues in (self._waiting, self._group_waiting) for queue in queues.values() for c in queue]
        self._waiting.clear()
        self._group_waiting.clear()
        metrics.WAITING.dec(len(waiting))
        if waiting:
            try:
                await asyncio.to_thread(self._release, waiting)
            except Exception as exc:  # their leases run out instead
                log.warning("handing back claims failed", extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
            for c in waiting:
                self._held.pop(c.id, None)
        self._finished_event.set()
        longest = max((self.deadline(c) for c in self._held.values()), default=0.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(recorder), longest + 5.0)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._observe)
