"""Figures stated in an item: a lead time ("eighteen weeks", "drie maanden", "三个月") and a price move ("+35 %",
"doubles"), read from the sentence that speaks of lead times or prices, in any language of the lexicon."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from services.ingest.classify.lexicon import UNITS, Lexicon
from services.ingest.classify.patterns import FoldedText, Hit, TermSet

_SENTENCE = re.compile(r"[^.!?;。！？；]+(?:[.!?;。！？；]+|$)")
# A decimal point is not a sentence end: "1.5 weeks", "3.5%".
_DECIMAL = re.compile(r"(?<=\d)\.(?=\d)")
# A percentage counts as a price move only this close to a price word (characters before, after it); a
# headline may put a place and a span between them ("Prijs lithiumcarbonaat in China sinds november met 70 procent").
_NEAR_BEFORE, _NEAR_AFTER = 60, 20
# A multiplier may end its clause ("Preis für Antimon hat sich binnen eines Jahres verdreifacht"): a wider reach.
_NEAR_MULTIPLIER = 100
# A move word this close after a material at a clause's start makes the material stand for its price ("se dispara").
_SUBJECT_REACH = 4
# A percentage this close before a tariff or tax term is the duty's rate ("a 50% tariff"), not a price move.
_RATE_REACH = 12
_CJK_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CJK_NUMBER = "[零一二两三四五六七八九十百]+"
_PERCENT = (
    r"(?P<sign>[+\-−–])?\s*(?P<n>\d+(?:[.,]\d+)?)\s*"
    r"(?:%|pct|pc|percent|per cent|procent|prozent|pour cent|por ciento|por cento|persen)(?!\w)"
    r"|百分之(?P<cn>" + _CJK_NUMBER + r"|\d+(?:\.\d+)?)"
)


@dataclass(frozen=True)
class Figure:
    """A figure and the words it was read from."""

    value: float
    match: str


def _word_regex(words: list[str]) -> str:
    parts = []
    for word in sorted(set(words), key=len, reverse=True):
        core = re.escape(word.rstrip("*")).replace(r"\ ", r"\s*")
        parts.append(core + (r"\w*" if word.endswith("*") else ""))
    return "|".join(parts)


def cjk_number(text: str) -> int | None:
    """十八 -> 18, 三 -> 3, 两百 -> 200; None when not a Chinese numeral."""
    total, current = 0, 0
    for char in text:
        if char in _CJK_DIGITS:
            current = _CJK_DIGITS[char]
        elif char == "十":
            total += (current or 1) * 10
            current = 0
        elif char == "百":
            total += (current or 1) * 100
            current = 0
        else:
            return None
    return total + current


class FigureFinder:
    """Lead times and price moves of every language in the lexicon."""

    def __init__(self, lexicon: Lexicon) -> None:
        figures = [lex.figures for lex in lexicon.languages.values()]
        self._numbers = {word: number for f in figures for word, number in f.numbers.items()}
        self._unit_of: dict[str, str] = {}
        unit_words: list[str] = []
        for f in figures:
            for unit, words in f.units.items():
                unit_words.extend(words)
                for word in words:
                    self._unit_of[word] = unit
        self._unit_patterns = [(re.compile(_word_regex([w])), unit) for w, unit in self._unit_of.items()]
        number = (
            # Chinese writes digits right after a character (延长至8周): only a letter or digit may not precede.
            r"(?<![^\W\u3400-\u9fff])(?<![.,])\d+(?:[.,]\d+)?"
            + (rf"|(?<!\w)(?:{_word_regex(list(self._numbers))})(?!\w)" if self._numbers else "")
            + rf"|{_CJK_NUMBER}"
        )
        self._duration = re.compile(
            rf"(?P<n>{number})(?:\s*(?:-|–|to|tot|bis|a|à|y|e|hingga|sampai|至|到)\s*(?P<n2>{number}))?"
            rf"\s*(?:个|more)?\s*(?P<u>{_word_regex(unit_words) or '(?!)'})(?!\w)"
        )
        self._percent = re.compile(_PERCENT)
        self._prices = TermSet((w, "price") for f in figures for w in f.price_words)
        self._moves = TermSet(
            [*((w, "rise") for f in figures for w in f.rises), *((w, "fall") for f in figures for w in f.falls)]
        )
        self._multipliers = TermSet((w, str(pct)) for f in figures for w, pct in f.multipliers.items())

    def leadtime_days(self, text: FoldedText, leadtime_hits: list[Hit]) -> Figure | None:
        """The longest duration stated in a sentence with a lead-time term, in days."""
        best: Figure | None = None
        for start, end in _sentences(text.folded):
            if not any(start <= hit.start < end for hit in leadtime_hits):
                continue
            for found in self._duration.finditer(text.folded, start, end):
                days = self._days(found)
                if days is not None and (best is None or days > best.value):
                    best = Figure(days, text.original_span(found.start(), found.end()))
        return best

    def price_change_pct(
        self, text: FoldedText, rates: Sequence[Hit] = (), subjects: Sequence[Hit] = ()
    ) -> Figure | None:
        """The first price move stated in a sentence that names a price, in percent (a fall is negative). A
        percentage right before one of `rates` (tariff and tax terms) is that duty's rate. A material of
        `subjects` (one that starts its clause) right before a move word stands for its price, as market
        headlines write it: "Minério de ferro sobe 11%", "La plata se dispara un 70 %"."""
        moves = self._moves.find(text)
        prices = self._prices.find(text) + [
            s for s in subjects if any(0 <= m.start - s.end <= _SUBJECT_REACH for m in moves)
        ]
        if not prices:
            return None
        for start, end in _sentences(text.folded):
            if not any(start <= hit.start < end for hit in prices):
                continue
            found: list[tuple[int, Figure]] = []
            for m in self._percent.finditer(text.folded, start, end):
                value = self._percent_value(m)
                near = any(m.start() - _NEAR_BEFORE <= h.start <= m.end() + _NEAR_AFTER for h in prices)
                if value is None or not near or any(0 <= h.start - m.end() <= _RATE_REACH for h in rates):
                    continue
                if m.group("sign") is None:
                    value *= self._direction(moves, start, m.start(), end)
                elif m.group("sign") != "+":
                    value = -value
                found.append((m.start(), Figure(value, text.original_span(m.start(), m.end()))))
            for hit in self._multipliers.find(text):
                if start <= hit.start < end and any(abs(h.start - hit.start) <= _NEAR_MULTIPLIER for h in prices):
                    found.append((hit.start, Figure(float(hit.value), hit.match)))
            if found:
                return min(found, key=lambda pair: pair[0])[1]
        return None

    def _days(self, found: re.Match[str]) -> float | None:
        numbers = [self._number(found.group(g)) for g in ("n", "n2") if found.group(g)]
        if any(n is None for n in numbers) or not numbers:
            return None
        unit = next((u for pattern, u in self._unit_patterns if pattern.fullmatch(found.group("u"))), None)
        if unit is None:
            return None
        return max(numbers) * UNITS[unit]  # type: ignore[type-var, operator]

    def _number(self, text: str) -> float | None:
        if text[0].isdigit():
            return float(text.replace(",", "."))
        if text in self._numbers:
            return float(self._numbers[text])
        value = cjk_number(text)
        return float(value) if value else None

    def _percent_value(self, m: re.Match[str]) -> float | None:
        if m.group("n"):
            return float(m.group("n").replace(",", "."))
        raw = m.group("cn")
        return float(raw) if raw[0].isdigit() else (float(n) if (n := cjk_number(raw)) is not None else None)

    @staticmethod
    def _direction(moves: list[Hit], start: int, at: int, end: int) -> float:
        """-1 when the nearest move word of the sentence before the figure (else after it) is a fall."""
        before = [h for h in moves if start <= h.start < at]
        after = [h for h in moves if at <= h.start < end]
        nearest = before[-1] if before else (after[0] if after else None)
        return -1.0 if nearest is not None and nearest.value == "fall" else 1.0


def _sentences(folded: str) -> list[tuple[int, int]]:
    protected = _DECIMAL.sub("\0", folded)
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(protected)]
