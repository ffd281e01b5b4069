"""Trade-flow extracts: Eurostat Comext and UN Comtrade, mapped to one set of fields.

Comext bulk files (`full<YYYYMM>.dat`): DECLARANT_ISO, PARTNER_ISO, PRODUCT_NC (CN8), FLOW (1 import,
2 export), PERIOD (YYYYMM; YYYY52 for the year), VALUE_IN_EUROS, QUANTITY_IN_KG. The 2024 `full_v2`
layout renames them REPORTER, PARTNER, VALUE_EUR, QUANTITY_KG; both are read, and so are filtered extracts
with only DECLARANT_ISO, PARTNER_ISO, PRODUCT_NC, FLOW, PERIOD, VALUE_IN_EUROS (no quantity: it stays empty).
Rows of one declarant, partner, product, flow and period (a bulk file splits them by statistical procedure)
are summed into one flow; with the source's `eu27_total`, the rows of all 27 member states are summed into
one flow reported by EU27, which is what scoring reads.

UN Comtrade (API v1 JSON `data` or its CSV export): refYear / period, reporterISO and partnerISO (ISO
alpha-3; reporterDesc / partnerDesc as fallback), cmdCode, flowCode (M import, X export; re-imports and
re-exports are skipped), netWgt (kg), primaryValue (USD). Values are converted to EUR at the source's
`usd_eur_rate` when one is configured; without a rate `value_eur` is left empty rather than mislabelled,
and the quantity still flows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

from services.ingest import metrics
from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Malformed, Record, parse_number
from services.ingest.sources.table import Row, looks_like_json, read_json_records, read_rows
from shared.catalog import load_catalog

COMEXT_FLOWS = {"1": "import", "2": "export"}
COMTRADE_FLOWS = {"M": "import", "X": "export"}


def _first(values: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = values.get(name)
        if value not in (None, ""):
            return value
    return None


def comext_fields(values: Mapping[str, Any], source: SourceConfig) -> dict[str, Any] | str:
    """Our trade fields from one Comext row, or why the row is not a usable flow."""
    flow = COMEXT_FLOWS.get(str(_first(values, "FLOW") or "").strip())
    if flow is None:
        return f"FLOW {values.get('FLOW')!r} is neither 1 (import) nor 2 (export)"
    value = _first(values, "VALUE_IN_EUROS", "VALUE_EUR")
    if source.value_currency == "USD" and value is not None:
        value = _usd_to_eur(value, source)
    return {
        "reporter": _first(values, "DECLARANT_ISO", "REPORTER"),
        "partner": _first(values, "PARTNER_ISO", "PARTNER"),
        "hs_code": _first(values, "PRODUCT_NC", "PRODUCT_HS", "PRODUCT"),
        "flow": flow,
        "period": _first(values, "PERIOD"),
        "quantity_kg": _first(values, "QUANTITY_IN_KG", "QUANTITY_KG"),
        "value_eur": value,
    }


def comtrade_fields(values: Mapping[str, Any], source: SourceConfig) -> dict[str, Any] | str:
    """Our trade fields from one Comtrade record (API JSON or CSV export), or why it is not usable."""
    code = str(_first(values, "flowCode") or "").strip().upper()
    flow = COMTRADE_FLOWS.get(code)
    if flow is None:
        return f"flowCode {code!r} is neither M (import) nor X (export)"
    primary = _first(values, "primaryValue")
    return {
        "reporter": _first(values, "reporterISO", "reporterDesc"),
        "reporter_name": _first(values, "reporterDesc"),
        "partner": _first(values, "partnerISO", "partnerDesc"),
        "partner_name": _first(values, "partnerDesc"),
        "hs_code": _first(values, "cmdCode"),
        "flow": flow,
        "period": _first(values, "period", "refPeriodId", "refYear"),
        "quantity_kg": _first(values, "netWgt"),
        "value_eur": None if primary is None else _usd_to_eur(primary, source),
    }


def _usd_to_eur(value: Any, source: SourceConfig) -> Any:
    if source.usd_eur_rate is None:
        return None
    try:
        return float(value) * source.usd_eur_rate
    except (TypeError, ValueError):
        return value  # left as given, so normalisation rejects it with the reason


# Comext declarants are member states in EU protocol order; Greece is EL there.
EU_DECLARANTS = frozenset({c.code for c in load_catalog().countries if c.eu} | {"EL"})
_SUMMED = ("quantity_kg", "value_eur")


def read_comext(body: bytes, source: SourceConfig) -> Iterator[Record]:
    """Trade records from a Comext bulk file or extract, rows of one flow summed (see the module docstring)."""
    groups: dict[tuple, list[Candidate]] = {}
    for record in _read_rows(body, source, comext_fields):
        if isinstance(record, Malformed) or "skip" in record.fields:
            yield record
            continue
        f = record.fields
        reporter = str(f.get("reporter") or "").strip().upper()
        if source.eu27_total and reporter in EU_DECLARANTS:
            reporter = "EU27"
        key = (
            reporter,
            str(f.get("partner") or "").strip(),
            str(f.get("hs_code") or "").strip(),
            f["flow"],
            str(f.get("period") or "").strip(),
        )
        groups.setdefault(key, []).append(record)
    for (reporter, *_), members in groups.items():
        yield from _summed(reporter, members, source)


def _summed(reporter: str, members: list[Candidate], source: SourceConfig) -> Iterator[Candidate]:
    """One candidate for the rows of one flow; a row with an unreadable number is left apart, to be refused alone."""
    if len(members) == 1 and members[0].fields.get("reporter") == reporter:
        yield members[0]
        return
    good: list[Candidate] = []
    for m in members:
        if all(_readable(m.fields.get(name)) for name in _SUMMED):
            good.append(m)
        else:
            yield m
    if not good:
        return
    totals: dict[str, float | None] = {}
    for name in _SUMMED:
        values = [m.fields.get(name) for m in good]
        # One row without it: a partial sum would understate the flow, so the total is unknown too.
        totals[name] = None if any(_blank(v) for v in values) else math.fsum(parse_number(v) for v in values)
    if len(good) > 1:
        metrics.TRADE_ROWS_SUMMED.labels(source.name).inc(len(good))
    fields = {**good[0].fields, "reporter": reporter, **totals}
    yield Candidate("trade", source.name, fields, b"".join(m.raw for m in good))


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _readable(value: Any) -> bool:
    if _blank(value):
        return True
    try:
        parse_number(value)
    except ValueError:
        return False
    return True


def read_comtrade(body: bytes, source: SourceConfig) -> Iterator[Record]:
    """Trade records from a Comtrade CSV export or an API JSON answer (`{"data": [...]}`)."""
    if looks_like_json(body):
        for record in read_json_records(body, encoding=source.encoding, keys=("data",)):
            yield (
                record
                if isinstance(record, Malformed)
                else _candidate(comtrade_fields(record[0], source), source, record[1])
            )
        return
    yield from _read_rows(body, source, comtrade_fields)


def _read_rows(body: bytes, source: SourceConfig, mapper) -> Iterator[Record]:
    for row in read_rows(body, encoding=source.encoding, delimiter=source.delimiter):
        if isinstance(row, Row):
            yield _candidate(mapper(row.values, source), source, row.raw)
        else:
            yield row


def _candidate(fields: dict[str, Any] | str, source: SourceConfig, raw: bytes) -> Record:
    if isinstance(fields, str):
        return Candidate("trade", source.name, {"skip": fields}, raw)
    return Candidate("trade", source.name, fields, raw)
