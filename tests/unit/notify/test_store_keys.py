"""API keys are stored hashed, found by prefix, refused once revoked; acknowledgement tokens are HMAC-bound."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.ack_links import AckClaim, sign_ack_token, verify_ack_token
from services.notify.store import keys, organisations
from services.notify.store.db import create_db_engine, migrate, session_factory
from services.notify.store.models import ApiKey


@pytest.fixture
def sessions(tmp_path):
    url = f"sqlite:///{tmp_path / 'notify.db'}"
    migrate(url)
    engine = create_db_engine(url)
    yield session_factory(engine)
    engine.dispose()


def test_key_hash_is_plain_sha256_hex() -> None:
    # FIPS 180-2 test vector for "abc".
    assert keys.hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_issued_key_is_stored_only_as_its_hash(sessions) -> None:
    with sessions() as session:
        org = organisations.create_organisation(session, name="Acme", kind="company")
        key, plaintext = keys.issue_api_key(session, org.id, name="ci", role="admin")
        session.commit()
    assert plaintext.startswith("mews_")
    assert len(plaintext) == 5 + 40
    with sessions() as session:
        row = session.get(ApiKey, key.id)
        assert row.key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
        assert row.prefix == plaintext[5:13]
        assert plaintext not in {str(v) for v in vars(row).values()}


def test_a_key_is_found_by_its_secret_and_not_by_a_near_miss_or_after_revocation(sessions) -> None:
    now = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    with sessions() as session:
        org = organisations.create_organisation(session, name="Acme", kind="company")
        key, plaintext = keys.issue_api_key(session, org.id, name="ci")
        assert keys.find_active_key(session, plaintext, now).id == key.id
        assert keys.find_active_key(session, plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"), now) is None
        assert keys.find_active_key(session, plaintext[5:], now) is None
        assert keys.find_active_key(session, "", now) is None
        keys.revoke_api_key(session, org.id, key.id, now)
        assert keys.find_active_key(session, plaintext, now) is None


def test_last_used_is_recorded_at_most_once_a_minute(sessions) -> None:
    t0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    with sessions() as session:
        org = organisations.create_organisation(session, name="Acme", kind="company")
        key, plaintext = keys.issue_api_key(session, org.id, name="ci")
        keys.find_active_key(session, plaintext, t0)
        keys.find_active_key(session, plaintext, t0 + timedelta(seconds=59))
        assert key.last_used_at == t0
        keys.find_active_key(session, plaintext, t0 + timedelta(seconds=60))
        assert key.last_used_at == t0 + timedelta(seconds=60)


def test_revoking_another_organisations_key_is_not_found(sessions) -> None:
    from services.notify.store.errors import NotFound

    with sessions() as session:
        a = organisations.create_organisation(session, name="A", kind="company")
        b = organisations.create_organisation(session, name="B", kind="company")
        key, _ = keys.issue_api_key(session, a.id, name="ci")
        with pytest.raises(NotFound):
            keys.revoke_api_key(session, b.id, key.id)
        assert key.revoked_at is None


KEY = "link-key-0123456789-0123456789-0123456789"
EXPIRES = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_ack_token_carries_an_hmac_sha256_over_alert_organisation_and_expiry() -> None:
    token = sign_ack_token(KEY, "alert-1", "org-1", EXPIRES)
    expected_mac = (
        base64.urlsafe_b64encode(
            hmac.new(KEY.encode(), f"ack|alert-1|org-1|{int(EXPIRES.timestamp())}".encode(), hashlib.sha256).digest()
        )
        .rstrip(b"=")
        .decode()
    )
    assert token == f"alert-1.org-1.{int(EXPIRES.timestamp())}.{expected_mac}"


def test_ack_token_is_valid_until_it_expires() -> None:
    token = sign_ack_token(KEY, "alert-1", "org-1", EXPIRES)
    assert verify_ack_token(KEY, token, EXPIRES - timedelta(seconds=1)) == AckClaim("alert-1", "org-1", EXPIRES)
    assert verify_ack_token(KEY, token, EXPIRES) == "expired"


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: t.replace("alert-1", "alert-2"), "bad signature"),
        (lambda t: t.replace("org-1", "org-2"), "bad signature"),
        (lambda t: t.replace(str(int(EXPIRES.timestamp())), str(int(EXPIRES.timestamp()) + 3600)), "bad signature"),
        (lambda t: t[:-2] + ("xx" if not t.endswith("xx") else "yy"), "bad signature"),
        (lambda t: t.rsplit(".", 1)[0], "malformed token"),
        (lambda t: "alert-1.org-1.soon.mac", "malformed token"),
    ],
)
def test_a_changed_ack_token_is_refused(mangle, reason: str) -> None:
    token = sign_ack_token(KEY, "alert-1", "org-1", EXPIRES)
    assert verify_ack_token(KEY, mangle(token), EXPIRES - timedelta(days=1)) == reason


def test_an_ack_token_signed_with_another_key_is_refused() -> None:
    token = sign_ack_token("another-key-0123456789-0123456789-012345", "alert-1", "org-1", EXPIRES)
    assert verify_ack_token(KEY, token, EXPIRES - timedelta(days=1)) == "bad signature"
