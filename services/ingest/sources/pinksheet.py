"""The World Bank "Pink Sheet" (CMO Historical Data Monthly) workbook.

Sheet "Monthly Prices": title rows, then a row of series names, a row of units such as "($/mt)", a row of
series codes (NICKEL, ALUMINUM, ...), then one row per month labelled `2022M03`. Editions from 2026 on have no
code row: the months follow the units, and series are found by their published names (`SERIES_NAMES`), under
the same codes, so both editions give the same series. Missing values are written "…" or "..": they are
absent observations, not bad records, and produce nothing.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import openpyxl

from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Malformed, Record

MONTH = re.compile(r"^(\d{4})M(0[1-9]|1[0-2])$")
MISSING = {"…", "..", "...", ""}
HEADER_SCAN_ROWS = 30
# Metals and minerals of the Pink Sheet, by series code, to the names the catalog knows them by.
DEFAULT_SERIES = {
    "ALUMINUM": "aluminium",
    "COPPER": "copper",
    "LEAD": "lead",
    "Tin": "tin",
    "NICKEL": "nickel",
    "Zinc": "zinc",
    "IRON_ORE": "iron ore",
    "PLATINUM": "platinum",
    "GOLD": "gold",
    "SILVER": "silver",
    "PHOSROCK": "phosphate rock",
    "POTASH": "potash",
}
# The published names of the default series, as the 2023 edition pairs them with its codes (footnote marks
# such as " **" dropped), for the editions without a code row.
SERIES_NAMES = {
    "Aluminum": "ALUMINUM",
    "Copper": "COPPER",
    "Lead": "LEAD",
    "Tin": "Tin",
    "Nickel": "NICKEL",
    "Zinc": "Zinc",
    "Iron ore, cfr spot": "IRON_ORE",
    "Platinum": "PLATINUM",
    "Gold": "GOLD",
    "Silver": "SILVER",
    "Phosphate rock": "PHOSROCK",
    "Potassium chloride": "POTASH",
}
_FOOTNOTE = re.compile(r"\s*\*+$")
_UNIT = re.compile(r"^\(\s*([$€£])\s*/\s*(.+?)\s*\)$")
_UNIT_CELL = re.compile(r"^\(.+\)$")
_CURRENCY = {"$": "USD", "€": "EUR", "£": "GBP"}


def split_unit(text: str) -> tuple[str, str] | None:
    """'($/mt)' -> ('USD', 'mt'); None for index series like '(2010=100)' that are not prices."""
    m = _UNIT.match(str(text or "").strip())
    if m is None:
        return None
    return _CURRENCY[m[1]], m[2].replace(" ", "_")


def month_start(label: str) -> datetime | None:
    """'2022M03' -> 2022-03-01T00:00Z, the start of the month the average covers."""
    m = MONTH.match(label.strip())
    return datetime(int(m[1]), int(m[2]), 1, tzinfo=UTC) if m else None


def read_pinksheet(body: bytes, source: SourceConfig, catalog: Any = None) -> Iterator[Record]:
    """Monthly price records for the source's series (by default the metals) from the workbook bytes.

    Without configured series, the default metals are read, only those the catalog knows when one is given.
    """
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        yield Malformed("malformed_workbook", f"not a readable xlsx workbook: {type(exc).__name__}: {exc}", body[:4096])
        return
    try:
        if source.sheet not in workbook.sheetnames:
            yield Malformed("malformed_workbook", f"no sheet {source.sheet!r}", body[:4096])
            return
        if source.series:
            wanted, named = source.series, True
        else:
            wanted = {
                code: name for code, name in DEFAULT_SERIES.items() if catalog is None or catalog.resolve_material(name)
            }
            named = False
        yield from _read_sheet(workbook[source.sheet], source, wanted, named)
    finally:
        workbook.close()


def _read_sheet(sheet, source: SourceConfig, wanted: dict[str, str], named: bool) -> Iterator[Record]:
    rows = sheet.iter_rows(values_only=True)
    previous: list[tuple] = []
    columns: dict[int, tuple[str, str, str, str]] = {}  # column -> (code, material, currency, unit)
    for number, row in enumerate(rows, start=1):
        cells = tuple(row)
        if not columns:
            if number > HEADER_SCAN_ROWS:
                yield Malformed("malformed_workbook", "no row of series codes in the first rows", b"")
                return
            # The code row is the one under the unit row; series names ("Tin") can equal codes, units cannot.
            if previous and sum(1 for c in previous[-1] if _UNIT_CELL.match(str(c or ""))) >= 3:
                units = previous[-1]
                months_follow = month_start(str(cells[0] or "")) is not None
                if months_follow:  # no code row: the names above the units say which series is which
                    names = previous[-2] if len(previous) > 1 else ()
                    codes = {}
                    for i, c in enumerate(names):
                        if c is not None:
                            name = _FOOTNOTE.sub("", str(c).strip())
                            codes[name] = i  # a series asked for by its name
                            codes.setdefault(SERIES_NAMES.get(name, name), i)
                else:
                    codes = {str(c).strip(): i for i, c in enumerate(cells) if c is not None}
                for code, material in wanted.items():
                    column = codes.get(code)
                    if column is None:
                        if named:  # a series the source asked for by name is missing: say so
                            yield Malformed("malformed_workbook", f"series {code} is not in the workbook", b"")
                        continue
                    terms = split_unit(units[column] if column < len(units) else "")
                    if terms is None:
                        yield Malformed(
                            "malformed_workbook", f"series {code}: unit {units[column]!r} is not a price", b""
                        )
                        continue
                    columns[column] = (code, material, *terms)
                if not columns:
                    return
                if not months_follow:
                    continue
            else:
                previous.append(cells)
                continue
        label = str(cells[0] or "")
        observed_at = month_start(label)
        if observed_at is None:
            continue
        for i, (code, material, currency, unit) in columns.items():
            value = cells[i] if i < len(cells) else None
            if value is None or (isinstance(value, str) and value.strip() in MISSING):
                continue
            fields = {
                "material": material,
                "price": value,
                "currency": currency,
                "unit": unit,
                "observed_at": observed_at,
                "series": code,
            }
            raw = json.dumps(
                {"sheet": source.sheet, "row": number, "month": label, "series": code, "value": value}, default=str
            ).encode()
            yield Candidate("price", source.name, fields, raw)
