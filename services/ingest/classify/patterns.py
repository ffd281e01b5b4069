"""Lexicon terms and catalog names as small regexes, found fast through a word-prefix index.

One alternation of a few thousand names is slow in Python's backtracking engine (seconds per article), so
each term keeps its own regex and is only tried where a word of the text starts with the term's first
letters.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shared.catalog import fold
from shared.catalog.names import fold_char

_WORD = re.compile(r"\w+")
_KEY = re.compile(r"^\w+")
_SENTENCE_WORD = r"[^\s;:!?]*[^\s.;:!?]"
_GAP_MARK = ".."
# Han, kana, hangul and full-width forms: text without any has no Chinese term to find.
_CJK_CHAR = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
# Chinese has no spaces: a gap is a run of characters within one clause, about two per skipped word.
_CJK_GAP = r"[^。！？；;!?\n]{{0,{chars}}}?"


class TermError(ValueError):
    """A lexicon term that cannot be compiled."""


@dataclass(frozen=True)
class FoldedText:
    """Text folded for matching, with each folded character's index in the original."""

    original: str
    folded: str
    origin: tuple[int, ...]

    def original_span(self, start: int, end: int) -> str:
        """The original text behind folded[start:end]."""
        if start >= end:
            return ""
        return self.original[self.origin[start] : self.origin[end - 1] + 1]

    def blanked(self, spans: Iterable[tuple[int, int]]) -> FoldedText:
        """The same text with these folded spans replaced by spaces, so nothing matches inside them."""
        chars = list(self.folded)
        for start, end in spans:
            chars[start:end] = " " * (end - start)
        return FoldedText(self.original, "".join(chars), self.origin)


def fold_text(text: str) -> FoldedText:
    """Fold text as shared.catalog.fold does, keeping the way back to the original characters."""
    parts: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = fold_char(char)
        parts.append(folded)
        origin.extend([index] * len(folded))
    return FoldedText(text, "".join(parts), tuple(origin))


@dataclass(frozen=True)
class Hit:
    """One term found: where in the folded text, what it stands for, the term and the original words."""

    start: int
    end: int
    value: str
    term: str
    match: str


@dataclass(frozen=True)
class _Term:
    term: str
    value: str
    key: str
    infix: bool
    regex: re.Pattern[str]


def term_regex(term: str, *, gap_words: int = 4, literal: bool = False) -> str:
    """Regex source for a folded term: spaces may be absent or hyphens, `*` extends a word, `..` is a gap."""
    tokens = term.split()
    if not tokens:
        raise TermError("empty term")
    # After a gap the next word may carry an elided article: "suspend l'interdiction".
    gap = rf"\s+(?:{_SENTENCE_WORD}\s+){{0,{gap_words}}}?(?:\w{{1,3}}')?"
    parts: list[str] = []
    pending_gap = False
    for position, token in enumerate(tokens):
        if not literal and token == _GAP_MARK:
            if position == 0 or position == len(tokens) - 1 or pending_gap:
                raise TermError(f"{term!r}: '..' must stand between two words")
            pending_gap = True
            continue
        lead = not literal and token.startswith("*")
        trail = not literal and token.endswith("*")
        core = token.strip("*") if not literal else token
        if not core or (not literal and "*" in core):
            raise TermError(f"{term!r}: '*' may only start or end a word")
        if parts:
            parts.append(gap if pending_gap else r"\s*")
        parts.append((r"\w*" if lead else "") + re.escape(core) + (r"\w*" if trail else ""))
        pending_gap = False
    return "(?<!\\w)" + "".join(parts) + "(?!\\w)"


def cjk_regex(term: str, *, gap_words: int = 4) -> re.Pattern[str]:
    """A Chinese term with `..` gaps: its pieces in order within one clause, no word boundaries."""
    pieces = [piece.replace(" ", "") for piece in term.split(_GAP_MARK)]
    if any(not piece for piece in pieces):
        raise TermError(f"{term!r}: '..' must stand between two words")
    return re.compile(_CJK_GAP.format(chars=2 * max(gap_words, 1) + 4).join(re.escape(p) for p in pieces))


def is_cjk(text: str) -> bool:
    """True when the text has Chinese, Japanese or Korean characters, which have no spaces between words."""
    return any(unicodedata.east_asian_width(ch) == "W" for ch in text)


class TermSet:
    """Terms that stand for values; `find` returns the leftmost-longest non-overlapping hits."""

    def __init__(
        self,
        entries: Iterable[tuple[str, str]],
        *,
        gap_words: int = 4,
        gaps: Mapping[str, int] | None = None,
        literal: bool = False,
        case_sensitive: bool = False,
    ) -> None:
        self._case_sensitive = case_sensitive
        self._by_prefix: dict[str, list[_Term]] = {}
        self._short: dict[str, list[_Term]] = {}
        self._infix: dict[str, list[_Term]] = {}
        self._cjk: list[tuple[str, str]] = []
        self._cjk_gapped: list[tuple[str, str, re.Pattern[str]]] = []
        seen: set[tuple[str, str]] = set()
        for raw, value in entries:
            term = raw if case_sensitive else fold(raw)
            if (term, value) in seen:
                continue
            seen.add((term, value))
            if is_cjk(term):
                if not literal and _GAP_MARK in term.split():
                    self._cjk_gapped.append((term, value, cjk_regex(term, gap_words=(gaps or {}).get(term, gap_words))))
                else:
                    self._cjk.append((term.replace(" ", "") if not literal else term, value))
                continue
            flags = 0 if case_sensitive else re.IGNORECASE
            gap = (gaps or {}).get(term, gap_words)
            regex = re.compile(term_regex(term, gap_words=gap, literal=literal), flags)
            infix = not literal and term.startswith("*")
            key_match = _KEY.match(term.lstrip("*") if infix else term)
            if not key_match:
                raise TermError(f"{raw!r}: must start with a letter or digit")
            key = key_match.group(0) if case_sensitive else key_match.group(0).lower()
            entry = _Term(term, value, key, infix, regex)
            if infix:
                self._infix.setdefault(key, []).append(entry)
            elif len(key) < 3:
                self._short.setdefault(key, []).append(entry)
            else:
                self._by_prefix.setdefault(key[:3], []).append(entry)

    def find(self, text: FoldedText) -> list[Hit]:
        """Hits in the folded text (the original text for a case-sensitive set), longest first at a start."""
        return leftmost_longest(self._hits(text))

    def find_each(self, text: FoldedText) -> dict[str, list[Hit]]:
        """The hits of each value on their own: values do not compete for the words (one pass for all kinds)."""
        by_value: dict[str, list[Hit]] = {}
        for hit in self._hits(text):
            by_value.setdefault(hit.value, []).append(hit)
        return {value: leftmost_longest(hits) for value, hits in by_value.items()}

    def _hits(self, text: FoldedText) -> list[Hit]:
        haystack = text.original if self._case_sensitive else text.folded
        # Only infix keys that occur somewhere are tried word by word.
        infix = [(key, entries) for key, entries in self._infix.items() if key in haystack]
        found: list[tuple[int, int, _Term | tuple[str, str]]] = []
        for word in _WORD.finditer(haystack):
            start, token = word.start(), word.group(0)
            if not self._case_sensitive:
                token = token.lower()
            candidates = (
                *self._by_prefix.get(token[:3], ()),
                *self._short.get(token[:1], ()),
                *self._short.get(token[:2], ()),
            )
            for entry in candidates:
                if token.startswith(entry.key):
                    m = entry.regex.match(haystack, start)
                    if m:
                        found.append((m.start(), m.end(), entry))
            for key, entries in infix:
                if key in token:
                    for entry in entries:
                        m = entry.regex.match(haystack, start)
                        if m:
                            found.append((m.start(), m.end(), entry))
        cjk = (self._cjk or self._cjk_gapped) and _CJK_CHAR.search(haystack)
        for term, value in self._cjk if cjk else ():
            position = haystack.find(term)
            while position >= 0:
                found.append((position, position + len(term), (term, value)))
                position = haystack.find(term, position + len(term))
        for term, value, regex in self._cjk_gapped if cjk else ():
            for m in regex.finditer(haystack):
                found.append((m.start(), m.end(), (term, value)))
        hits = []
        for start, end, entry in found:
            term, value = (entry.term, entry.value) if isinstance(entry, _Term) else entry
            match = text.original[start:end] if self._case_sensitive else text.original_span(start, end)
            hits.append(Hit(start, end, value, term, match))
        return hits


def leftmost_longest(hits: Iterable[Hit]) -> list[Hit]:
    """Hits that do not overlap, preferring the earlier and then the longer one."""
    chosen: list[Hit] = []
    reach = -1
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start))):
        if hit.start >= reach:
            chosen.append(hit)
            reach = hit.end
    return chosen
