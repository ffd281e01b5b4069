"""Bills of materials uploaded as CSV or XLSX: read every row, validate each one, import all or nothing.

Each row is checked with the API's own BOM line schema (services.notify.api.products.BomLineIn), and its material
and origin country against the catalog, so a typo is an error naming the row, not a line that never matches.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field

from openpyxl import load_workbook
from pydantic import ValidationError

from services.notify.api.products import BomLineIn, ProductIn
from shared.catalog import load_catalog

COLUMNS = ("product", "component", "material", "share", "quantity", "unit", "supplier", "origin_country")
REQUIRED = ("product", "component", "material")
MAX_BYTES = 2_000_000
MAX_ROWS = 5_000


@dataclass(frozen=True)
class RowError:
    """What is wrong with one row (row 1 is the header), or with the file when `row` is 0."""

    row: int
    message: str


@dataclass
class BomUpload:
    """The products an upload describes, in file order, or the errors that keep it out."""

    products: list[ProductIn] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _rows_of_csv(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8-sig")  # Excel writes a byte-order mark
    dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t") if text.strip() else csv.excel
    return [row for row in csv.reader(io.StringIO(text), dialect)]


def _rows_of_xlsx(data: bytes) -> list[list[str]]:
    sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
    return [["" if cell is None else str(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]


def read_rows(filename: str, data: bytes) -> list[list[str]]:
    """The cells of a CSV or XLSX file as text; ValueError says why the file cannot be read."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"the file is larger than {MAX_BYTES // 1_000_000} MB")
    if data.startswith(b"PK"):  # an XLSX file is a zip archive, whatever its name says
        try:
            return _rows_of_xlsx(data)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ValueError(f"not a readable XLSX workbook ({type(exc).__name__})") from None
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise ValueError("not a readable XLSX workbook")
    try:
        return _rows_of_csv(data)
    except UnicodeDecodeError:
        raise ValueError("a CSV file must be UTF-8 text") from None
    except csv.Error as exc:
        raise ValueError(f"not a readable CSV file ({exc})") from None


def _number(text: str) -> float | None:
    text = text.strip()
    return float(text.replace(",", ".")) if text else None


def _field_errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in exc.errors())


def parse_bom(filename: str, data: bytes) -> BomUpload:
    """Validate an uploaded BOM row by row; products only when every row is valid."""
    upload = BomUpload()
    try:
        rows = read_rows(filename, data)
    except ValueError as exc:
        upload.errors.append(RowError(0, str(exc)))
        return upload
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        upload.errors.append(RowError(0, "the file is empty"))
        return upload
    header = [cell.strip().lower() for cell in rows[0]]
    unknown = [h for h in header if h and h not in COLUMNS]
    missing = [c for c in REQUIRED if c not in header]
    if unknown or missing:
        parts = ([f"unknown column(s) {', '.join(unknown)}"] if unknown else []) + (
            [f"missing column(s) {', '.join(missing)}"] if missing else []
        )
        upload.errors.append(RowError(1, f"{'; '.join(parts)} (columns: {', '.join(COLUMNS)})"))
        return upload
    if len(rows) - 1 > MAX_ROWS:
        upload.errors.append(RowError(0, f"more than {MAX_ROWS} rows"))
        return upload
    catalog = load_catalog()
    lines: dict[str, list[BomLineIn]] = {}
    for number, cells in enumerate(rows[1:], start=2):
        values = {name: (cells[i].strip() if i < len(cells) else "") for i, name in enumerate(header) if name}
        product = values.pop("product", "")
        problems = [f"{name}: required" for name in REQUIRED if not values.get(name, product)]
        numbers: dict[str, float | None] = {}
        for name in ("share", "quantity"):
            try:
                numbers[name] = _number(values.get(name, ""))
            except ValueError:
                problems.append(f"{name}: not a number ({values[name][:40]!r})")
        material, country = values.get("material", "").lower(), values.get("origin_country", "").upper()
        line = None
        try:
            line = BomLineIn(
                component=values.get("component", ""),
                material=material,
                share=numbers.get("share"),
                quantity=numbers.get("quantity"),
                unit=values.get("unit", ""),
                supplier=values.get("supplier", ""),
                origin_country=country or None,
            )
        except ValidationError as exc:
            reported = {p.split(":")[0] for p in problems}
            problems += [f"{e['loc'][0]}: {e['msg']}" for e in exc.errors() if e["loc"] and e["loc"][0] not in reported]
        reported = {p.split(":")[0] for p in problems}
        if material and "material" not in reported:
            try:
                catalog.material(material)
            except KeyError:
                problems.append(f"material: unknown material {material[:64]!r}")
        if country and "origin_country" not in reported:
            try:
                catalog.country(country)
            except KeyError:
                problems.append(f"origin_country: unknown country {country[:8]!r}")
        if problems or line is None:
            upload.errors.append(RowError(number, "; ".join(problems)))
            continue
        lines.setdefault(product, []).append(line)
    if upload.errors:
        return upload
    for name, bom in lines.items():
        try:
            upload.products.append(ProductIn(name=name, bom=bom))
        except ValidationError as exc:
            upload.errors.append(RowError(0, f"product {name[:200]!r}: {_field_errors(exc)}"))
    if upload.errors:
        upload.products = []
    return upload
