"""Tabular records read defensively (CSV rows, JSON lists of objects): a bad record is set aside, the rest read."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from services.ingest.observation import Malformed, raw_of

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
            yield Malformed(
                "malformed_row", f"line {number}: {len(values)} fields where the header has {len(header)}", line
            )
            continue
        if any(len(v) > MAX_FIELD for v in values):
            yield Malformed("malformed_row", f"line {number}: a field exceeds {MAX_FIELD} characters", line[:4096])
            continue
        yield Row(number, dict(zip(header, (v.strip() for v in values), strict=True)), line)


def read_json_records(
    body: bytes, *, encoding: str = "utf-8", path: str = "", keys: tuple[str, ...] = ("items", "data")
) -> Iterator[tuple[dict[str, Any], bytes] | Malformed]:
    """Each object of a JSON list, with its bytes; the list is the body, at dotted `path`, or under one of `keys`."""
    try:
        doc = json.loads(body.decode(encoding))
    except (UnicodeDecodeError, LookupError) as exc:
        yield Malformed("encoding", f"body is not {encoding}: {exc}", body)
        return
    except json.JSONDecodeError as exc:
        yield Malformed("malformed_json", f"body is not JSON: {exc}", body)
        return
    except RecursionError:
        yield Malformed("malformed_json", "body nests deeper than the JSON reader follows", body[:100_000])
        return
    except ValueError as exc:  # an integer longer than Python converts (sys.get_int_max_str_digits)
        yield Malformed("malformed_json", f"body is not readable JSON: {exc}", body[:100_000])
        return
    records = _records_at(doc, path, keys)
    if records is None:
        yield Malformed("malformed_json", f"no list of records at {path or '/'.join(keys)!r}", body[:100_000])
        return
    for index, record in enumerate(records):
        if isinstance(record, dict):
            yield record, raw_of(record)
        else:
            yield Malformed("malformed_record", f"record {index} is not an object", raw_of(record))


def looks_like_json(body: bytes) -> bool:
    """Whether a body that may be CSV or JSON is JSON."""
    return body.lstrip()[:1] in (b"{", b"[")


def _records_at(doc: Any, path: str, keys: tuple[str, ...]) -> list | None:
    if path:
        for part in path.split("."):
            if not isinstance(doc, dict) or part not in doc:
                return None
            doc = doc[part]
        return doc if isinstance(doc, list) else None
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        for key in keys:
            if isinstance(doc.get(key), list):
                return doc[key]
    return None
