"""Materials, countries and the catalog that looks them up."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from shared.catalog.names import fold

LANGUAGES = ("en", "nl", "de", "fr", "zh")


@dataclass(frozen=True)
class Material:
    """A raw material: its flags under the EU Critical Raw Materials Act, names and trade codes."""

    id: str
    name: str
    critical: bool = False
    strategic: bool = False
    group: str | None = None
    members: tuple[str, ...] = ()
    hs: tuple[str, ...] = ()
    stems: tuple[str, ...] = ()
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)
    note: str = ""

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every name in every language, without repeats."""
        return _unique((self.name, *(n for lang in self.names for n in self.names[lang])))

    def display_name(self, language: str = "en") -> str:
        """The name to show a reader of `language`; English when the catalog has none in it."""
        names = self.names.get(language)
        return names[0] if names else self.name


@dataclass(frozen=True)
class Country:
    """A country or territory by ISO 3166-1 alpha-2 code."""

    code: str
    name: str
    iso3: str = ""
    eu: bool = False
    names: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)
    exact: tuple[str, ...] = ()

    @property
    def aliases(self) -> tuple[str, ...]:
        """Every name in every language plus the case-sensitive abbreviations, without repeats."""
        return _unique((self.name, *(n for lang in self.names for n in self.names[lang]), *self.exact))

    def display_name(self, language: str = "en") -> str:
        """The name to show a reader of `language`; English when the catalog has none in it."""
        names = self.names.get(language)
        return names[0] if names else self.name


class Catalog:
    """Read-only lookups over materials and countries; build it with `load_catalog`."""

    def __init__(self, materials: Iterable[Material], countries: Iterable[Country]) -> None:
        self._materials = tuple(materials)
        self._countries = tuple(countries)
        self._material_by_id = {m.id: m for m in self._materials}
        self._country_by_code = {c.code: c for c in self._countries}
        self._country_by_iso3 = {c.iso3: c.code for c in self._countries if c.iso3}
        # Every alias, folded once; where two fold alike, the later one wins.
        material_names = [(alias, fold(alias), m.id) for m in self._materials for alias in (m.id, *m.aliases)]
        country_names = [(alias, fold(alias), c.code) for c in self._countries for alias in (c.code, *c.aliases)]
        self._material_by_name = {folded: material for _, folded, material in material_names}
        self._country_by_name = {folded: code for _, folded, code in country_names}
        # Each alias as written, to what its folded form resolves: most records spell a name as the catalog
        # does, and folding it (character by character) was most of what resolving a name cost.
        self._material_by_spelling = {alias: self._material_by_name[folded] for alias, folded, _ in material_names}
        self._country_by_spelling = {alias: self._country_by_name[folded] for alias, folded, _ in country_names}
        self._hs: dict[str, list[str]] = {}
        for m in self._materials:
            for code in m.hs:
                self._hs.setdefault(code, []).append(m.id)
        self._members: dict[str, list[str]] = {}
        for m in self._materials:
            if m.group:
                self._members.setdefault(m.group, []).append(m.id)
            for member in m.members:
                self._members.setdefault(m.id, []).append(member)

    @property
    def materials(self) -> tuple[Material, ...]:
        """All materials in file order."""
        return self._materials

    @property
    def countries(self) -> tuple[Country, ...]:
        """All countries in file order."""
        return self._countries

    def material(self, material_id: str) -> Material:
        """The material with this id; KeyError names the id when there is none."""
        try:
            return self._material_by_id[material_id]
        except KeyError:
            hint = self.resolve_material(material_id)
            extra = f" (did you mean the id {hint!r}?)" if hint else ""
            raise KeyError(f"no material with id {material_id!r} in the catalog{extra}") from None

    def resolve_material(self, name: str) -> str | None:
        """The id of the material this id, name or alias denotes, in any language; None when unknown."""
        found = self._material_by_spelling.get(name)
        return found if found is not None else self._material_by_name.get(fold(name))

    def members(self, material_id: str) -> tuple[str, ...]:
        """Ids of the materials directly in this group (by their `group` or the group's `members`)."""
        self.material(material_id)
        return tuple(sorted(set(self._members.get(material_id, ()))))

    def is_critical(self, material_id: str) -> bool:
        """True when the material, or a group it belongs to, is on the CRMA critical list."""
        material: Material | None = self.material(material_id)
        while material is not None:
            if material.critical:
                return True
            material = self._material_by_id.get(material.group) if material.group else None
        return False

    def materials_for_hs(self, code: str) -> tuple[str, ...]:
        """Ids of the materials an HS/CN code may denote: "8112.92", "811292" or "81129289".

        The longest code in the catalog that starts the given one wins, so a CN code finds the materials
        named at that precision and else those of its HS subheading. A heading shorter than every
        catalog code (e.g. "2846") returns the materials with codes under it.
        """
        digits = "".join(ch for ch in code if ch not in ". \t")
        if not digits.isdigit() or not 4 <= len(digits) <= 10:
            raise ValueError(f"HS/CN code {code!r} must be 4 to 10 digits, dots and spaces allowed")
        for length in range(len(digits), 3, -1):
            found = self._hs.get(digits[:length])
            if found:
                return tuple(sorted(set(found)))
        under = {mid for hs, ids in self._hs.items() if hs.startswith(digits) for mid in ids}
        return tuple(sorted(under))

    def country(self, code: str) -> Country:
        """The country with this ISO 3166-1 alpha-2 code (any case); KeyError names the code otherwise."""
        try:
            return self._country_by_code[code.upper()]
        except KeyError:
            raise KeyError(f"no country with ISO 3166-1 alpha-2 code {code!r} in the catalog") from None

    def country_for_iso3(self, code: str) -> str | None:
        """The ISO alpha-2 code for an ISO 3166-1 alpha-3 code (any case); None when unknown."""
        return self._country_by_iso3.get(code.upper())

    def resolve_country(self, name: str) -> str | None:
        """The ISO alpha-2 code for a code, name, adjective or alias in any language; None when unknown."""
        found = self._country_by_spelling.get(name)
        return found if found is not None else self._country_by_name.get(fold(name))

    def is_eu(self, code: str) -> bool:
        """True for the 27 member states of the European Union."""
        return self.country(code).eu


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
