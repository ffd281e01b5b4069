"""JSON lists of records, read the same way for prices, trade and lead times."""

import pytest

from services.ingest.observation import Malformed
from services.ingest.sources.table import looks_like_json, read_json_records


def test_objects_come_with_their_bytes_and_other_entries_are_set_aside_with_their_index():
    out = list(read_json_records(b'{"data": [{"a": 1}, 7, {"b": "x"}]}', keys=("data",)))
    assert out[0] == ({"a": 1}, b'{"a": 1}')
    assert isinstance(out[1], Malformed)
    assert (out[1].code, out[1].detail) == ("malformed_record", "record 1 is not an object")
    assert out[2][0] == {"b": "x"}


@pytest.mark.parametrize(
    ("body", "path", "keys", "found"),
    [
        (b'[{"a": 1}]', "", ("items",), 1),
        (b'{"items": [{"a": 1}, {"a": 2}]}', "", ("items",), 2),
        (b'{"result": {"rows": [{"a": 1}]}}', "result.rows", ("items",), 1),
    ],
)
def test_the_list_is_the_body_at_a_path_or_under_a_key(body, path, keys, found):
    assert len(list(read_json_records(body, path=path, keys=keys))) == found


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"items": 3}', "malformed_json"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed_json"),  # deeper than the parser recurses
        (b'[{"price": ' + b"9" * 5_000 + b"}]", "malformed_json"),  # more digits than Python converts
        (b"{not json", "malformed_json"),
        ('{"items": ["\u00e9"]}'.encode("latin-1"), "encoding"),
    ],
)
def test_a_body_without_a_list_of_records_is_one_malformed_record(body, code):
    (only,) = read_json_records(body, keys=("items",))
    assert isinstance(only, Malformed)
    assert only.code == code


def test_json_is_told_from_csv_by_its_first_character():
    assert looks_like_json(b'  \n[{"a": 1}]')
    assert looks_like_json(b'{"items": []}')
    assert not looks_like_json(b"material,price\ngallium,300\n")
