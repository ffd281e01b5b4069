"""When a measure takes effect: a date right after a trigger ("from 1 August 2023", "ab dem 1. August")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from services.ingest.classify.lexicon import Lexicon
from services.ingest.classify.patterns import FoldedText, TermSet

# Words that may stand between a trigger and its date: "effective on Friday, December 1", "ab dem 1.".
_FILLERS = (
    "on|the|of|dem|den|der|le|du|op|van|la"
    "|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    "|maandag|dinsdag|woensdag|donderdag|vrijdag|zaterdag|zondag"
    "|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag"
    "|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche"
    "|el|del|o|em|dia|tanggal|hari"
    "|lunes|martes|miercoles|jueves|viernes|sabado|domingo|segunda|terca|quarta|quinta|sexta"
    "|senin|selasa|rabu|kamis|jumat|sabtu|minggu"
)
# "A ban from 2027": a year alone after a trigger is read as the first of January of that year.
_YEAR_WORDS = "the year|year|jaar|jahr|annee|ano|tahun"
_YEAR = re.compile(r"(?<!\d)(19[89]\d|20\d\d)(?!\d)")
# Without a year, a date more than half a year before publication is read as next year's.
_ROLLOVER = timedelta(days=183)
# Chinese "from" after the date: 12月1日起, 2024年5月1日开始.
_CJK_FROM = re.compile(
    r"(?:(?P<y>\d{4})\s*年\s*)?(?P<mn>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]\s*(?:起|开始实施|开始)"
)


@dataclass(frozen=True)
class FoundDate:
    """An effective date and the words it was read from."""

    value: date
    start: int
    end: int
    match: str


class DateFinder:
    """Finds the first effective date in a folded text, in any language of the lexicon."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._triggers = TermSet(
            (trigger, "trigger") for lex in lexicon.languages.values() for trigger in lex.date_triggers
        )
        self._months: dict[str, int] = {}
        for lex in lexicon.languages.values():
            for number, names in enumerate(lex.months, start=1):
                for name in names:
                    self._months[name] = number
        month = "|".join(re.escape(m) for m in sorted(self._months, key=len, reverse=True))
        m = rf"(?P<m>{month})(?!\w)\.?"
        lead = rf"\s*,?\s*(?:(?:{_FILLERS})\s*,?\s+){{0,3}}"
        year = r"(?:\s*,?\s*(?:de\s+|del\s+)?(?P<y>\d{4})(?!\d))"
        self._patterns = (
            # Chinese: 2023年8月1日, 2023年8月
            re.compile(lead + r"(?P<y>\d{4})\s*年\s*(?P<mn>\d{1,2})\s*月(?:\s*(?P<d>\d{1,2})\s*[日号])?"),
            # Chinese without a year: 自2月22日起 (the year from publication or the text, as for "from 1 March")
            re.compile(lead + r"(?P<mn>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*[日号]"),
            re.compile(lead + r"(?P<y>\d{4})[ /.-](?P<mn>\d{1,2})[ /.-](?P<d>\d{1,2})(?!\d)"),
            re.compile(lead + r"(?P<d>\d{1,2})[./](?P<mn>\d{1,2})[./](?P<y>\d{4})(?!\d)"),
            re.compile(lead + rf"(?P<d>\d{{1,2}})(?:st|nd|rd|th|er|e|\.|º|o)?\s*(?:(?:of|de)\s+)?{m}{year}?"),
            re.compile(lead + rf"{m}\s*(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?!\d){year}?"),
            re.compile(lead + rf"{m}{year}"),
        )
        self._year_only = re.compile(
            lead + rf"(?:(?:{_YEAR_WORDS})\s+)?(?P<y>20\d\d)(?!\d)(?:\s*年)?(?!\s*[./-]?\s*\d)"
        )

    def find(self, text: FoldedText, *, published: date | None = None, year_only: bool = False) -> FoundDate | None:
        """The first date that follows a trigger; the year comes from publication or the text if missing.

        With `year_only`, a bare year after a trigger ("a ban from 2027") gives the first of January."""
        patterns = (*self._patterns, self._year_only) if year_only else self._patterns
        suffixed = None
        if (found := _CJK_FROM.search(text.folded)) is not None:
            # Chinese may put "from" after the date: 12月1日起 needs no trigger before it.
            value = self._to_date(found, text.folded, published)
            if value is not None:
                suffixed = FoundDate(value, found.start(), found.end(), text.original_span(found.start(), found.end()))
        triggered = self._after_trigger(text, published, patterns)
        return min((d for d in (triggered, suffixed) if d is not None), key=lambda d: d.start, default=None)

    def _after_trigger(
        self, text: FoldedText, published: date | None, patterns: tuple[re.Pattern[str], ...]
    ) -> FoundDate | None:
        for trigger in self._triggers.find(text):
            for pattern in patterns:
                found = pattern.match(text.folded, trigger.end)
                if not found:
                    continue
                value = self._to_date(found, text.folded, published)
                if value is not None:
                    return FoundDate(value, trigger.start, found.end(), text.original_span(trigger.start, found.end()))
                break
        return None

    def _to_date(self, found: re.Match[str], folded: str, published: date | None) -> date | None:
        groups = found.groupdict()
        # A bare year ("from 2027") has neither month group: January.
        month = int(groups["mn"]) if groups.get("mn") else self._months.get(groups.get("m") or "", 1)
        day = int(groups["d"]) if groups.get("d") else 1
        if groups.get("y"):
            return _safe_date(int(groups["y"]), month, day)
        if published is not None:
            value = _safe_date(published.year, month, day)
            if value is not None and value < published - _ROLLOVER:
                value = _safe_date(published.year + 1, month, day)
            return value
        # No year and no publication date: the year written nearest to the date in the text, if any.
        years = [(abs(y.start() - found.start()), int(y.group(1))) for y in _YEAR.finditer(folded)]
        if not years:
            return None
        return _safe_date(min(years)[1], month, day)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
