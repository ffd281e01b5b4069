"""The classifier's lexicon: one TOML file per language in lexicon/, validated on load."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services.ingest.classify.patterns import TermError, term_regex
from shared.catalog import fold

LEXICON_DIR = Path(__file__).resolve().parent / "lexicon"

# The kinds of signal a term can give. The first five are measures in their own right; `replacement`
# ("replaces the ban with") marks a new measure taking an old one's place.
MEASURE_KINDS = ("export_ban", "export_licence", "export_quota", "export_tax", "sanction")
# Supply signals that are not export measures, each a `topic` of its own.
TOPIC_KINDS = ("production", "tariff", "stockpile", "leadtime", "price", "trade_volume")
SIGNAL_KINDS = (*MEASURE_KINDS, "restriction", "easing", "replacement", *TOPIC_KINDS)
UNITS = {"day": 1, "week": 7, "month": 30, "year": 365}

_LIST_FIELDS = (
    "stopwords",
    "negations",
    "unreliable_names",
    "masks",
    "date_triggers",
    "compound_heads",
    "place_words",
    "articles",
    "target_words",
    "not_target_words",
    "conjunctions",
)
_FIGURE_LISTS = ("price_words", "rises", "falls", "moves")
# German capitalises every noun; Chinese has no case.
_CAPITALISED_NOUNS = {"de"}
_NO_CASE = {"zh"}
_FIELDS = {"language", "gap_words", "months", "terms", "materials", "countries", "figures", "senses", *_LIST_FIELDS}
_FIGURE_FIELDS = {"numbers", "units", "multipliers", *_FIGURE_LISTS}


class LexiconError(ValueError):
    """A lexicon file that cannot be used, with the file and the place in it at fault."""


@dataclass(frozen=True, eq=False)
class Figures:
    """Words that state a lead time or a price move in one language."""

    numbers: Mapping[str, int]
    units: Mapping[str, tuple[str, ...]]
    multipliers: Mapping[str, float]
    price_words: tuple[str, ...]
    rises: tuple[str, ...]
    falls: tuple[str, ...]
    # Strong moves said of a material itself, as a market says them: "tin jumps", "el estaño se dispara".
    moves: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class LanguageLexicon:
    """What the classifier knows of one language."""

    language: str
    gap_words: int
    stopwords: frozenset[str]
    negations: frozenset[str]
    unreliable_names: frozenset[str]
    masks: tuple[str, ...]
    months: tuple[tuple[str, ...], ...]
    date_triggers: tuple[str, ...]
    terms: Mapping[str, tuple[str, ...]]
    # Names of catalog materials and countries in this language that the catalog does not give.
    materials: Mapping[str, tuple[str, ...]]
    countries: Mapping[str, tuple[str, ...]]
    figures: Figures
    # Terms of another sense: an item with one of a material's terms uses its name otherwise ("medal" for silver).
    senses: Mapping[str, tuple[str, ...]]
    # Whether common nouns are written in lower case, so that a capitalised name mid-sentence is a proper noun.
    lower_case_nouns: bool
    # Second parts of compound words that follow a material's name ("prijs" in tinprijs, "preis" in Zinnpreis).
    compound_heads: tuple[str, ...] = ()
    # Capitalised words that make a place of a material name written just before them ("Copper Mountain").
    place_words: frozenset[str] = frozenset()
    # Articles that may stand before a material at the start of a clause ("the", "el", "l'").
    articles: frozenset[str] = frozenset()
    # Words right before a country's name (an article may stand between) that make it the target or destination
    # of a measure, not its imposer: "to", "against", "naar", 对; and longer phrases ending in one of them that
    # do not ("according to", 受到).
    target_words: tuple[str, ...] = ()
    not_target_words: tuple[str, ...] = ()
    # Words that join a list of names ("and", "or"): a country listed after a target is one too.
    conjunctions: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class Lexicon:
    """All languages' lexicons, by language code."""

    languages: Mapping[str, LanguageLexicon]

    def unreliable_names(self, language: str) -> frozenset[str]:
        """Names not trusted in running text of this language; of every language when it is unknown."""
        if language in self.languages:
            return self.languages[language].unreliable_names
        return frozenset().union(*(lex.unreliable_names for lex in self.languages.values()))

    def place_words(self, language: str) -> frozenset[str]:
        """Words that make a place of a material name before them; of every language when it is unknown. English
        ones count in every language, since names of bands, films and firms are English everywhere ("Nickel Boys")."""
        if language in self.languages:
            english = self.languages["en"].place_words if "en" in self.languages else frozenset()
            return self.languages[language].place_words | english
        return frozenset().union(*(lex.place_words for lex in self.languages.values()))

    def articles(self, language: str) -> frozenset[str]:
        """Articles of this language; of every language when it is unknown."""
        if language in self.languages:
            return self.languages[language].articles
        return frozenset().union(*(lex.articles for lex in self.languages.values()))

    def conjunctions(self, language: str) -> frozenset[str]:
        """Words that join a list of names in this language; of every language when it is unknown."""
        if language in self.languages:
            return self.languages[language].conjunctions
        return frozenset().union(*(lex.conjunctions for lex in self.languages.values()))

    def negations(self, language: str) -> frozenset[str]:
        """Negation words of this language; of every language when it is unknown."""
        if language in self.languages:
            return self.languages[language].negations
        return frozenset().union(*(lex.negations for lex in self.languages.values()))


@functools.cache
def load_lexicon(directory: Path | None = None) -> Lexicon:
    """Every `*.toml` lexicon in the directory (the packaged one by default), validated, read once."""
    folder = Path(directory or LEXICON_DIR)
    files = sorted(folder.glob("*.toml"))
    if not files:
        raise LexiconError(f"{folder}: no lexicon files (*.toml)")
    languages: dict[str, LanguageLexicon] = {}
    for path in files:
        lexicon = _parse(_read(path), path.name)
        if lexicon.language in languages:
            raise LexiconError(f"{path.name}: language {lexicon.language!r} is already given by another file")
        languages[lexicon.language] = lexicon
    return Lexicon(MappingProxyType(languages))


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise LexiconError(f"{path.name}: not valid TOML: {err}") from None


def _parse(data: dict[str, Any], name: str) -> LanguageLexicon:
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise LexiconError(f"{name}: unknown field(s) {', '.join(unknown)}")
    language = data.get("language")
    if not isinstance(language, str) or not language.isalpha() or len(language) != 2:
        raise LexiconError(f"{name}: language must be a two-letter code")
    gap_words = data.get("gap_words", 4)
    if not isinstance(gap_words, int) or isinstance(gap_words, bool) or not 0 <= gap_words <= 12:
        raise LexiconError(f"{name}: gap_words must be a whole number from 0 to 12")
    lists = {key: _words(data.get(key, []), f"{name}: {key}") for key in _LIST_FIELDS}
    for key in ("masks", "date_triggers", "target_words", "not_target_words"):
        for term in lists[key]:
            _check_term(term, gap_words, f"{name}: {key}")
    terms = data.get("terms", {})
    if not isinstance(terms, dict):
        raise LexiconError(f"{name}: [terms] must be a table")
    unknown_kinds = sorted(set(terms) - set(SIGNAL_KINDS))
    if unknown_kinds:
        raise LexiconError(
            f"{name}: [terms] unknown kind(s) {', '.join(unknown_kinds)}; known: {', '.join(SIGNAL_KINDS)}"
        )
    checked: dict[str, tuple[str, ...]] = {}
    for kind in SIGNAL_KINDS:
        where = f"{name}: terms.{kind}"
        kind_terms = _words(terms.get(kind, []), where)
        for term in kind_terms:
            _check_term(term, gap_words, where)
        checked[kind] = kind_terms
    return LanguageLexicon(
        language=language,
        gap_words=gap_words,
        stopwords=frozenset(lists["stopwords"]),
        negations=frozenset(lists["negations"]),
        unreliable_names=frozenset(lists["unreliable_names"]),
        masks=lists["masks"],
        months=_months(data.get("months"), name),
        date_triggers=lists["date_triggers"],
        terms=MappingProxyType(checked),
        materials=_names_table(data.get("materials", {}), f"{name}: materials"),
        countries=_names_table(data.get("countries", {}), f"{name}: countries"),
        figures=_figures(data.get("figures", {}), gap_words, f"{name}: figures"),
        senses=_checked_table(data.get("senses", {}), gap_words, f"{name}: senses"),
        lower_case_nouns=language not in _CAPITALISED_NOUNS and language not in _NO_CASE,
        compound_heads=lists["compound_heads"],
        place_words=frozenset(lists["place_words"]),
        articles=frozenset(lists["articles"]),
        target_words=lists["target_words"],
        not_target_words=lists["not_target_words"],
        conjunctions=frozenset(lists["conjunctions"]),
    )


def _checked_table(value: Any, gap_words: int, where: str) -> Mapping[str, tuple[str, ...]]:
    table = _names_table(value, where)
    for key, terms in table.items():
        for term in terms:
            _check_term(term, gap_words, f"{where}.{key}")
    return table


def _names_table(value: Any, where: str) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise LexiconError(f"{where}: must be a table of id = [names]")
    return MappingProxyType({key: _words(names, f"{where}.{key}") for key, names in value.items()})


def _figures(value: Any, gap_words: int, where: str) -> Figures:
    if not isinstance(value, dict):
        raise LexiconError(f"{where}: must be a table")
    unknown = sorted(set(value) - _FIGURE_FIELDS)
    if unknown:
        raise LexiconError(f"{where}: unknown field(s) {', '.join(unknown)}")
    numbers = _number_table(value.get("numbers", {}), f"{where}.numbers", whole=True)
    multipliers = _number_table(value.get("multipliers", {}), f"{where}.multipliers", whole=False)
    units = value.get("units", {})
    if not isinstance(units, dict) or set(units) - set(UNITS):
        raise LexiconError(f"{where}.units: must be a table with keys among {', '.join(UNITS)}")
    lists = {key: _words(value.get(key, []), f"{where}.{key}") for key in _FIGURE_LISTS}
    for key, terms in (*lists.items(), ("multipliers", tuple(multipliers))):
        for term in terms:
            _check_term(term, gap_words, f"{where}.{key}")
    return Figures(
        numbers=MappingProxyType({fold(k): int(v) for k, v in numbers.items()}),
        units=MappingProxyType({unit: _words(words, f"{where}.units.{unit}") for unit, words in units.items()}),
        multipliers=MappingProxyType({fold(k): float(v) for k, v in multipliers.items()}),
        **lists,
    )


def _number_table(value: Any, where: str, *, whole: bool) -> dict[str, float]:
    if not isinstance(value, dict):
        raise LexiconError(f"{where}: must be a table of word = number")
    kinds = (int,) if whole else (int, float)
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, kinds):
            raise LexiconError(f"{where}.{key}: must be a {'whole ' if whole else ''}number, got {number!r}")
    return value


def _words(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise LexiconError(f"{where}: must be a list of strings")
    out: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not fold(item):
            raise LexiconError(f"{where}[{index}]: must be a non-empty string, got {item!r}")
        folded = fold(item)
        if folded in out:
            raise LexiconError(f"{where}[{index}]: {item!r} is listed twice")
        out.append(folded)
    return tuple(out)


def _check_term(term: str, gap_words: int, where: str) -> None:
    try:
        term_regex(term, gap_words=gap_words)
    except TermError as err:
        raise LexiconError(f"{where}: {err}") from None


def _months(value: Any, name: str) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, list) or len(value) != 12:
        raise LexiconError(f"{name}: months must list the 12 months, each as a list of names")
    return tuple(_words(names, f"{name}: months[{number}]") for number, names in enumerate(value, start=1))
