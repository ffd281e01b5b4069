"""The seen-keys store survives a restart; API keys are parsed from digests and compared safely."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from services.ingest.api import authenticate
from services.ingest.fetch import Validators
from services.ingest.seen import SeenStore
from shared.service_keys import parse_keys


def test_seen_keys_and_validators_survive_reopening_the_store(tmp_path):
    store = SeenStore(tmp_path / "seen.sqlite3")
    store.record(["a|gallium|2023-08-01", "b"])
    store.set_validators("feed", Validators('"v1"', "Mon, 03 Jul 2023 09:00:00 GMT"))
    store.close()
    reopened = SeenStore(tmp_path / "seen.sqlite3")
    assert reopened.seen(["a|gallium|2023-08-01", "b", "c"]) == {"a|gallium|2023-08-01", "b"}
    assert reopened.validators("feed") == Validators('"v1"', "Mon, 03 Jul 2023 09:00:00 GMT")
    assert reopened.validators("other") == Validators()
    reopened.close()


def test_keys_a_store_wrote_as_bytes_are_found_and_kept_as_the_same_blobs(tmp_path):
    # Earlier versions bound digests as bytes; the store binds bytearrays. Both are the same BLOB to SQLite.
    path, old, new = tmp_path / "seen.sqlite3", "old|gallium|2023-08-01", "new"
    SeenStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO seen VALUES (?, 0)", (hashlib.sha256(old.encode()).digest(),))
    db.close()
    store = SeenStore(path)
    assert store.seen([old, new]) == {old}
    store.record([old, new])
    store.close()
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT digest, typeof(digest) FROM seen").fetchall()
    db.close()
    assert sorted(rows) == sorted((hashlib.sha256(k.encode()).digest(), "blob") for k in (old, new))


def test_api_keys_are_digests_with_scopes_and_an_optional_name():
    d1, d2 = hashlib.sha256(b"k1").hexdigest(), hashlib.sha256(b"k2").hexdigest()
    keys = parse_keys(f"{d1}:ingest, analysts={d2.upper()}:ingest+read")
    assert keys[0].scopes == {"ingest"}
    assert keys[0].name == f"key{d1[:8]}"
    assert keys[1].name == "analysts"
    assert keys[1].scopes == {"ingest", "read"}


def test_a_malformed_key_entry_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="entry 2") as err:
        parse_keys(f"{hashlib.sha256(b'k').hexdigest()}:ingest,plain-secret:ingest")
    assert "plain-secret" not in str(err.value)


def test_bearer_key_authenticates_only_against_its_digest():
    keys = parse_keys(f"{hashlib.sha256(b'right').hexdigest()}:ingest")
    assert authenticate("Bearer right", keys) is keys[0]
    assert authenticate("Bearer wrong", keys) is None
    assert authenticate("Basic right", keys) is None
    assert authenticate(None, keys) is None
