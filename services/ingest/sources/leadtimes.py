"""Lead-time bulletins: CSV (or JSON list) of quoted delivery times per material and supplier or origin.

Columns: material, supplier, origin_country (name or ISO alpha-2), lead_time_days or lead_time_weeks,
quoted_at (or date).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Malformed, Record, raw_of
from services.ingest.sources.table import Row, read_rows

_ALIASES = {
    "material": ("material", "commodity"),
    "supplier": ("supplier", "vendor"),
    "origin_country": ("origin_country", "origin", "country"),
    "lead_time_days": ("lead_time_days", "leadtime_days", "days"),
    "lead_time_weeks": ("lead_time_weeks", "leadtime_weeks", "weeks"),
    "quoted_at": ("quoted_at", "date", "quote_date"),
}


def leadtime_fields(record: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """Our lead-time fields from a record's, honouring the source's column mapping."""
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    out: dict[str, Any] = {}
    for name, aliases in _ALIASES.items():
        names = (columns[name].lower(),) if name in columns else aliases
        value = next((lowered[a] for a in names if lowered.get(a) not in (None, "")), None)
        if value is not None:
            out[name] = value
    return out


def read_leadtimes(body: bytes, source: SourceConfig) -> Iterator[Record]:
    """Lead-time records from CSV or a JSON list."""
    if body.lstrip()[:1] in (b"{", b"["):
        try:
            doc = json.loads(body.decode(source.encoding))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            yield Malformed("malformed_json", f"body is not JSON: {exc}", body)
            return
        records = doc.get("items") if isinstance(doc, dict) else doc
        if not isinstance(records, list):
            yield Malformed("malformed_json", "no list of records", body[:100_000])
            return
        for index, record in enumerate(records):
            if isinstance(record, dict):
                yield Candidate("leadtime", source.name, leadtime_fields(record, source.columns), raw_of(record))
            else:
                yield Malformed("malformed_record", f"record {index} is not an object", raw_of(record))
        return
    for row in read_rows(body, encoding=source.encoding, delimiter=source.delimiter):
        if isinstance(row, Row):
            yield Candidate("leadtime", source.name, leadtime_fields(row.values, source.columns), row.raw)
        else:
            yield row
