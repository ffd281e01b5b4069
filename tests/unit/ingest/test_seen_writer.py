"""The seen-store's writer thread: keys are seen at once, reach the file without a close, survive a failed write."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from services.ingest import seen as seen_module
from services.ingest.seen import SeenStore
from tests.eventually import eventually_blocking


def test_a_recorded_key_is_seen_at_once_and_reaches_the_file_for_another_process(tmp_path: Path):
    store = SeenStore(tmp_path / "seen.sqlite3")
    other = SeenStore(tmp_path / "seen.sqlite3")  # as a poller process sharing the file would open it
    try:
        store.record([f"price|{i}" for i in range(2000)])
        assert len(store.seen([f"price|{i}" for i in range(2001)])) == 2000
        eventually_blocking(
            lambda: len(other.seen(["price|0", "price|1999"])) == 2, within=10, every=0.01, what="the keys in the file"
        )
        assert other.seen(["price|0", "price|1999", "price|2000"]) == {"price|0", "price|1999"}
    finally:
        store.close()
        other.close()


class _FailingOnce(sqlite3.Connection):
    """A connection whose first batch insert fails, as a full disk or a lock held too long would make it."""

    failed = 0

    def executemany(self, sql: str, rows):  # type: ignore[override]
        if type(self).failed == 0:
            type(self).failed += 1
            raise sqlite3.OperationalError("database or disk is full")
        return super().executemany(sql, rows)


def test_a_failed_write_keeps_the_keys_seen_and_is_retried_until_they_are_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "seen.sqlite3"
    connect = seen_module._connect
    made = []

    def writer_fails_once(p: Path) -> sqlite3.Connection:
        made.append(p)
        if len(made) == 1:
            return connect(p)  # the store's reading connection
        db = sqlite3.connect(p, check_same_thread=False, isolation_level=None, timeout=10, factory=_FailingOnce)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    monkeypatch.setattr(seen_module, "_connect", writer_fails_once)
    monkeypatch.setattr(seen_module, "RETRY_SECONDS", 0.01)
    before = seen_module.metrics.SEEN_WRITE_FAILURES._value.get()
    store = SeenStore(path)
    store.record(["news|a", "news|b"])
    assert store.seen(["news|a", "news|b", "news|c"]) == {"news|a", "news|b"}
    store.close()
    assert _FailingOnce.failed == 1
    assert seen_module.metrics.SEEN_WRITE_FAILURES._value.get() == before + 1
    monkeypatch.setattr(seen_module, "_connect", connect)
    reopened = SeenStore(path)
    assert reopened.seen(["news|a", "news|b", "news|c"]) == {"news|a", "news|b"}
    reopened.close()


def test_keys_recorded_soon_after_a_round_wait_for_the_next_one_and_a_close_writes_them_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(seen_module, "WRITE_EVERY", 60.0)
    path = tmp_path / "seen.sqlite3"
    store = SeenStore(path)
    other = SeenStore(path)
    try:
        store.record(["price|first"])
        eventually_blocking(lambda: other.seen(["price|first"]) == {"price|first"}, within=10, every=0.01, what="round")
        store.record(["price|later"])
        assert store.seen(["price|later"]) == {"price|later"}
        time.sleep(0.5)  # without the gathering, the writer's round would have written it by now
        assert other.seen(["price|later"]) == set()  # gathered for a round that is a minute away
        started = time.monotonic()
        store.close()
        assert time.monotonic() - started < 10
        assert other.seen(["price|later"]) == {"price|later"}
    finally:
        other.close()
