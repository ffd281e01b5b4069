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

# The kinds of signal a term can give. The first five are measures in their own right.
MEASURE_KINDS = ("export_ban", "export_licence", "export_quota", "export_tax", "sanction")
SIGNAL_KINDS = (*MEASURE_KINDS, "restriction", "easing", "supply")

_LIST_FIELDS = ("stopwords", "negations", "unreliable_names", "masks", "date_triggers")
_FIELDS = {"language", "gap_words", "months", "terms", *_LIST_FIELDS}


class LexiconError(ValueError):
    """A lexicon file that cannot be used, with the file and the place in it at fault."""


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


@dataclass(frozen=True, eq=False)
class Lexicon:
    """All languages' lexicons, by language code."""

    languages: Mapping[str, LanguageLexicon]

    def unreliable_names(self, language: str) -> frozenset[str]:
        """Names not trusted in running text of this language; of every language when it is unknown."""
        if language in self.languages:
            return self.languages[language].unreliable_names
        return frozenset().union(*(lex.unreliable_names for lex in self.languages.values()))

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
    for key in ("masks", "date_triggers"):
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
    )


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
