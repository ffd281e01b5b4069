"""The material and country catalog: CRMA lists, names in several languages, HS codes, EU membership."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.catalog import COUNTRIES_FILE, MATERIALS_FILE, Catalog, CatalogError, load_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_crma_lists_have_34_critical_and_17_strategic_materials(catalog: Catalog) -> None:
    critical = {m.id for m in catalog.materials if m.critical}
    strategic = {m.id for m in catalog.materials if m.strategic}
    assert len(critical) == 34
    assert len(strategic) == 17
    assert {"gallium", "germanium", "antimony", "natural-graphite", "cobalt", "lithium", "tungsten"} <= critical
    assert {"aluminium", "copper", "nickel", "rare-earths-heavy", "rare-earths-light"} <= critical
    # Every strategic entry of the Act is critical too, but for the magnet group, which is critical
    # through its members' heavy and light groups.
    assert strategic - critical == {"rare-earths-magnet"}
    assert all(catalog.is_critical(member) for member in catalog.members("rare-earths-magnet"))


def test_individual_rare_earths_belong_to_the_crma_heavy_and_light_groups(catalog: Catalog) -> None:
    assert catalog.material("dysprosium").group == "rare-earths-heavy"
    assert catalog.material("neodymium").group == "rare-earths-light"
    assert catalog.material("platinum").group == "platinum-group-metals"
    assert set(catalog.members("rare-earths-light")) == {"cerium", "lanthanum", "neodymium", "praseodymium", "samarium"}
    assert len(catalog.members("rare-earths-heavy")) == 10
    assert catalog.is_critical("terbium")
    assert not catalog.material("terbium").critical
    assert not catalog.is_critical("tin")


@pytest.mark.parametrize(
    ("name", "material"),
    [
        ("Gallium", "gallium"),
        ("镓", "gallium"),
        ("锗", "germanium"),
        ("antimoon", "antimony"),
        ("Antimon", "antimony"),
        ("antimoine", "antimony"),
        ("锑", "antimony"),
        ("Graphit", "natural-graphite"),
        ("grafiet", "natural-graphite"),
        ("石墨", "natural-graphite"),
        ("Seltene Erden", "rare-earths"),
        ("zeldzame aardmetalen", "rare-earths"),
        ("terres rares", "rare-earths"),
        ("稀土", "rare-earths"),
        ("schwere Seltene Erden", "rare-earths-heavy"),
        ("Wolfram", "tungsten"),
        ("wolfraam", "tungsten"),
        ("kobalt", "cobalt"),
        ("Kupfer", "copper"),
        ("koper", "copper"),
        ("bauxite", "aluminium"),
        ("aluminum", "aluminium"),
        ("PGMs", "platinum-group-metals"),
        ("platina", "platinum"),
        ("Kaliumchlorid", "potash"),
        ("  NATURAL-GRAPHITE ", "natural-graphite"),
        ("molybdène", "molybdenum"),
        ("molybdene", "molybdenum"),
    ],
)
def test_names_and_aliases_resolve_in_every_language(catalog: Catalog, name: str, material: str) -> None:
    assert catalog.resolve_material(name) == material


@pytest.mark.parametrize("name", ["unobtainium", "galium", "rare", "metal", "", "graphite fc", "or"])
def test_unknown_names_resolve_to_none_never_a_guess(catalog: Catalog, name: str) -> None:
    assert catalog.resolve_material(name) is None


def test_material_lookup_by_unknown_id_raises_key_error_naming_it(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="unobtainium"):
        catalog.material("unobtainium")
    with pytest.raises(KeyError, match="did you mean the id 'natural-graphite'"):
        catalog.material("Graphite")


@pytest.mark.parametrize(
    ("code", "materials"),
    [
        ("8112.92", ("gallium", "germanium", "indium", "niobium", "vanadium")),
        ("811292", ("gallium", "germanium", "indium", "niobium", "vanadium")),
        ("81129289", ("gallium",)),
        ("81129281", ("indium",)),
        ("2504", ("natural-graphite",)),
        ("2504 10 00", ("natural-graphite",)),
        ("8110", ("antimony",)),
        ("2617.10", ("antimony",)),
        ("8105.20", ("cobalt",)),
        ("2605", ("cobalt",)),
        ("2825.20", ("lithium",)),
        ("2836.91", ("lithium",)),
        ("8101.94", ("tungsten",)),
        ("2611", ("tungsten",)),
        ("7502", ("nickel",)),
        ("2604", ("nickel",)),
        ("7403", ("copper",)),
        ("2603", ("copper",)),
        ("7601", ("aluminium",)),
        ("2606", ("aluminium",)),
        ("28053031", ("dysprosium", "gadolinium", "terbium")),
        ("711011", ("platinum",)),
        ("7110", ("platinum-group-metals",)),
    ],
)
def test_hs_codes_find_every_candidate_material_by_longest_prefix(
    catalog: Catalog, code: str, materials: tuple[str, ...]
) -> None:
    assert catalog.materials_for_hs(code) == materials


def test_rare_earth_hs_subheading_returns_the_whole_family(catalog: Catalog) -> None:
    found = catalog.materials_for_hs("2805.30")
    assert {"rare-earths", "rare-earths-heavy", "rare-earths-light", "scandium", "dysprosium", "neodymium"} <= set(
        found
    )


def test_heading_shorter_than_catalog_codes_returns_materials_under_it(catalog: Catalog) -> None:
    assert catalog.materials_for_hs("2846") == ("rare-earths",)
    assert "cerium" in catalog.materials_for_hs("2846.10")


@pytest.mark.parametrize("code", ["81", "abcd", "8112.9x", "12345678901"])
def test_malformed_hs_codes_are_refused(catalog: Catalog, code: str) -> None:
    with pytest.raises(ValueError, match="4 to 10 digits"):
        catalog.materials_for_hs(code)


def test_unclassified_hs_code_finds_nothing(catalog: Catalog) -> None:
    assert catalog.materials_for_hs("0901.21") == ()


def test_every_iso_country_is_present_and_27_are_eu_members(catalog: Catalog) -> None:
    assert len(catalog.countries) == 249
    eu = {c.code for c in catalog.countries if c.eu}
    assert len(eu) == 27
    assert {"NL", "DE", "FR", "BE", "PL", "SE", "CY", "MT", "HR"} <= eu
    assert catalog.is_eu("nl")
    assert not catalog.is_eu("GB")
    assert not catalog.is_eu("NO")
    assert not catalog.is_eu("CH")


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("China", "CN"),
        ("Chinese", "CN"),
        ("Volksrepubliek China", "CN"),
        ("chinesische", "CN"),
        ("Chinas", "CN"),
        ("中国", "CN"),
        ("Verenigde Staten", "US"),
        ("U.S.", "US"),
        ("Vereinigte Staaten", "US"),
        ("DR Congo", "CD"),
        ("Democratische Republiek Congo", "CD"),
        ("Demokratische Republik Kongo", "CD"),
        ("Congo-Brazzaville", "CG"),
        ("Rusland", "RU"),
        ("russischen", "RU"),
        ("Zuid-Afrika", "ZA"),
        ("Südafrika", "ZA"),
        ("Indonesië", "ID"),
        ("Turkije", "TR"),
        ("Türkiye", "TR"),
        ("Simbabwe", "ZW"),
        ("Birma", "MM"),
        ("Dutch", "NL"),
        ("Nederlandse", "NL"),
        ("United Kingdom", "GB"),
        ("Großbritannien", "GB"),
        ("Zuid-Korea", "KR"),
        ("Filipijnen", "PH"),
        ("Oekraïne", "UA"),
        ("cd", "CD"),
    ],
)
def test_country_names_adjectives_and_codes_resolve(catalog: Catalog, name: str, code: str) -> None:
    assert catalog.resolve_country(name) == code


@pytest.mark.parametrize("name", ["Korea", "Atlantis", "Europe", "EU"])
def test_unknown_or_ambiguous_country_names_resolve_to_none(catalog: Catalog, name: str) -> None:
    assert catalog.resolve_country(name) is None


def test_country_lookup_by_unknown_code_raises_key_error(catalog: Catalog) -> None:
    with pytest.raises(KeyError, match="'XX'"):
        catalog.country("XX")


def test_display_names_fall_back_to_english(catalog: Catalog) -> None:
    assert catalog.material("natural-graphite").display_name("de") == "Naturgraphit"
    assert catalog.material("gold").display_name("fr") == "Gold"
    assert catalog.country("DE").display_name("nl") == "Duitsland"


def test_no_name_belongs_to_two_materials(catalog: Catalog) -> None:
    owners: dict[str, str] = {}
    for material in catalog.materials:
        for alias in material.aliases:
            owner = owners.setdefault(alias.casefold(), material.id)
            assert owner == material.id, f"{alias!r} names both {owner} and {material.id}"


def test_a_name_as_the_catalog_spells_it_resolves_as_any_other_spelling_of_it(catalog: Catalog) -> None:
    # Names spelled as the catalog does take a shortcut past folding; it must answer what folding answers.
    for material in catalog.materials:
        for alias in (material.id, *material.aliases):
            assert catalog.resolve_material(alias) == catalog.resolve_material(f" {alias.upper()} ") == material.id
    for country in catalog.countries:
        for alias in (country.code, *country.aliases):
            assert catalog.resolve_country(alias) == catalog.resolve_country(f" {alias.upper()} ") == country.code


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_loader_rejects_an_alias_shared_by_two_materials(tmp_path: Path) -> None:
    materials = _write(
        tmp_path / "materials.toml",
        '[gallium]\nname = "Gallium"\nnames.en = ["gallium", "Ga metal"]\n\n'
        '[germanium]\nname = "Germanium"\nnames.de = ["Germanium", "ga métal"]\n',
    )
    with pytest.raises(CatalogError, match=r"\[germanium\].*'ga métal'.*\[gallium\]"):
        load_catalog(materials, COUNTRIES_FILE)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[Gallium]\nname = "Gallium"\n', r"\[Gallium\]: id must be kebab-case"),
        ('[gallium]\nname = ""\n', r"\[gallium\]: name must be a non-empty string"),
        ('[gallium]\nname = "Gallium"\nhs = ["8112.9"]\n', r"\[gallium\]: hs code '8112.9'"),
        ('[gallium]\nname = "Gallium"\ncritical = "yes"\n', r"\[gallium\]: critical must be true or false"),
        ('[gallium]\nname = "Gallium"\ngroup = "nothing"\n', r"\[gallium\]: refers to unknown material 'nothing'"),
        ('[gallium]\nname = "Gallium"\ncolour = "grey"\n', r"\[gallium\]: unknown field\(s\) colour"),
        ('[gallium]\nname = "Gallium"\nnames.xx = ["g"]\n', r"\[gallium\]: names.xx"),
        ('[gallium]\nname = "Gallium"\nnames.en = [\n', r"not valid TOML"),
    ],
)
def test_loader_errors_name_the_entry_at_fault(tmp_path: Path, toml: str, message: str) -> None:
    materials = _write(tmp_path / "materials.toml", toml)
    with pytest.raises(CatalogError, match=message):
        load_catalog(materials, COUNTRIES_FILE)


def test_loader_rejects_a_country_name_shared_by_two_countries(tmp_path: Path) -> None:
    countries = _write(
        tmp_path / "countries.toml",
        '[CD]\nname = "DR Congo"\nnames.en = ["Congo"]\n\n[CG]\nname = "Republic of the Congo"\nnames.en = ["Congo"]\n',
    )
    with pytest.raises(CatalogError, match=r"\[CG\].*'Congo'.*\[CD\]"):
        load_catalog(MATERIALS_FILE, countries)
