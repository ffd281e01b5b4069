"""Console session cookies and CSRF tokens: signed, bound to their session, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify.console.session import csrf_token, csrf_valid, decode_session, encode_session, new_session

KEY = "a-signing-key-for-the-tests-only"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_session_round_trips_and_refuses_tampering_another_key_and_expiry():
    session = new_session("7d0c5a2e-1f1b-4c55-9f00-000000000001", timedelta(hours=8), NOW)
    cookie = encode_session(KEY, session)
    assert decode_session(KEY, cookie, NOW) == session.__class__(
        session.key_id, session.nonce, datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    )
    other_key_id = cookie.replace("0001.", "0002.", 1)
    assert decode_session(KEY, other_key_id, NOW) is None
    assert decode_session("another-key", cookie, NOW) is None
    assert decode_session(KEY, cookie, NOW + timedelta(hours=8)) is None
    for broken in ("", "a.b.c", cookie + ".x", "...", "x" * 400):
        assert decode_session(KEY, broken, NOW) is None


def test_csrf_token_belongs_to_one_session():
    first, second = new_session("", timedelta(hours=1), NOW), new_session("", timedelta(hours=1), NOW)
    token = csrf_token(KEY, first)
    assert csrf_valid(KEY, first, token)
    assert not csrf_valid(KEY, second, token)
    assert not csrf_valid(KEY, first, None)
    assert not csrf_valid(KEY, first, "")
    assert token not in encode_session(KEY, first)  # the cookie does not carry the form token


def test_a_users_session_names_the_user_and_no_key():
    session = new_session("user:7d0c5a2e-1f1b-4c55-9f00-000000000001", timedelta(hours=8), NOW)
    decoded = decode_session(KEY, encode_session(KEY, session), NOW)
    assert decoded == session
    assert (decoded.user_id, decoded.key_id) == ("7d0c5a2e-1f1b-4c55-9f00-000000000001", "")
    key_session = new_session("7d0c5a2e-1f1b-4c55-9f00-000000000001", timedelta(hours=8), NOW)
    assert (key_session.user_id, key_session.key_id) == ("", "7d0c5a2e-1f1b-4c55-9f00-000000000001")
    assert decode_session(KEY, encode_session(KEY, session).replace("user:", "admin:", 1), NOW) is None
