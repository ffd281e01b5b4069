"""The sources file: which feeds to fetch, how often, and how to read them; validated on load.

```toml
[[source]]
name = "lme-gallium"           # unique; appears in events, metrics and dead letters
kind = "csv_prices"            # json_prices | csv_prices | pinksheet | feed | comext | comtrade | leadtimes
url = "https://example.org/gallium.csv"   # http(s) only; or
path = "data/gallium.csv"      # a file, relative to this config file
interval = "1h"                # seconds, or 30s / 15m / 1h / 1d / 1w (shared/durations.py)
currency = "USD"
unit = "kg"
material = "gallium"           # when the records do not name it
columns = { observed_at = "date", price = "close" }   # record field names, where they differ
convert = { currency = "EUR", rate = 0.92, unit = "kg" }
series = { NICKEL = "nickel" } # pinksheet: series code -> material
eu27_total = true              # comext: sum the member states' rows into EU27 flows (what scoring reads)
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.ingest.observation import MaterialCatalog, PriceTerms, normalise_unit
from shared.durations import Duration
from shared.events import describe_validation_error

SourceKind = Literal["json_prices", "csv_prices", "pinksheet", "feed", "comext", "comtrade", "leadtimes"]
PRICE_KINDS = {"json_prices", "csv_prices", "pinksheet"}
KIND_OF_SOURCE = {
    "json_prices": "price",
    "csv_prices": "price",
    "pinksheet": "price",
    "feed": "news",
    "comext": "trade",
    "comtrade": "trade",
    "leadtimes": "leadtime",
}


class SourcesError(ValueError):
    """The sources file is unusable; the message names the source and the field."""


class Conversion(BaseModel):
    """Convert a source's prices: to another currency at a fixed rate, and/or to another mass unit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    currency: str = Field(default="", pattern=r"^([A-Z]{3})?$")
    rate: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    unit: str = ""

    @model_validator(mode="after")
    def _rate_with_currency(self) -> Conversion:
        if bool(self.currency) != (self.rate is not None):
            raise ValueError("a currency conversion needs both currency and rate")
        return self


class SourceConfig(BaseModel):
    """One declared source."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    kind: SourceKind
    url: str = ""
    path: Path | None = None
    interval: Duration = Field(default=3600.0, ge=1)
    currency: str = Field(default="", pattern=r"^([A-Z]{3})?$")
    unit: str = ""
    material: str = ""
    columns: dict[str, str] = Field(default_factory=dict)
    convert: Conversion | None = None
    series: dict[str, str] = Field(default_factory=dict)
    sheet: str = "Monthly Prices"
    items_path: str = ""  # json_prices: dotted path to the list of records, e.g. "data.prices"
    value_currency: Literal["EUR", "USD"] = "EUR"  # trade: currency of the value column
    usd_eur_rate: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    eu27_total: bool = False  # comext: sum the member states' rows into one flow reported by EU27
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = Field(default="utf-8", pattern=r"^[A-Za-z0-9_-]{2,20}$")

    @field_validator("url")
    @classmethod
    def _http_only(cls, v: str) -> str:
        if v and urlsplit(v).scheme.lower() not in ("http", "https"):
            raise ValueError(f"scheme {urlsplit(v).scheme or '(none)'!r} is not allowed: use http(s) url or path")
        return v

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if bool(self.url) == (self.path is not None):
            raise ValueError("give exactly one of url or path")
        if self.kind in ("json_prices", "csv_prices") and not (self.currency or "currency" in self.columns):
            raise ValueError("a price source states its currency")
        if self.kind in ("json_prices", "csv_prices") and not (self.unit or "unit" in self.columns):
            raise ValueError("a price source states its unit")
        return self

    @property
    def event_kind(self) -> str:
        return KIND_OF_SOURCE[self.kind]

    @property
    def location(self) -> str:
        return self.url or str(self.path)

    def price_terms(self) -> PriceTerms:
        conv = self.convert or Conversion()
        return PriceTerms(
            currency=self.currency,
            unit=normalise_unit(self.unit) if self.unit else "",
            to_currency=conv.currency,
            fx_rate=conv.rate,
            to_unit=conv.unit,
            material=self.material,
            url=self.url,
        )


class SourcesConfig(BaseModel):
    """Every declared source, by name."""

    model_config = ConfigDict(frozen=True)
    sources: tuple[SourceConfig, ...]

    def by_name(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(f"no source named {name!r}; declared: {', '.join(s.name for s in self.sources)}")


class SourcesFile(BaseModel):
    """The file's top level: only `[[source]]` entries, each validated as a SourceConfig to name it in errors."""

    model_config = ConfigDict(extra="forbid")
    source: list[dict[str, Any]] = Field(min_length=1, description="declare at least one [[source]]")


def parse_sources(text: str, base_dir: Path, catalog: MaterialCatalog | None = None) -> SourcesConfig:
    """Validate a sources file's text; relative paths resolve against `base_dir`; errors name the source."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SourcesError(f"sources file is not valid TOML: {exc}") from exc
    try:
        entries = SourcesFile.model_validate(doc).source
    except ValidationError as exc:
        raise SourcesError(f"sources file: {describe_validation_error(exc)}") from exc
    sources: list[SourceConfig] = []
    for position, entry in enumerate(entries, start=1):
        label = f"source {entry.get('name')!r}" if isinstance(entry.get("name"), str) else f"source #{position}"
        try:
            source = SourceConfig.model_validate(entry)
        except ValidationError as exc:
            raise SourcesError(f"{label}: {describe_validation_error(exc)}") from exc
        if source.path is not None and not source.path.is_absolute():
            source = source.model_copy(update={"path": (base_dir / source.path).resolve()})
        if catalog is not None:
            for name in ([source.material] if source.material else []) + list(source.series.values()):
                if catalog.resolve_material(name) is None:
                    raise SourcesError(f"{label}: material {name!r} is not in the catalog")
        if any(s.name == source.name for s in sources):
            raise SourcesError(f"{label}: the name is declared twice")
        sources.append(source)
    return SourcesConfig(sources=tuple(sources))


def load_sources(path: Path, catalog: MaterialCatalog | None = None) -> SourcesConfig:
    """Read and validate a sources file."""
    return parse_sources(Path(path).read_text(encoding="utf-8"), Path(path).resolve().parent, catalog)
