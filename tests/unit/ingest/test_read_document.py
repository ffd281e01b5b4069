"""A reader failing part-way through a document keeps what it read and ends with the failure as a dead letter."""

from __future__ import annotations

from pathlib import Path

from services.ingest import poll
from services.ingest.config import parse_sources
from services.ingest.observation import Candidate, Malformed


def test_a_reader_raising_part_way_keeps_the_records_before_and_adds_the_reason(monkeypatch, tmp_path: Path):
    first = Candidate("price", "bad-reader", {"material": "gallium"}, b"{}")

    def read(body: bytes, source):
        yield first
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setitem(poll.READERS, "json_prices", read)
    [source] = parse_sources(
        '[[source]]\nname = "bad-reader"\nkind = "json_prices"\nurl = "https://x.test/a"\n'
        'currency = "USD"\nunit = "kg"\n',
        tmp_path,
    ).sources
    records = poll.read_document(b"[[[", source, None)  # type: ignore[arg-type]
    assert records[0] is first
    assert isinstance(records[1], Malformed)
    assert records[1].code == "unreadable"
    assert records[1].detail == "document unreadable: RecursionError: maximum recursion depth exceeded"
    assert records[1].raw == b"[[["
