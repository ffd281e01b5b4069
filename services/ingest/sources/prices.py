"""Price feeds as JSON or CSV: one record per observation, field names mapped by the source's `columns`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Malformed, Record
from services.ingest.sources.table import Row, read_json_records, read_rows

PRICE_FIELDS = ("material", "price", "currency", "unit", "observed_at", "series", "url")
# Common spellings of each field in published feeds; a source's `columns` overrides them.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "material": ("material", "commodity", "metal"),
    "price": ("price", "value", "close", "settlement"),
    "currency": ("currency", "ccy"),
    "unit": ("unit", "uom"),
    "observed_at": ("observed_at", "date", "time", "timestamp", "period"),
    "series": ("series", "contract"),
    "url": ("url", "link"),
}


def pick_fields(record: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """Our field names from a record's: the configured column first, then the usual spellings."""
    lowered = {str(k).strip().lower(): v for k, v in record.items()}
    out: dict[str, Any] = {}
    for name in PRICE_FIELDS:
        if name in columns:
            value = record.get(columns[name], lowered.get(columns[name].lower()))
        else:
            value = next((lowered[a] for a in FIELD_ALIASES[name] if a in lowered), None)
        if value not in (None, ""):
            out[name] = value
    return out


def read_csv_prices(body: bytes, source: SourceConfig) -> Iterator[Record]:
    """Price records from a CSV body."""
    for row in read_rows(body, encoding=source.encoding, delimiter=source.delimiter):
        if isinstance(row, Row):
            yield Candidate("price", source.name, pick_fields(row.values, source.columns), row.raw)
        else:
            yield row


def read_json_prices(body: bytes, source: SourceConfig) -> Iterator[Record]:
    """Price records from a JSON body: a list, or a list under `items_path` (default: items/data/prices)."""
    for record in read_json_records(
        body, encoding=source.encoding, path=source.items_path, keys=("items", "data", "prices", "observations")
    ):
        if isinstance(record, Malformed):
            yield record
        else:
            yield Candidate("price", source.name, pick_fields(record[0], source.columns), record[1])
