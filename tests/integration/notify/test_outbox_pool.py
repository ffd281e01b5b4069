"""The outbox on real loopback receivers and a real database: woken on enqueue (in process and, on PostgreSQL,
across replicas), never held back by a slow or hanging receiver, each claim recorded exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import ThreadingHTTPServer

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.engine import make_url

from services.notify.delivery.outbox import OutboxWorker
from services.notify.delivery.outcome import Outcome
from services.notify.delivery.wakeup import LISTENER_NAME
from services.notify.settings import NotifySettings
from services.notify.store import models
from services.notify.store.db import unit_of_work
from services.notify.store.outbox import DeliveryPolicy, claim_due, record_outcome
from services.notify.worker import Notifier, smtp_from
from tests.conftest import free_port
from tests.eventually import eventually
from tests.integration.notify.conftest import HttpReceiver, _handler_for
from tests.integration.notify.world import add_org, add_webhook, notifier_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def slow_receiver() -> Iterator[HttpReceiver]:
    """A second real HTTP receiver, which answers every POST only after 10 s."""
    receiver = HttpReceiver(free_port(), delay_seconds=10.0)
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), _handler_for(receiver))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def outbox_settings(database_url: str, smtp_inbox, **overrides: object) -> NotifySettings:
    """The outbox alone: no broker is needed, the poll is long so that only a wake-up explains a quick send."""
    values: dict[str, object] = {"outbox_poll_seconds": 30.0, **overrides}
    return notifier_settings("127.0.0.1:1", "unused", database_url, smtp_inbox, **values)


def enqueue(sessions, channel_id: str, count: int, label: str) -> list[str]:
    """Put notifications for a channel into the outbox, due now, as dispatch would."""
    with unit_of_work(sessions) as s:
        channel = s.get(models.Channel, channel_id)
        rows = [
            models.Notification(
                organisation_id=channel.organisation_id,
                channel_id=channel_id,
                kind="alert",
                group_key=f"immediate:{channel_id}:{label}:{n}",
                payload={"label": label, "n": n, "alerts": []},
            )
            for n in range(count)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def wakeups(reason: str) -> float:
    return REGISTRY.get_sample_value("mews_notify_outbox_wakeups_total", {"reason": reason}) or 0.0


def reconnect_handled(notifier: Notifier, reconnects_before: float) -> bool:
    """The listener's wake-up after a reconnect was counted and the round it started is over: the outbox is
    parked again (it counts a wake-up only after leaving `wait`), so the next send is woken by something else."""
    return wakeups("reconnect") > reconnects_before and notifier.outbox_wakeup.waiting


def webhook_channel(sessions, name: str, url: str) -> str:
    with unit_of_work(sessions) as s:
        return add_webhook(s, add_org(s, name), url).id


@contextlib.asynccontextmanager
async def delivering(notifier: Notifier):
    """The notifier's outbox loop alone, stopped gracefully on exit."""
    task = asyncio.create_task(notifier.deliver())
    try:
        yield task
    finally:
        notifier.stop()
        await asyncio.wait_for(task, 30)


def attempts_by_notification(sessions) -> dict[str, list[tuple[str, int | None]]]:
    with unit_of_work(sessions) as s:
        out: dict[str, list[tuple[str, int | None]]] = {}
        for a in s.scalars(select(models.DeliveryAttempt).order_by(models.DeliveryAttempt.attempted_at)):
            out.setdefault(a.notification_id, []).append((a.outcome, a.status_code))
        return out


def statuses(sessions) -> dict[str, str]:
    with unit_of_work(sessions) as s:
        return {n.id: n.status for n in s.scalars(select(models.Notification))}


async def test_a_slow_receiver_never_delays_a_fast_one_and_its_sends_are_recorded_once(
    migrated_database_url, db_sessions, smtp_inbox, http_receiver, slow_receiver
):
    settings = outbox_settings(migrated_database_url, smtp_inbox, webhook_timeout_seconds=30)
    slow = webhook_channel(db_sessions, "Slow BV", slow_receiver.url("/slow"))
    fast = webhook_channel(db_sessions, "Fast BV", http_receiver.url("/fast"))
    slow_ids = enqueue(db_sessions, slow, 3, "slow")
    fast_ids = enqueue(db_sessions, fast, 3, "fast")
    # A lease far shorter than the slow answer: only renewal keeps the slow sends from being claimed again.
    notifier = Notifier(settings, db_sessions, lease=timedelta(seconds=2))

    async with delivering(notifier):
        await eventually(lambda: len(http_receiver.delivered("/fast")) == 3, within=5, what="the first fast ones")
        fast_ids += enqueue(db_sessions, fast, 5, "fast-later")
        notifier.wake_outbox()
        await eventually(lambda: len(http_receiver.delivered("/fast")) == 8, within=5, what="the later fast ones")
        # Every fast notification went out while the slow receiver had not answered a single one.
        assert slow_receiver.requests == []
        await eventually(
            lambda: all(statuses(db_sessions)[i] == "delivered" for i in slow_ids + fast_ids),
            within=30,
            what="the slow ones recorded",
        )

    assert len(slow_receiver.delivered("/slow")) == 3  # sent once each, though each send outlived the lease 5 times
    assert len({r.headers["webhook-id"] for r in slow_receiver.requests}) == 3
    attempts = attempts_by_notification(db_sessions)
    assert {i: attempts[i] for i in slow_ids + fast_ids} == {i: [("delivered", 200)] for i in slow_ids + fast_ids}


async def test_an_enqueue_wakes_the_outbox_long_before_its_poll(
    migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = outbox_settings(migrated_database_url, smtp_inbox)
    channel = webhook_channel(db_sessions, "Woken BV", http_receiver.url("/woken"))
    notifier = Notifier(settings, db_sessions)

    async with delivering(notifier):
        # The first round found nothing; the next poll is 30 s away.
        await eventually(lambda: notifier.outbox_wakeup.waiting, within=5, what="the outbox parked")
        enqueue(db_sessions, channel, 1, "woken")
        notifier.wake_outbox()
        await eventually(lambda: http_receiver.delivered("/woken"), within=5, what="the woken delivery")


async def test_a_receiver_that_never_answers_is_cut_off_at_the_deadline_and_retried(
    migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    settings = outbox_settings(migrated_database_url, smtp_inbox, webhook_timeout_seconds=0.5)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (the backlog) and never says a word
    try:
        hung = webhook_channel(db_sessions, "Hung BV", f"http://127.0.0.1:{silent.getsockname()[1]}/hung")
        fine = webhook_channel(db_sessions, "Fine BV", http_receiver.url("/fine"))
        [hung_id] = enqueue(db_sessions, hung, 1, "hung")
        enqueue(db_sessions, fine, 1, "fine")
        notifier = Notifier(settings, db_sessions)
        async with delivering(notifier):
            await eventually(lambda: http_receiver.delivered("/fine"), within=5, what="the other receiver's")
            await eventually(
                lambda: attempts_by_notification(db_sessions).get(hung_id), within=10, what="the hung attempt recorded"
            )
    finally:
        silent.close()

    [(outcome, code)] = attempts_by_notification(db_sessions)[hung_id][:1]
    assert (outcome, code) == ("retry", None)
    with unit_of_work(db_sessions) as s:
        n = s.get(models.Notification, hung_id)
    assert n.last_error.startswith("timeout")


async def test_a_claim_taken_over_after_its_lease_ran_out_is_recorded_once(db_sessions):
    with unit_of_work(db_sessions) as s:
        channel = add_webhook(s, add_org(s, "Leased BV"), "https://hooks.example.org/x")
        channel_id = channel.id
    [notification_id] = enqueue(db_sessions, channel_id, 1, "leased")
    policy = DeliveryPolicy(lease=timedelta(seconds=30))
    start = models.utcnow()
    with unit_of_work(db_sessions) as s:
        [first] = claim_due(s, start, policy)
    with unit_of_work(db_sessions) as s:
        assert claim_due(s, start + timedelta(seconds=29), policy) == []  # still held
        [second] = claim_due(s, start + timedelta(seconds=31), policy)  # the lease ran out: taken over
    assert (first.attempts, second.attempts) == (1, 2)
    assert first.webhook_id == second.webhook_id

    with unit_of_work(db_sessions) as s:
        late = record_outcome(s, first, Outcome("delivered", 200), start + timedelta(seconds=40), policy)
    with unit_of_work(db_sessions) as s:
        current = record_outcome(s, second, Outcome("delivered", 204), start + timedelta(seconds=41), policy)
    assert (late, current) == ("superseded", "delivered")
    assert attempts_by_notification(db_sessions) == {notification_id: [("delivered", 204)]}


# --- PostgreSQL: replicas wake each other through LISTEN/NOTIFY ---------------------------------------------


def _admin(database_url: str) -> dict:
    url = make_url(database_url)
    return {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
        "autocommit": True,
    }


def listener_pids(database_url: str) -> list[int]:
    with psycopg.connect(**_admin(database_url)) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
                (LISTENER_NAME,),
            )
        ]


async def test_an_enqueue_in_one_replica_wakes_the_outbox_of_another_even_after_its_connection_died(
    migrated_database_url, db_sessions, smtp_inbox, http_receiver
):
    if make_url(migrated_database_url).get_backend_name() != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite one worker runs")
    settings = outbox_settings(migrated_database_url, smtp_inbox)
    channel = webhook_channel(db_sessions, "Replicated BV", http_receiver.url("/replica"))
    outbox_replica = Notifier(settings, db_sessions)
    dispatch_replica = Notifier(settings, db_sessions)  # never runs its outbox: only its NOTIFY can help

    try:
        async with delivering(outbox_replica):
            [listener] = await eventually(
                lambda: listener_pids(migrated_database_url), within=10, what="the outbox listening"
            )
            enqueue(db_sessions, channel, 1, "first")
            dispatch_replica.wake_outbox()
            await eventually(
                lambda: len(http_receiver.delivered("/replica")) == 1, within=5, what="the other replica's delivery"
            )

            reconnects = wakeups("reconnect")
            with psycopg.connect(**_admin(migrated_database_url)) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (listener,))
            [again] = await eventually(
                lambda: [p for p in listener_pids(migrated_database_url) if p != listener],
                within=15,
                what="the listener reconnected",
            )
            assert again != listener
            # The wake-up of the reconnect passed: the next delivery is NOTIFY's.
            await eventually(
                lambda: reconnect_handled(outbox_replica, reconnects), within=10, what="the reconnect's round over"
            )
            enqueue(db_sessions, channel, 1, "second")
            dispatch_replica.wake_outbox()
            await eventually(
                lambda: len(http_receiver.delivered("/replica")) == 2,
                within=5,
                what="a delivery woken through the new connection",
            )
    finally:
        await dispatch_replica.outbox_wakeup.aclose()


async def test_run_once_still_sends_a_round_for_tools(migrated_database_url, db_sessions, smtp_inbox, http_receiver):
    settings = outbox_settings(migrated_database_url, smtp_inbox)
    channel = webhook_channel(db_sessions, "Round BV", http_receiver.url("/round"))
    enqueue(db_sessions, channel, 2, "round")
    notifier = Notifier(settings, db_sessions)
    async with httpx.AsyncClient(trust_env=False) as http:
        worker = OutboxWorker(db_sessions, http, smtp_from(settings), notifier.check_target, settings)
        assert await worker.run_once() == 2
        assert await worker.run_once() == 0
    assert len(http_receiver.delivered("/round")) == 2
    assert set(statuses(db_sessions).values()) == {"delivered"}


@pytest.mark.slow
async def test_the_outbox_waits_out_postgresql_going_away_and_listens_again(
    stoppable_postgres, smtp_inbox, http_receiver
):
    from services.notify.store.db import create_db_engine, migrate, session_factory

    url, stop, start = stoppable_postgres.url, stoppable_postgres.stop, stoppable_postgres.start
    migrate(url)
    engine = create_db_engine(url)
    sessions = session_factory(engine)
    settings = outbox_settings(url, smtp_inbox)
    channel = webhook_channel(sessions, "Outage BV", http_receiver.url("/outage"))
    outbox_replica = Notifier(settings, sessions)
    dispatch_replica = Notifier(settings, sessions)
    try:
        async with delivering(outbox_replica) as task:
            [listener] = await eventually(lambda: listener_pids(url), within=10, what="the outbox listening")
            enqueue(sessions, channel, 1, "before")
            dispatch_replica.wake_outbox()
            await eventually(lambda: len(http_receiver.delivered("/outage")) == 1, within=5, what="before")

            reconnects, retries = wakeups("reconnect"), wakeups("due")
            await asyncio.to_thread(stop)
            outbox_replica.wake_outbox()  # a round that finds the database gone, and backs off
            # Two rounds after it failed, each backed off and tried again: the loop lives through the outage.
            await eventually(lambda: wakeups("due") >= retries + 2, within=10, what="two failed rounds retried")
            assert not task.done()
            await asyncio.to_thread(start)

            await eventually(lambda: listener_pids(url), within=30, what="the listener back")
            await eventually(
                lambda: reconnect_handled(outbox_replica, reconnects), within=30, what="the reconnect's round over"
            )
            enqueue(sessions, channel, 1, "after")
            dispatch_replica.wake_outbox()  # its NOTIFY connection died too: a fresh one carries it
            await eventually(lambda: len(http_receiver.delivered("/outage")) == 2, within=10, what="after")
            assert not task.done()
    finally:
        await dispatch_replica.outbox_wakeup.aclose()
        engine.dispose()
    assert set(statuses_of(url).values()) == {"delivered"}


def statuses_of(url: str) -> dict[str, str]:
    with psycopg.connect(**_admin(url)) as conn:
        return dict(conn.execute("SELECT id, status FROM notifications").fetchall())


class ConcurrencyProbe:
    """A real HTTP receiver that takes 0.2 s per POST and notes, per path, the most POSTs it held at once."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        self.most: dict[str, int] = {}
        self.now: dict[str, int] = {}
        self.bodies: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        probe = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with probe.lock:
                    probe.now[self.path] = probe.now.get(self.path, 0) + 1
                    probe.most[self.path] = max(probe.most.get(self.path, 0), probe.now[self.path])
                threading.Event().wait(0.2)
                with probe.lock:
                    probe.now[self.path] -= 1
                    probe.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str) -> list[dict]:
        import json

        with self.lock:
            return [json.loads(b) for p, b in self.bodies if p == path]


async def test_a_groups_notifications_go_out_one_after_another_in_order_and_other_groups_alongside(
    migrated_database_url, db_sessions, smtp_inbox
):
    probe = ConcurrencyProbe()
    try:
        settings = outbox_settings(migrated_database_url, smtp_inbox)
        one_group = webhook_channel(db_sessions, "One Group BV", probe.url("/one-group"))
        many_groups = webhook_channel(db_sessions, "Many Groups BV", probe.url("/many-groups"))
        with unit_of_work(db_sessions) as s:
            start = models.utcnow()
            for n in range(4):
                for channel_id, group in ((one_group, "immediate:g"), (many_groups, f"immediate:g{n}")):
                    s.add(
                        models.Notification(
                            organisation_id=s.get(models.Channel, channel_id).organisation_id,
                            channel_id=channel_id,
                            kind="alert",
                            group_key=group,
                            next_attempt_at=start + timedelta(milliseconds=n),
                            payload={"n": n, "alerts": []},
                        )
                    )
        async with delivering(Notifier(settings, db_sessions)):
            await eventually(
                lambda: len(probe.received("/one-group")) == 4 == len(probe.received("/many-groups")),
                within=10,
                what="all eight",
            )
    finally:
        probe.server.shutdown()
        probe.server.server_close()

    assert [b["n"] for b in probe.received("/one-group")] == [0, 1, 2, 3]
    assert probe.most["/one-group"] == 1
    assert probe.most["/many-groups"] > 1  # the same receiver takes other groups at once


async def test_two_gone_answers_in_one_batch_disable_the_channel_and_tell_the_admins_once(db_sessions):
    from services.notify.store.outbox import record_outcomes

    with unit_of_work(db_sessions) as s:
        org = add_org(s, "Twice Gone BV", admins=("admin@twice.test",))
        channel_id = add_webhook(s, org, "https://hooks.example.org/gone").id
    enqueue(db_sessions, channel_id, 2, "gone")
    policy = DeliveryPolicy()
    now = models.utcnow()
    with unit_of_work(db_sessions) as s:
        claims = claim_due(s, now, policy)
    gone = Outcome("gone", 410, "410 Gone: the receiver asked us to stop")
    with unit_of_work(db_sessions) as s:
        states = record_outcomes(s, [(c, gone, now) for c in claims], policy)

    assert states == ["cancelled", "cancelled"]
    with unit_of_work(db_sessions) as s:
        notices = s.scalars(select(models.Notification).where(models.Notification.kind == "admin_notice")).all()
        assert s.get(models.Channel, channel_id).enabled is False
    assert [n.payload["recipients"] for n in notices] == [["admin@twice.test"]]
