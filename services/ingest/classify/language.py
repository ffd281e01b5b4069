"""Which language an item is in: py3langid's character n-gram model, with each lexicon's common words to help.

py3langid ships its model inside the package, so nothing is downloaded; it is restricted to the languages the
lexicon has, since an item in a language without a lexicon is read with every lexicon anyway.
"""

from __future__ import annotations

import functools
import re

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from services.ingest.classify.lexicon import Lexicon
from services.ingest.classify.patterns import is_cjk

_WORD = re.compile(r"[^\W\d_]+")
# Fewer common words than this and the stop words cannot tell.
MIN_STOPWORDS = 2
# The model's probability (normalised over the lexicon's languages) taken as sure, and as enough when the stop
# words cannot tell; a short English headline ("China bans gallium exports") gets about 0.5 for Spanish.
SURE = 0.75
ENOUGH = 0.6


@functools.cache
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages([language for language in languages if language in identifier.labels])
    return identifier


def detect_language(folded: str, lexicon: Lexicon) -> tuple[str, float, dict[str, int]]:
    """ISO 639-1 code (`und` when too short or unclear), the model's probability and each language's stop words.

    The model decides when sure; else two stop words of one language, or one that agrees with the model; else the
    model when fairly sure; else `und`."""
    words = _WORD.findall(folded)
    counts = {
        language: sum(1 for word in words if word in lex.stopwords)
        for language, lex in sorted(lexicon.languages.items())
    }
    if len(words) < 2 and not is_cjk(folded):
        return "und", 0.0, counts
    guess, probability = _identifier(tuple(sorted(lexicon.languages))).classify(folded)
    if probability >= SURE:
        return guess, probability, counts
    best = max(counts.values(), default=0)
    leaders = [language for language, count in counts.items() if count == best]
    if len(leaders) == 1 and (best >= MIN_STOPWORDS or (best and leaders[0] == guess)):
        return leaders[0], probability, counts
    if probability >= ENOUGH:
        return guess, probability, counts
    return "und", probability, counts
