"""The seen-keys store: which observations have been published, and each source's last validators.

A SQLite file under the state directory, so de-duplication survives restarts. Keys are stored as sha256
digests (fixed size, whatever a feed puts in a title). A key is written only after the broker has
acknowledged its event, so a crash in between can repeat an event (with the same CloudEvents id, which
consumers de-duplicate on) but never lose one.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from services.ingest.fetch import Validators

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (digest BLOB PRIMARY KEY, first_seen REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS validators (source TEXT PRIMARY KEY, etag TEXT NOT NULL, last_modified TEXT NOT NULL);
"""


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class SeenStore:
    """Seen keys and source validators in one SQLite file; safe to share between threads of one process."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # WAL lets the API process and a poller process share the file; busy_timeout rides out their overlap.
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def seen(self, keys: Iterable[str]) -> set[str]:
        """Those of `keys` already recorded."""
        by_digest = {_digest(k): k for k in keys}
        if not by_digest:
            return set()
        found: set[str] = set()
        digests = list(by_digest)
        with self._lock:
            for start in range(0, len(digests), 500):
                chunk = digests[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT digest FROM seen WHERE digest IN ({marks})",  # noqa: S608
                                        chunk).fetchall()
                found.update(by_digest[r[0]] for r in rows)
        return found

    def record(self, keys: Iterable[str]) -> None:
        """Remember keys as published."""
        now = time.time()
        rows = [(_digest(k), now) for k in keys]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR IGNORE INTO seen (digest, first_seen) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def validators(self, source: str) -> Validators:
        """The ETag and Last-Modified last seen for a source (empty when never fetched)."""
        with self._lock:
            row = self._db.execute("SELECT etag, last_modified FROM validators WHERE source = ?",
                                   (source,)).fetchone()
        return Validators(*row) if row else Validators()

    def set_validators(self, source: str, validators: Validators) -> None:
        """Remember a source's validators once everything fetched with them is published."""
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO validators (source, etag, last_modified) VALUES (?, ?, ?)",
                             (source, validators.etag, validators.last_modified))

    def forget_validators(self, source: str) -> None:
        """Make the next fetch of a source unconditional (backfill)."""
        with self._lock:
            self._db.execute("DELETE FROM validators WHERE source = ?", (source,))
