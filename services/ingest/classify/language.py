"""Which language an item is in, by counting each language's common words."""

from __future__ import annotations

import re

from services.ingest.classify.lexicon import Lexicon

_WORD = re.compile(r"[^\W\d_]+")
# Fewer common words than this and the text is too short to tell.
MIN_STOPWORDS = 2


def detect_language(folded: str, lexicon: Lexicon) -> tuple[str, dict[str, int]]:
    """The language whose stop words occur most (`und` on a tie or too few), with every language's count."""
    words = _WORD.findall(folded)
    counts = {
        language: sum(1 for word in words if word in lex.stopwords)
        for language, lex in sorted(lexicon.languages.items())
    }
    best = max(counts.values(), default=0)
    leaders = [language for language, count in counts.items() if count == best]
    if best < MIN_STOPWORDS or len(leaders) > 1:
        return "und", counts
    return leaders[0], counts
