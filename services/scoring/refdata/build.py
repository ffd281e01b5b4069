"""Read the published reference files (WGI, USGS MCS, EU CRM study) into the compact tables scoring uses.

`mews refdata build --from DIR` runs `build_tables(DIR, OUT)`; DIR holds one folder per publication, named as
below, each with its files as published. Parsing traps handled here are listed in each folder's README.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.scoring.refdata.tables import (
    GOVERNANCE_FILE,
    MANIFEST_FILE,
    PRODUCTION_FILE,
    STUDY_SCORES_FILE,
    STUDY_SHARES_FILE,
    WGI_INDICATORS,
)
from shared.catalog import Catalog, load_catalog
from shared.catalog.names import fold

SOURCES_FILE = Path(__file__).resolve().parent / "sources.toml"
WGI_FOLDER = "worldbank-wgi-2024"
USGS_FOLDERS = ("usgs-mcs2023", "usgs-mcs2024")  # oldest first: a later edition revises an earlier one
STUDY_FOLDER = "eu-crm-2023-study-tables"

# What each table is, whom to cite and under which licence (copied from the folders' READMEs).
CITATIONS: dict[str, dict[str, str]] = {
    "governance": {
        "source": "World Bank, Worldwide Governance Indicators (Kaufmann & Kraay), www.govindicators.org",
        "edition": "2024 update (data 1996-2023, released September 2024)",
        "licence": "CC BY 4.0; attribute 'Worldwide Governance Indicators, World Bank'",
    },
    "production": {
        "source": "U.S. Geological Survey, National Minerals Information Center, Mineral Commodity Summaries "
        "data releases: MCS 2023 (doi:10.5066/P9WCYUI6), MCS 2024 ver. 2.0 (doi:10.5066/P144BA54)",
        "edition": "MCS 2023 (production 2021-2022) and MCS 2024 ver. 2.0, March 2024 (production 2022-2023)",
        "licence": "Public domain (U.S. Government work); cite the data release",
    },
    "study_shares": {
        "source": "European Commission (DG GROW), Study on the critical raw materials for the EU 2023, Final "
        "Report, Appendix 7 (global supply and EU sourcing shares, t), as tabulated in "
        "erikemilsson/EU-Critical-Raw-Materials-CRM-Reports-Datasets",
        "edition": "2023 assessment",
        "licence": "CC BY 4.0 (European Commission reuse policy)",
    },
    "study_scores": {
        "source": "European Commission (DG GROW), Study on the critical raw materials for the EU 2023, Final "
        "Report, Annex 4 (SR and EI per assessment), as tabulated in "
        "erikemilsson/EU-Critical-Raw-Materials-CRM-Reports-Datasets",
        "edition": "assessments 2011, 2014, 2017, 2020, 2023",
        "licence": "CC BY 4.0 (European Commission reuse policy)",
    },
}


class RefdataError(ValueError):
    """A published file the builder cannot read; the message names the file and the row."""


class UsgsEntry(BaseModel):
    """Which rows of one USGS world file are a material's world production at one stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    material: str
    file: str = Field(pattern=r"^[a-z]+$")
    type: str = Field(min_length=1)
    stage: Literal["extraction", "processing"]
    note: str = ""


class BuildSources(BaseModel):
    """sources.toml: spellings, legacy codes and the USGS file mapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    country_names: dict[str, str] = Field(default_factory=dict)
    wgi_codes: dict[str, str] = Field(default_factory=dict)
    study_materials: dict[str, str] = Field(default_factory=dict)
    usgs: tuple[UsgsEntry, ...] = ()


def load_build_sources(path: Path = SOURCES_FILE) -> BuildSources:
    """The builder's mapping file, validated (unknown keys refused)."""
    return BuildSources.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))


@dataclass
class CountryNames:
    """Published country spellings (with USGS footnote marks) to ISO alpha-2, or None when unknown."""

    catalog: Catalog
    aliases: dict[str, str]
    unknown: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.aliases = {fold(k): v for k, v in self.aliases.items()}

    def resolve(self, name: str) -> str | None:
        text = " ".join(name.replace("\xa0", " ").split())
        text = re.sub(r"\d+$", "", text).strip()
        for candidate in _spellings(text):
            code = self.aliases.get(fold(candidate)) or self.catalog.resolve_country(candidate)
            if code:
                return code
        self.unknown.add(name)
        return None


def _spellings(text: str) -> Iterator[str]:
    """The name, then without a parenthesised or comma qualifier, then without a footnote letter or two."""
    bare = re.sub(r"\s*\(.*\)\s*$", "", text)
    for base in dict.fromkeys((text, bare)):
        yield base
        # USGS glues footnote letters to names: "Japane", "Korea, Republic ofe", "Russiae".
        for cut in (1, 2):
            if len(base) > cut + 2 and base[-cut:].isalpha() and base[-cut:].islower():
                yield base[:-cut]
    if "," in bare:
        yield bare.split(",", 1)[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- WGI ----------------------------------------------------------------------------------------------


def read_wgi(folder: Path, names: BuildSources, catalog: Catalog) -> tuple[list[dict[str, Any]], list[Path]]:
    """Rows (country, year, va, pv, ge, rq, rl, cc) from wgidataset.xlsx (full precision) or the rounded CSV."""
    xlsx, csv_path = folder / "wgidataset.xlsx", folder / "wgidataset.csv"
    if xlsx.exists():
        records, used = _wgi_xlsx(xlsx), xlsx
    elif csv_path.exists():
        with csv_path.open(encoding="utf-8-sig", newline="") as f:
            records, used = list(csv.DictReader(f)), csv_path
    else:
        raise RefdataError(f"{folder.name}: neither wgidataset.xlsx nor wgidataset.csv")
    table: dict[tuple[str, int], dict[str, Any]] = {}
    unknown: set[str] = set()
    for n, rec in enumerate(records, start=2):
        code3 = str(rec.get("code") or "").strip().upper()
        indicator = str(rec.get("indicator") or "").strip()
        if indicator not in WGI_INDICATORS:
            raise RefdataError(f"{used.name} row {n}: indicator {indicator!r} is not one of {WGI_INDICATORS}")
        if names.wgi_codes.get(code3) == "":
            continue
        country = names.wgi_codes.get(code3) or catalog.country_for_iso3(code3)
        if country is None:
            unknown.add(code3)
            continue
        estimate = _wgi_number(rec.get("estimate"), used.name, n)
        row = table.setdefault((country, int(rec["year"])), {"country": country, "year": int(rec["year"])})
        row[indicator] = estimate
    if unknown:
        raise RefdataError(
            f"{used.name}: codes neither ISO alpha-3 in the catalog nor known WGI legacy codes: "
            f"{', '.join(sorted(unknown))} (add them to sources.toml [wgi_codes])"
        )
    rows = [r for r in table.values() if any(r.get(i) is not None for i in WGI_INDICATORS)]
    rows.sort(key=lambda r: (r["country"], r["year"]))
    return rows, [used]


def _wgi_xlsx(path: Path) -> list[dict[str, Any]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        sheet = wb.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h).strip() if h is not None else "" for h in next(rows)]
        return [dict(zip(header, r, strict=False)) for r in rows if any(v is not None for v in r)]
    finally:
        wb.close()


def _wgi_number(value: Any, file: str, row: int) -> float | None:
    if value is None or str(value).strip() in ("", ".."):
        return None
    try:
        return round(float(value), 4)
    except ValueError:
        raise RefdataError(f"{file} row {row}: estimate {value!r} is not a number or '..'") from None


# --- USGS world production ----------------------------------------------------------------------------

_PROD_COLUMN = re.compile(r"^prod_(?P<label>.+?)_(?:(?P<est>est)_)?(?P<year>\d{4})$", re.IGNORECASE)
_NUMBER = re.compile(r"^e?(\d[\d,]*(?:\.\d+)?)$")  # "16,000", "e5,000" (e = estimated, a footnote mark)


def read_usgs_world(
    folder: Path,
    entries: Iterable[UsgsEntry],
    names: CountryNames,
) -> tuple[list[dict[str, Any]], list[Path], list[str]]:
    """Production rows (edition, material, stage, year, country, quantity, unit, estimated) of one edition.

    `country` is an ISO alpha-2 code, "world" for the world total or "other" for USGS's "Other countries".
    Withheld (W), not available (NA) and bounds ("<100") are left out: they are not numbers.
    """
    edition = folder.name.replace("usgs-", "").upper()  # usgs-mcs2024 -> MCS2024
    prefix = edition.lower()
    files = {p.name.lower(): p for p in (folder / "world").glob("*_world.csv")}
    rows: list[dict[str, Any]] = []
    used: list[Path] = []
    missing: list[str] = []
    for entry in entries:
        # MCS 2023 names one file after two commodities ("mcs2023-zirco-hafni_world.csv").
        path = files.get(f"{prefix}-{entry.file}_world.csv") or next(
            (p for n, p in sorted(files.items()) if n.startswith(f"{prefix}-{entry.file}-")), None
        )
        if path is None:
            missing.append(f"{edition} {entry.file} ({entry.material})")
            continue
        if path not in used:
            used.append(path)
        rows.extend(_usgs_rows(path, entry, edition, names))
    return rows, used, missing


def _usgs_rows(path: Path, entry: UsgsEntry, edition: str, names: CountryNames) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        columns = []
        for i, name in enumerate(header):
            m = _PROD_COLUMN.match(name.strip())
            if m:
                unit = m["label"].split("_")[-1].lower()
                columns.append((i, int(m["year"]), unit, bool(m["est"])))
        if not columns:
            raise RefdataError(f"{path.name}: no production columns (Prod_<unit>_<year>) in {header}")
        type_col = 2  # Source, Country, Type: the third column names the series (its header varies)
        for line in reader:
            if len(line) <= type_col or not line[1].strip():
                continue
            if entry.type.lower() not in line[type_col].lower():
                continue
            place = _place(line[1], names)
            if place is None:
                continue
            for i, year, unit, estimated in columns:
                value = line[i].strip() if i < len(line) else ""
                m = _NUMBER.match(value)
                if m is None:
                    continue
                yield {
                    "edition": edition,
                    "material": entry.material,
                    "stage": entry.stage,
                    "year": year,
                    "country": place,
                    "quantity": float(m[1].replace(",", "")),
                    "unit": unit,
                    "estimated": estimated or value.startswith("e"),
                }


def _place(name: str, names: CountryNames) -> str | None:
    text = fold(" ".join(name.replace("\xa0", " ").split()))
    if text.startswith("world total"):
        return "world"
    if text.startswith("other"):
        return "other"
    return names.resolve(name)


# --- EU CRM study 2023 --------------------------------------------------------------------------------


def read_study(
    folder: Path,
    sources: BuildSources,
    names: CountryNames,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Path]]:
    """(scores, shares, files): SR/EI per material and assessment; global and EU sourcing shares by stage."""
    materials = {fold(k): v for k, v in sources.study_materials.items()}
    scores_path = folder / "dimension_CRMsOverTime.csv"
    scores = []
    for n, rec in enumerate(_csv_records(scores_path), start=2):
        material = materials.get(fold(rec["Material"]))
        if material is None:
            continue
        sr, ei = _score(rec["SR"], scores_path.name, n), _score(rec["EI"], scores_path.name, n)
        if sr is None and ei is None:
            continue
        scores.append({"material": material, "assessment": int(rec["Year"]), "sr": sr, "ei": ei})
    shares = []
    used = [scores_path]
    for scope, file in (("global", "fact_GlobalSupplyShares&t.csv"), ("eu", "fact_EUSupplyShares&t.csv")):
        path = folder / file
        used.append(path)
        for n, rec in enumerate(_csv_records(path), start=2):
            material = materials.get(fold(rec["Material"]))
            if material is None:
                continue
            country = names.resolve(rec["Country"])
            if country is None:
                continue
            share, bound = _share(rec["Share"], path.name, n)
            stage = {"E": "extraction", "P": "processing"}.get(rec["Stage"].strip())
            if stage is None:
                raise RefdataError(f"{path.name} row {n}: stage {rec['Stage']!r} is neither E nor P")
            shares.append(
                {
                    "scope": scope,
                    "material": material,
                    "stage": stage,
                    "country": country,
                    "share": share,
                    "below": bound,
                    "t": float(rec["t"]) if rec["t"].strip() else None,
                }
            )
    return scores, shares, used


def _csv_records(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        raise RefdataError(f"{path.parent.name}: {path.name} is missing")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")  # the share tables spell Türkiye in cp1252 (byte 0xfc), not UTF-8
    return [r for r in csv.DictReader(io.StringIO(text)) if any((v or "").strip() for v in r.values())]


def _score(value: str, file: str, row: int) -> float | None:
    value = value.strip()
    if value in ("", "-"):
        return None
    try:
        return float(value)
    except ValueError:
        raise RefdataError(f"{file} row {row}: score {value!r} is not a number or '-'") from None


def _share(value: str, file: str, row: int) -> tuple[float, bool]:
    """A published share as a fraction; "<0.1%" is (0.001, True): an upper bound, not a value."""
    # One transcribed EU share lacks its "%" (silicon metal, Germany, "6"): the column is percent throughout.
    m = re.fullmatch(r"\s*(<)?\s*(\d+(?:\.\d+)?)\s*%?\s*", value)
    if m is None:
        raise RefdataError(f"{file} row {row}: share {value!r} is not like '12.3%' or '<0.1%'")
    return round(float(m[2]) / 100.0, 6), m[1] is not None


# --- the whole build ----------------------------------------------------------------------------------


def build_tables(source_dir: Path, out_dir: Path, catalog: Catalog | None = None) -> dict[str, Any]:
    """Read every publication under `source_dir` and write the tables and manifest.json into `out_dir`."""
    catalog = catalog or load_catalog()
    sources = load_build_sources()
    for entry in sources.usgs:
        catalog.material(entry.material)
    for material in sources.study_materials.values():
        catalog.material(material)
    names = CountryNames(catalog, dict(sources.country_names))
    manifest: dict[str, Any] = {"tables": {}}

    governance, wgi_files = read_wgi(source_dir / WGI_FOLDER, sources, catalog)
    production: list[dict[str, Any]] = []
    usgs_files: list[Path] = []
    missing: list[str] = []
    for folder in USGS_FOLDERS:
        if (source_dir / folder).is_dir():
            rows, files, absent = read_usgs_world(source_dir / folder, sources.usgs, names)
            production += rows
            usgs_files += files
            missing += absent
    if not usgs_files:
        raise RefdataError(f"{source_dir}: no USGS world-production files under {', '.join(USGS_FOLDERS)}")
    scores, shares, study_files = read_study(source_dir / STUDY_FOLDER, sources, names)

    out_dir.mkdir(parents=True, exist_ok=True)
    tables = [
        ("governance", GOVERNANCE_FILE, ["country", "year", *WGI_INDICATORS], governance, wgi_files),
        (
            "production",
            PRODUCTION_FILE,
            ["edition", "material", "stage", "year", "country", "quantity", "unit", "estimated"],
            production,
            usgs_files,
        ),
        ("study_scores", STUDY_SCORES_FILE, ["material", "assessment", "sr", "ei"], scores, study_files[:1]),
        (
            "study_shares",
            STUDY_SHARES_FILE,
            ["scope", "material", "stage", "country", "share", "below", "t"],
            shares,
            study_files[1:],
        ),
    ]
    for name, file, header, rows, inputs in tables:
        _write_csv(out_dir / file, header, rows)
        manifest["tables"][name] = {
            "file": file,
            **CITATIONS[name],
            "rows": len(rows),
            "inputs": {
                f"{p.parent.name}/{p.name}"
                if p.parent.name != "world"
                else f"{p.parent.parent.name}/world/{p.name}": _sha256(p)
                for p in inputs
            },
        }
    manifest["tables"]["production"]["not_found"] = missing
    manifest["unmatched_country_names"] = sorted(names.unknown)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def _write_csv(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(row.get(k)) for k in header])


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else str(int(value))
    return str(value)
