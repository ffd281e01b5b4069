"""The outbox's wake-up call and its per-receiver shares, without a database or a receiver."""

from __future__ import annotations

import asyncio
import threading

import httpx

from services.notify.delivery.outbox import DeliveryLimits, OutboxWorker
from services.notify.delivery.wakeup import OutboxWakeup, conninfo_of
from services.notify.settings import NotifySettings
from services.notify.store.outbox import Claimed
from tests.eventually import eventually


async def test_wait_returns_at_once_when_woken_and_says_why():
    wakeup = OutboxWakeup()
    wakeup.notify()
    assert await wakeup.wait(30, asyncio.Event()) == "signal"
    wakeup.clear()
    assert await wakeup.wait(0.01, asyncio.Event()) == "poll"


async def test_a_wake_up_from_another_thread_reaches_the_waiting_loop():
    wakeup = OutboxWakeup()
    waiter = asyncio.create_task(wakeup.wait(30, asyncio.Event()))
    await eventually(lambda: wakeup.waiting, what="the waiter parked")  # and knowing its loop
    threading.Thread(target=wakeup.notify).start()
    assert await asyncio.wait_for(waiter, 5) == "signal"


async def test_stopping_ends_the_wait():
    stopping = asyncio.Event()
    wakeup = OutboxWakeup()
    waiter = asyncio.create_task(wakeup.wait(30, stopping))
    await eventually(lambda: wakeup.waiting, what="the waiter parked")
    stopping.set()
    assert await asyncio.wait_for(waiter, 5) == "poll"


async def test_without_postgresql_nothing_is_listened_to_or_notified():
    wakeup = OutboxWakeup("sqlite:///notify.db")
    assert not wakeup.shared
    await asyncio.wait_for(wakeup.listen(asyncio.Event()), 1)  # returns at once


def test_the_listen_connection_uses_the_database_url_credentials():
    info = conninfo_of("postgresql+psycopg://mews:s%40cret@db.internal:5433/notify?sslmode=require")
    assert info is not None
    parts = dict(p.split("=", 1) for p in info.split())
    assert parts == {
        "user": "mews",
        "password": "s@cret",
        "host": "db.internal",
        "port": "5433",
        "dbname": "notify",
        "sslmode": "require",
    }
    assert conninfo_of("sqlite:///var/notify.db") is None


def claim(kind: str, target: str, channel_kind: str = "webhook") -> Claimed:
    return Claimed("n1", "org", kind, "msg_1", {}, 1, "ch", channel_kind, target, "whsec_x", "en", None)


async def test_a_receiver_is_its_host_and_port_and_email_is_the_smtp_server():
    settings = NotifySettings(smtp_host="mail.internal", smtp_port=2525)
    from services.notify.worker import smtp_from

    async with httpx.AsyncClient() as http:
        worker = OutboxWorker(
            None,
            http,
            smtp_from(settings),
            lambda url: None,
            settings,  # type: ignore[arg-type]
            limits=DeliveryLimits(concurrency=4, per_target=2),
        )
        assert worker.target_of(claim("alert", "https://Hooks.Example.org/a")) == "hooks.example.org:443"
        assert worker.target_of(claim("alert", "https://hooks.example.org:8443/b")) == "hooks.example.org:8443"
        assert worker.target_of(claim("alert", "http://10.0.0.5/c")) == "10.0.0.5:80"
        assert worker.target_of(claim("alert", "ops@x.test", "email")) == "smtp:mail.internal:2525"
        assert worker.target_of(claim("admin_notice", "https://hooks.example.org/a")) == "smtp:mail.internal:2525"
