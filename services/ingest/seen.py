"""The seen-keys store: which observations have been published, and each source's last validators.

A SQLite file under the state directory, so de-duplication survives restarts. Keys are stored as sha256
digests (fixed size, whatever a feed puts in a title). A key is recorded only after the broker has
acknowledged its event, so a crash in between can repeat an event (with the same CloudEvents id, which
consumers de-duplicate on) but never lose one.

Recording is off the caller's path: `record` puts the digests in memory, where `seen` finds them at once, and a
writer thread of the store writes them to the file in one transaction per round (a batch of 1,000 random
digests dirties about as many pages, and the commit that fills the write-ahead log waits for a checkpoint's
fsync: tens of milliseconds a batch that a request would otherwise wait for). Rounds are at least
`WRITE_EVERY` apart: random digests land on random pages, so a round's cost grows with the pages it touches,
not with its keys, and a burst's keys gathered over a second share their pages. `close` writes what is left. A
crash before the writer's commit is the crash above: those events may be published again, never lost.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from services.ingest import metrics
from services.ingest.fetch import Validators

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (digest BLOB PRIMARY KEY, first_seen REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS validators (source TEXT PRIMARY KEY, etag TEXT NOT NULL, last_modified TEXT NOT NULL);
"""
RETRY_SECONDS = 1.0  # after a failed write (disk full, file locked past the busy timeout)
ATTEMPTS_AT_CLOSE = 3  # failed writes a closing store tries again before it gives up on the keys left
WRITE_EVERY = 1.0  # seconds from one writer round to the next, at least (a close does not wait for it)


@functools.lru_cache(maxsize=16384)  # a published key is digested when checked and again when recorded
def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _connect(path: Path) -> sqlite3.Connection:
    # WAL lets the API process and a poller process share the file; busy_timeout rides out their overlap.
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


class SeenStore:
    """Seen keys and source validators in one SQLite file; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = _connect(path)  # reads, and the validators
        self._lock = threading.Lock()
        with self._lock:
            self._db.executescript(_SCHEMA)
        self._pending: dict[bytes, float] = {}  # digest -> first seen, until the writer has committed it
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._writer_db = _connect(path)
        self._writer = threading.Thread(target=self._write_pending, name="seen-store-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Write the keys still in memory, then close the file."""
        self._closing.set()
        self._wake.set()
        self._writer.join()
        with self._lock:
            self._db.close()

    def seen(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` already recorded."""
        by_digest = {_digest(k): k for k in keys}
        if not by_digest:
            return set()
        # Memory first: the writer drops a digest from it only after its commit, so a digest not found here
        # is either in the file by now or was never recorded.
        with self._pending_lock:
            found = {key for digest, key in by_digest.items() if digest in self._pending}
        # Bound as bytearrays: sqlite3 passes those straight through, where bytes first fail a look-up for an
        # adapter that costs a formatted AttributeError each (about half the binding's cost).
        digests = [bytearray(d) for d, key in by_digest.items() if key not in found]
        with self._lock:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT digest FROM seen WHERE digest IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
                found.update(by_digest[r[0]] for r in rows)
        return found

    def record(self, keys: Iterable[str]) -> None:
        """Remember keys as published: at once for `seen`, in the file within the writer's next round."""
        now = time.time()
        digests = [_digest(k) for k in keys]
        if not digests:
            return
        with self._pending_lock:
            for digest in digests:
                self._pending.setdefault(digest, now)
            metrics.SEEN_PENDING.set(len(self._pending))
        self._wake.set()

    def _write_pending(self) -> None:
        """The writer thread: everything recorded since its last round, in one transaction, until closed."""
        failed_closing = 0
        last_round = -WRITE_EVERY
        while True:
            self._wake.wait()
            self._closing.wait(last_round + WRITE_EVERY - time.monotonic())  # gather until the round is due
            self._wake.clear()
            last_round = time.monotonic()
            with self._pending_lock:
                rows = sorted(self._pending.items())  # in key order the inserts walk the tree's pages once
            if rows:
                try:
                    self._writer_db.execute("BEGIN")
                    self._writer_db.executemany(
                        "INSERT OR IGNORE INTO seen (digest, first_seen) VALUES (?, ?)",
                        ((bytearray(digest), first_seen) for digest, first_seen in rows),  # bound as in `seen`
                    )
                    self._writer_db.execute("COMMIT")
                except sqlite3.Error as exc:
                    metrics.SEEN_WRITE_FAILURES.inc()
                    if self._writer_db.in_transaction:
                        self._writer_db.execute("ROLLBACK")
                    failed_closing += self._closing.is_set()
                    if failed_closing >= ATTEMPTS_AT_CLOSE:
                        log.error(
                            "seen keys not written at close: a restart may publish them again (same ids)",
                            extra={"keys": len(rows), "error": repr(exc)},
                        )
                        break
                    log.warning("seen keys not written yet, retrying", extra={"keys": len(rows), "error": repr(exc)})
                    time.sleep(RETRY_SECONDS)
                    self._wake.set()
                    continue
                with self._pending_lock:
                    for digest, _ in rows:
                        del self._pending[digest]
                    left = len(self._pending)
                    metrics.SEEN_PENDING.set(left)
                if left:
                    self._wake.set()
            if self._closing.is_set() and not self._wake.is_set():
                break
        self._writer_db.close()

    def validators(self, source: str) -> Validators:
        """The ETag and Last-Modified last seen for a source (empty when never fetched)."""
        with self._lock:
            row = self._db.execute("SELECT etag, last_modified FROM validators WHERE source = ?", (source,)).fetchone()
        return Validators(*row) if row else Validators()

    def set_validators(self, source: str, validators: Validators) -> None:
        """Remember a source's validators once everything fetched with them is published."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO validators (source, etag, last_modified) VALUES (?, ?, ?)",
                (source, validators.etag, validators.last_modified),
            )

    def forget_validators(self, source: str) -> None:
        """Make the next fetch of a source unconditional (backfill)."""
        with self._lock:
            self._db.execute("DELETE FROM validators WHERE source = ?", (source,))
