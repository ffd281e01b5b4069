import hashlib

import pytest

from shared.events import Classification
from shared.service_keys import bearer_token, find_key, hash_key, parse_keys


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_entries_carry_name_scopes_and_clearance_in_any_order():
    keys = parse_keys(
        f"analysts={digest('a')}:ingest+read, {digest('b').upper()}:government, {digest('c')}:government:read"
    )
    assert [k.name for k in keys] == ["analysts", f"key{digest('b')[:8]}", f"key{digest('c')[:8]}"]
    assert keys[0].scopes == {"ingest", "read"}
    assert keys[0].clearance is Classification.PUBLIC
    assert keys[1].scopes == frozenset()
    assert keys[1].clearance is Classification.GOVERNMENT
    assert keys[2].scopes == {"read"}


@pytest.mark.parametrize(
    "entry",
    [
        "plain-secret:ingest",
        f"{digest('x')}:ingest:read",
        f"{digest('x')}:Secret!",
        f"{digest('x')}:secret",
        f"bad name={digest('x')}:ingest",
        f"{digest('x')}:public:ingest:restricted",
    ],
)
def test_a_bad_entry_is_refused_by_position_without_echoing_it(entry):
    with pytest.raises(ValueError, match="entry 2") as raised:
        parse_keys(f"{digest('ok')}:ingest,{entry}")
    assert "plain-secret" not in str(raised.value)


def test_a_presented_key_is_found_only_by_its_own_digest():
    keys = parse_keys(f"{hash_key('right')}:ingest,{hash_key('other')}:read")
    assert find_key("right", keys) is keys[0]
    assert find_key("other", keys) is keys[1]
    assert find_key("wrong", keys) is None
    assert find_key(None, keys) is None
    assert find_key("", keys) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer ", None), (None, None)],
)
def test_bearer_token_is_read_from_the_header(header, token):
    assert bearer_token(header) == token


def test_repr_shows_no_digest():
    key = parse_keys(f"{digest('k')}:ingest")[0]
    assert digest("k") not in repr(key)
    assert digest("k")[:8] not in repr(key).replace(key.name, "")


def test_a_key_is_cleared_for_its_own_level_and_those_below_only():
    (restricted,) = parse_keys(f"analysts={digest('r')}:ingest:restricted")
    assert [restricted.cleared_for(c) for c in Classification] == [True, True, False]


def test_a_configured_digest_and_a_stored_key_hash_are_the_same_sha256_hex():
    # FIPS 180-2 test vector for "abc": what `sha256sum` prints, so operators can make digests with it.
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
