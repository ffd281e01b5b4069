"""CSV read defensively: a row with bad bytes or the wrong number of fields is set aside, the rest is read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from services.ingest.observation import Malformed

MAX_FIELD = 100_000


@dataclass(frozen=True)
class Row:
    """One well-formed data row: its line number, values by column, and its original bytes."""

    line: int
    values: dict[str, str]
    raw: bytes


def read_rows(body: bytes, *, encoding: str = "utf-8", delimiter: str = ",") -> Iterator[Row | Malformed]:
    """Each data row as {header: value}; undecodable or misshapen rows come back as `Malformed`."""
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    lines = body.splitlines(keepends=True)
    if not lines:
        return
    try:
        header_text = lines[0].decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        yield Malformed("encoding", f"header line is not {encoding}: {exc}", body[:4096])
        return
    header = [h.strip() for h in next(csv.reader([header_text], delimiter=delimiter), [])]
    if not header or len(set(header)) != len(header):
        yield Malformed("malformed_header", "CSV header is empty or repeats a column", lines[0][:4096])
        return
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as exc:
            yield Malformed("encoding", f"line {number} is not {encoding}: {exc}", line)
            continue
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
        except csv.Error as exc:
            yield Malformed("malformed_row", f"line {number}: {exc}", line)
            continue
        if len(rows) != 1:
            yield Malformed("malformed_row", f"line {number}: not one CSV row", line)
            continue
        values = rows[0]
        if len(values) != len(header):
            yield Malformed("malformed_row",
                            f"line {number}: {len(values)} fields where the header has {len(header)}", line)
            continue
        if any(len(v) > MAX_FIELD for v in values):
            yield Malformed("malformed_row", f"line {number}: a field exceeds {MAX_FIELD} characters", line[:4096])
            continue
        yield Row(number, dict(zip(header, (v.strip() for v in values), strict=True)), line)
