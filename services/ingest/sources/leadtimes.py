"""Lead-time bulletins: CSV (or JSON list) of quoted delivery times per material and supplier or origin.

Columns: material, supplier, origin_country (name or ISO alpha-2), lead_time_days or lead_time_weeks,
quoted_at (or date).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Malformed, Record
from services.ingest.sources.table import Row, looks_like_json, read_json_records, read_rows

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
    if looks_like_json(body):
        for record in read_json_records(body, encoding=source.encoding, keys=("items",)):
            if isinstance(record, Malformed):
                yield record
            else:
                yield Candidate("leadtime", source.name, leadtime_fields(record[0], source.columns), record[1])
        return
    for row in read_rows(body, encoding=source.encoding, delimiter=source.delimiter):
        if isinstance(row, Row):
            yield Candidate("leadtime", source.name, leadtime_fields(row.values, source.columns), row.raw)
        else:
            yield row
