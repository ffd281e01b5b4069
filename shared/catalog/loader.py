"""Load and validate the catalog's TOML files; every error names the file and the entry."""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shared.catalog.models import LANGUAGES, Catalog, Country, Material
from shared.catalog.names import fold

HERE = Path(__file__).resolve().parent
MATERIALS_FILE = HERE / "materials.toml"
COUNTRIES_FILE = HERE / "countries.toml"

_MATERIAL_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_COUNTRY_CODE = re.compile(r"^[A-Z]{2}$")
_MATERIAL_FIELDS = {"name", "critical", "strategic", "group", "members", "hs", "stems", "names", "note"}
_COUNTRY_FIELDS = {"name", "iso3", "eu", "names", "exact"}
_ISO3 = re.compile(r"^[A-Z]{3}$")


class CatalogError(ValueError):
    """A catalog file that cannot be used, with the file and entry at fault."""


@functools.cache
def load_catalog(materials_path: Path | None = None, countries_path: Path | None = None) -> Catalog:
    """The validated catalog, read once per pair of paths; the packaged files by default."""
    materials_file = Path(materials_path or MATERIALS_FILE)
    countries_file = Path(countries_path or COUNTRIES_FILE)
    materials = _parse_materials(_read(materials_file), materials_file)
    countries = _parse_countries(_read(countries_file), countries_file)
    return Catalog(materials, countries)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CatalogError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as err:
        raise CatalogError(f"{path.name}: not valid TOML: {err}") from None


def _parse_materials(data: dict[str, Any], path: Path) -> list[Material]:
    materials: list[Material] = []
    owner: dict[str, str] = {}
    for mid, entry in data.items():
        where = f"{path.name} [{mid}]"
        if not _MATERIAL_ID.match(mid):
            raise CatalogError(f"{where}: id must be kebab-case ascii, like 'natural-graphite'")
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: must be a table")
        _no_unknown_fields(entry, _MATERIAL_FIELDS, where)
        name = _text(entry, "name", where, required=True)
        names = _names(entry.get("names", {}), where)
        hs = tuple(_hs_code(code, where) for code in _texts(entry, "hs", where))
        stems = tuple(fold(s) for s in _texts(entry, "stems", where))
        for stem in stems:
            if " " in stem or len(stem) < 4:
                raise CatalogError(f"{where}: stem {stem!r} must be one word of at least 4 letters")
        material = Material(
            id=mid,
            name=name,
            critical=_flag(entry, "critical", where),
            strategic=_flag(entry, "strategic", where),
            group=_text(entry, "group", where) or None,
            members=tuple(_texts(entry, "members", where)),
            hs=tuple(dict.fromkeys(hs)),
            stems=stems,
            names=names,
            note=_text(entry, "note", where),
        )
        # A name that means two materials would make resolve_material guess; refuse the file instead.
        for alias in (mid, *material.aliases):
            key = fold(alias)
            other = owner.setdefault(key, mid)
            if other != mid:
                raise CatalogError(f"{where}: name {alias!r} is already a name of [{other}]")
        materials.append(material)
    ids = {m.id for m in materials}
    for m in materials:
        where = f"{path.name} [{m.id}]"
        refs = ([m.group] if m.group else []) + list(m.members)
        for ref in refs:
            if ref not in ids:
                raise CatalogError(f"{where}: refers to unknown material {ref!r}")
        _check_no_group_cycle(m, {x.id: x for x in materials}, where)
    return materials


def _parse_countries(data: dict[str, Any], path: Path) -> list[Country]:
    countries: list[Country] = []
    owner: dict[str, str] = {}
    for code, entry in data.items():
        where = f"{path.name} [{code}]"
        if not _COUNTRY_CODE.match(code):
            raise CatalogError(f"{where}: key must be an ISO 3166-1 alpha-2 code in capitals")
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: must be a table")
        _no_unknown_fields(entry, _COUNTRY_FIELDS, where)
        iso3 = _text(entry, "iso3", where)
        if iso3 and not _ISO3.match(iso3):
            raise CatalogError(f"{where}: iso3 must be an ISO 3166-1 alpha-3 code in capitals")
        country = Country(
            code=code,
            name=_text(entry, "name", where, required=True),
            iso3=iso3,
            eu=_flag(entry, "eu", where),
            names=_names(entry.get("names", {}), where),
            exact=tuple(_texts(entry, "exact", where)),
        )
        for alias in (code, *country.aliases):
            key = fold(alias)
            other = owner.setdefault(key, code)
            if other != code:
                raise CatalogError(f"{where}: name {alias!r} is already a name of [{other}]")
        countries.append(country)
    return countries


def _check_no_group_cycle(material: Material, by_id: dict[str, Material], where: str) -> None:
    seen = {material.id}
    group = material.group
    while group:
        if group in seen:
            raise CatalogError(f"{where}: group chain loops back to {group!r}")
        seen.add(group)
        group = by_id[group].group


def _no_unknown_fields(entry: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise CatalogError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _text(entry: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise CatalogError(f"{where}: {key} must be a{' non-empty' if required else ''} string")
    return value.strip()


def _texts(entry: dict[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise CatalogError(f"{where}: {key} must be a list of non-empty strings")
    return [v.strip() for v in value]


def _flag(entry: dict[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: {key} must be true or false")
    return value


def _names(value: Any, where: str) -> MappingProxyType[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise CatalogError(f"{where}: names must be a table of languages")
    out: dict[str, tuple[str, ...]] = {}
    for lang, names in value.items():
        if lang not in LANGUAGES:
            raise CatalogError(f"{where}: names.{lang}: language must be one of {', '.join(LANGUAGES)}")
        out[lang] = tuple(_texts({"names": names}, "names", f"{where} names.{lang}"))
    return MappingProxyType(out)


def _hs_code(code: str, where: str) -> str:
    digits = code.replace(".", "").replace(" ", "")
    if not digits.isdigit() or len(digits) not in (4, 6, 8, 10):
        raise CatalogError(f"{where}: hs code {code!r} must have 4, 6, 8 or 10 digits (dots allowed)")
    return digits
