"""Rule-based classification of supply news: pure, explainable, no network (the language model ships in py3langid).

The rules, their precedence and the score are described in docs/classifier.md.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from services.ingest.classify.dates import DateFinder
from services.ingest.classify.figures import Figure, FigureFinder
from services.ingest.classify.language import detect_language
from services.ingest.classify.lexicon import (
    MEASURE_KINDS,
    SIGNAL_KINDS,
    TOPIC_KINDS,
    LanguageLexicon,
    Lexicon,
    LexiconError,
    load_lexicon,
)
from services.ingest.classify.models import Classification, Evidence, Measure, Topic, Where
from services.ingest.classify.patterns import FoldedText, Hit, TermSet, fold_text, is_cjk, leftmost_longest
from shared.catalog import Catalog, fold, load_catalog

# Tie-break between measures found equally often: the more restrictive and more specific first.
PRECEDENCE: tuple[str, ...] = ("export_ban", "export_quota", "export_tax", "export_licence", "sanction")
TITLE_WEIGHT = 2
TEXT_WEIGHT = 1
# Negation is looked for this many words before a term, within its sentence (characters, in Chinese).
NEGATION_WINDOW = 3
CJK_NEGATION_WINDOW = 6
# Among supply signals found equally often, the one that says most about supply first.
TOPIC_PRECEDENCE: tuple[str, ...] = TOPIC_KINDS
# A price move of at least this many percent is a price signal even without a word like "soars".
PRICE_SHOCK_PCT = 10.0
# Measures that take a ban's place ("the ban ends on 16 October and quotas apply from then").
REPLACING = ("export_quota", "export_tax", "export_licence")

_CITATION = re.compile(r"(?<!\w)(?:no|nr|n°)\.?\s*\d+")
_SENTENCE_END = re.compile(r"[.!?;:]\s")
_WORDS = re.compile(r"[\w']+")
_CLAUSE_BREAK = re.compile(r"[.!?;:,\"«»“”()\n]")
_NEXT_WORD = re.compile(r"[ \t]+(\w+)")
_POSSESSIVE = re.compile(r"['’]s(?!\w)")
_CASED_WORD = re.compile(r"[^\W\d_][\w'-]*")
# After these a capital starts a sentence, a quote or a list item, not a name.
_OPENERS = ".!?:;\"'“”«»(‘’-–—•|"


@dataclass(frozen=True, eq=False)
class _Matchers:
    masks: TermSet
    material_names: TermSet
    material_stems: TermSet
    material_compounds: TermSet
    country_names: TermSet
    country_exact: TermSet
    # Per language (and `und`, every language's): the words that make the country named after them a target.
    targets: Mapping[str, TermSet]
    signals: TermSet
    # The supply-signal terms without a gap ("mining quota", 开采配额), whose words are theirs alone.
    supply_phrases: TermSet
    # Per language (and `und`, every language's): words of another sense of a material's name. Scoped, since a
    # short word of one language is a common word of another (German "EM", Portuguese "em").
    senses: Mapping[str, TermSet]
    material_moves: TermSet
    dates: DateFinder
    figures: FigureFinder


@dataclass(frozen=True)
class _Found:
    where: Where
    hit: Hit


def classify_item(
    text: str,
    *,
    title: str = "",
    catalog: Catalog | None = None,
    lexicon: Lexicon | None = None,
    published: date | None = None,
) -> Classification:
    """Materials, countries, trade measure, effective date, language and relevance of one news item."""
    catalog = catalog or load_catalog()
    lexicon = lexicon or load_lexicon()
    matchers = _matchers(catalog, lexicon)
    parts: list[tuple[Where, FoldedText]] = []
    if title.strip():
        parts.append(("title", fold_text(title)))
    if text.strip():
        parts.append(("text", fold_text(text)))

    language, probability, counts = detect_language(" ".join(part.folded for _, part in parts), lexicon)
    evidence = [Evidence(kind="language", value=language, match=_counts(probability, counts))]

    materials = _find_materials(parts, matchers, lexicon.unreliable_names(language), evidence)
    materials = _drop_other_senses(materials, parts, matchers, lexicon, language, evidence)
    countries = _find_countries(parts, matchers, evidence)
    targets = matchers.targets.get(language, matchers.targets["und"])
    articles = lexicon.articles(language)
    joining = articles | lexicon.conjunctions(language)
    imposed_by = _find_imposers(countries, parts, targets, articles, joining, evidence)
    signals = _find_signals(parts, matchers, lexicon.negations(language), evidence)
    _find_material_moves(materials, parts, matchers, lexicon.articles(language), signals, evidence)

    leadtime, price_change = _find_figures(parts, matchers, signals, materials, articles, evidence)
    if price_change is not None and abs(price_change.value) >= PRICE_SHOCK_PCT:
        # A large move counts as one price signal in the text, after any written one.
        signals["price"].append(_Found("text", Hit(1 << 30, 1 << 30, "price", "", price_change.match)))

    weights = Counter({kind: 0 for kind in SIGNAL_KINDS})
    for kind, found in signals.items():
        weights[kind] = sum(TITLE_WEIGHT if f.where == "title" else TEXT_WEIGHT for f in found)
    measure, deciding = _decide_measure(weights, signals)
    topic = _decide_topic(measure, weights, signals)
    if deciding is None and topic != "none":
        deciding = topic
    material_ids = tuple(sorted({f.hit.value for f in materials}))
    relevant = bool(material_ids) and topic != "none"

    effective_date = None
    if topic != "none":
        for where, part in parts:
            found_date = matchers.dates.find(part, published=published, year_only=measure != "none")
            if found_date:
                effective_date = found_date.value
                evidence.append(
                    Evidence(kind="date", value=found_date.value.isoformat(), match=found_date.match, where=where)
                )
                break

    days_until = None
    if measure != "none" and effective_date is not None and published is not None:
        days_until = (effective_date - published).days

    score = _score(materials, signals, deciding) if relevant else 0.0
    evidence.append(Evidence(kind="decision", value=measure, match=_explain_measure(weights, deciding)))
    evidence.append(Evidence(kind="topic", value=topic, match=_explain_topic(topic, weights)))
    evidence.append(
        Evidence(kind="relevance", value=str(relevant).lower(), match=_explain_relevance(material_ids, topic))
    )
    return Classification(
        materials=material_ids,
        countries=tuple(sorted({f.hit.value for f in countries})),
        imposed_by=imposed_by,
        measure=measure,
        effective_date=effective_date,
        language=language,
        relevant=relevant,
        score=score,
        evidence=tuple(evidence),
        topic=topic,
        leadtime_days=int(leadtime.value) if leadtime is not None else None,
        price_change_pct=price_change.value if price_change is not None else None,
        days_until_in_force=days_until,
    )


@functools.lru_cache(maxsize=8)
def _matchers(catalog: Catalog, lexicon: Lexicon) -> _Matchers:
    languages = list(lexicon.languages.values())
    # One set of every kind's terms, searched in one pass; kinds do not compete for words (find_each).
    gaps: dict[str, int] = {}
    entries: list[tuple[str, str]] = []
    for kind in SIGNAL_KINDS:
        for lex in languages:
            for term in lex.terms[kind]:
                gaps[term] = max(gaps.get(term, 0), lex.gap_words)
                entries.append((term, kind))
    signals = TermSet(entries, gaps=gaps)
    material_ids = {m.id for m in catalog.materials}
    country_codes = {c.code for c in catalog.countries}
    for lex in languages:
        named = ((lex.materials, material_ids, "material"), (lex.countries, country_codes, "country"))
        for table, known, what in named:
            unknown = sorted(set(table) - known)
            if unknown:
                raise LexiconError(f"{lex.language}.toml: unknown {what} id(s) {', '.join(unknown)}")
    return _Matchers(
        masks=TermSet((mask, "mask") for lex in languages for mask in lex.masks),
        material_names=TermSet(
            [
                *((name, m.id) for m in catalog.materials for name in m.aliases),
                *((name, mid) for lex in languages for mid, names in lex.materials.items() for name in names),
            ],
            literal=True,
        ),
        material_stems=TermSet((f"{stem}*", m.id) for m in catalog.materials for stem in m.stems),
        material_compounds=TermSet(_compounds(catalog, languages), literal=True),
        country_names=TermSet(
            [
                *((name, c.code) for c in catalog.countries for name in _names(c.name, c.names.values())),
                *((name, code) for lex in languages for code, names in lex.countries.items() for name in names),
            ],
            literal=True,
        ),
        country_exact=TermSet(
            ((name, c.code) for c in catalog.countries for name in c.exact), literal=True, case_sensitive=True
        ),
        targets={
            **{lex.language: TermSet(_target_entries([lex])) for lex in languages},
            "und": TermSet(_target_entries(languages)),
        },
        signals=signals,
        supply_phrases=TermSet(
            (term, kind) for kind in TOPIC_KINDS for lex in languages for term in lex.terms[kind] if ".." not in term
        ),
        senses={
            **{lex.language: TermSet(_sense_entries([lex])) for lex in languages},
            "und": TermSet(_sense_entries(languages)),
        },
        material_moves=TermSet((term, "price") for lex in languages for term in lex.figures.moves),
        dates=DateFinder(lexicon),
        figures=FigureFinder(lexicon),
    )


def _compounds(catalog: Catalog, languages: list[LanguageLexicon]) -> list[tuple[str, str]]:
    """Compound words of a one-word material name and a head of its language: tinprijs, Zinnpreis, Bleierz.
    Heads, not stems: a stem "zinn" or "tin" would also find Zinnober and tinten."""
    entries: dict[str, str] = {}
    for lex in languages:
        for m in catalog.materials:
            names = {fold(name) for name in (*m.names.get(lex.language, ()), *lex.materials.get(m.id, ()))}
            for name in names:
                if name.isalpha():
                    for head in lex.compound_heads:
                        entries.setdefault(name + head, m.id)
    return list(entries.items())


def _sense_entries(languages: list[LanguageLexicon]) -> list[tuple[str, str]]:
    return [(term, mid) for lex in languages for mid, terms in lex.senses.items() for term in terms]


def _target_entries(languages: list[LanguageLexicon]) -> list[tuple[str, str]]:
    return [
        *((word, "target") for lex in languages for word in lex.target_words),
        *((word, "not_target") for lex in languages for word in lex.not_target_words),
    ]


def _names(name: str, by_language: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((name, *(n for names in by_language for n in names))))


def _find_materials(
    parts: list[tuple[Where, FoldedText]], matchers: _Matchers, unreliable: frozenset[str], evidence: list[Evidence]
) -> list[_Found]:
    found: list[_Found] = []
    for where, part in parts:
        masked = part.blanked((h.start, h.end) for h in matchers.masks.find(part))
        hits = leftmost_longest(
            [
                *matchers.material_names.find(masked),
                *matchers.material_stems.find(masked),
                *matchers.material_compounds.find(masked),
            ]
        )
        for hit in hits:
            if hit.term in unreliable:
                evidence.append(Evidence(kind="ignored", value=hit.value, match=hit.match, where=where))
                continue
            found.append(_Found(where, hit))
            evidence.append(Evidence(kind="material", value=hit.value, match=hit.match, where=where))
    return found


def _drop_other_senses(
    materials: list[_Found],
    parts: list[tuple[Where, FoldedText]],
    matchers: _Matchers,
    lexicon: Lexicon,
    language: str,
    evidence: list[Evidence],
) -> list[_Found]:
    """Materials named only in another sense: a context of another sense ("medal" for silver, "insurance" for
    Portuguese "cobre") anywhere in the item, or only as a proper noun ("Graphite Bio", the bar "Zinc"). A mention
    that is part of a place name ("Copper Mountain") is dropped on its own."""
    materials = _drop_place_names(materials, parts, lexicon.place_words(language), evidence)
    other: dict[str, str] = {}
    senses = matchers.senses.get(language, matchers.senses["und"])
    for _, part in parts:
        for material, hits in senses.find_each(part).items():
            other.setdefault(material, hits[0].match)
    lex = lexicon.languages.get(language)
    proper = lex is not None and lex.lower_case_nouns
    kept: list[_Found] = []
    by_material: dict[str, list[_Found]] = {}
    for found in materials:
        by_material.setdefault(found.hit.value, []).append(found)
    titles_cased = {where: _sentence_case(part) for where, part in parts}
    for material, mentions in by_material.items():
        if material in other:
            reason = f"another sense: {other[material]}"
        elif proper and _only_a_name(mentions, parts, titles_cased):
            reason = "a proper noun"
        else:
            kept.extend(mentions)
            continue
        for f in mentions:
            evidence.append(Evidence(kind="ignored", value=material, match=f"{f.hit.match} ({reason})", where=f.where))
    return kept


def _drop_place_names(
    materials: list[_Found],
    parts: list[tuple[Where, FoldedText]],
    place_words: frozenset[str],
    evidence: list[Evidence],
) -> list[_Found]:
    """Mentions written with a capital and followed by a capitalised place word of the language: the town
    "Copper Mountain", "Silver Springs"; "copper mountain" in lower case is still copper."""
    if not place_words:
        return materials
    text = dict(parts)
    kept = []
    for found in materials:
        part = text[found.where]
        at, end = part.origin[found.hit.start], part.origin[found.hit.end - 1] + 1
        after = _NEXT_WORD.match(part.original, end)
        place = after.group(1) if after else ""
        if part.original[at].isupper() and place[:1].isupper() and fold(place) in place_words:
            match = f"{found.hit.match} {place} (a place name)"
            evidence.append(Evidence(kind="ignored", value=found.hit.value, match=match, where=found.where))
            continue
        kept.append(found)
    return kept


def _only_a_name(
    mentions: list[_Found], parts: list[tuple[Where, FoldedText]], sentence_case: dict[Where, bool]
) -> bool:
    """Every mention a one-word name in capitals, at least one of them mid-sentence ("Shares of Graphite Bio"):
    a mention at the start of a sentence could be either. Names of two words or more ("Lynas Rare Earths")
    are kept: a company named so is in that business."""
    if any(" " in f.hit.term for f in mentions):
        return False
    verdicts = [_proper_noun(f, parts, sentence_case) for f in mentions]
    return True in verdicts and False not in verdicts


def _sentence_case(part: FoldedText) -> bool:
    """Most words start in lower case: a capital then marks a name (a Title Case headline says nothing)."""
    words = _CASED_WORD.findall(part.original)
    return len(words) >= 3 and sum(w[0].isupper() for w in words) * 2 <= len(words)


def _proper_noun(found: _Found, parts: list[tuple[Where, FoldedText]], sentence_case: dict[Where, bool]) -> bool | None:
    """True for a capitalised mention mid-sentence in sentence-case text, False for a mention in lower case (or
    an acronym), None where a capital says nothing (a sentence's start, a Title Case headline)."""
    part = dict(parts)[found.where]
    at = part.origin[found.hit.start]
    original = part.original[at : part.origin[found.hit.end - 1] + 1]
    if not original[:1].isupper() or original.isupper():
        return False
    before = part.original[:at].rstrip()
    if not sentence_case[found.where] or not before or before[-1] in _OPENERS:
        return None
    return True


def _find_countries(
    parts: list[tuple[Where, FoldedText]], matchers: _Matchers, evidence: list[Evidence]
) -> list[_Found]:
    found: list[_Found] = []
    for where, part in parts:
        masked = part.blanked((h.start, h.end) for h in matchers.masks.find(part))
        exact = [_in_folded(part, hit) for hit in matchers.country_exact.find(part)]
        for hit in (*matchers.country_names.find(masked), *exact):
            found.append(_Found(where, hit))
            evidence.append(Evidence(kind="country", value=hit.value, match=hit.match, where=where))
    return found


def _in_folded(part: FoldedText, hit: Hit) -> Hit:
    """A hit of a case-sensitive set ("US"), found in the original text, placed in the folded text."""
    start, end = bisect.bisect_left(part.origin, hit.start), bisect.bisect_left(part.origin, hit.end)
    return Hit(start, end, hit.value, hit.term, hit.match)


def _find_imposers(
    countries: list[_Found],
    parts: list[tuple[Where, FoldedText]],
    targets: TermSet,
    articles: frozenset[str],
    joining: frozenset[str],
    evidence: list[Evidence],
) -> tuple[str, ...]:
    """The countries named that impose the measure: every country but those named, anywhere in the item, right
    after a target word ("bans exports to the United States", "naar de VS", 对美国出口), or listed after such a
    country ("to the US, Japan and Korea"). A country named once as the target and once otherwise stays a
    target: the follow-up sentences of such news name the target again."""
    text = dict(parts)
    targeted: dict[str, str] = {}
    for where, part in parts:
        mentions = sorted((f for f in countries if f.where == where), key=lambda f: f.hit.start)
        if not mentions:
            continue
        by_end = {hit.end: hit for hit in targets.find(part)}
        listed_from: int | None = None  # where the list of targets being read started
        previous_end = 0
        for found in mentions:
            start = found.hit.start
            if listed_from is not None and _only_joining(part.folded[previous_end:start], joining):
                begin = listed_from
            elif (word := _word_before(part.folded, start, by_end, articles)) is not None and word.value == "target":
                begin = word.start
            else:
                listed_from = None
                continue
            if _POSSESSIVE.match(part.folded, found.hit.end):
                listed_from = None
                continue  # "rules against Indonesia's export ban": the country owns the measure
            listed_from, previous_end = begin, found.hit.end
            if found.hit.value not in targeted:
                targeted[found.hit.value] = text[where].original_span(begin, found.hit.end)
                evidence.append(
                    Evidence(kind="target", value=found.hit.value, match=targeted[found.hit.value], where=where)
                )
    return tuple(sorted({f.hit.value for f in countries} - set(targeted)))


def _only_joining(between: str, joining: frozenset[str]) -> bool:
    """Only commas, conjunctions and articles between two names: "the US, Japan and the Netherlands"."""
    words = between.replace(",", " ").replace("、", " ").split()
    return len(words) <= 2 and all(word in joining for word in words) and bool(between.strip())


def _word_before(folded: str, start: int, by_end: dict[int, Hit], articles: frozenset[str]) -> Hit | None:
    """The target word (or not-target phrase) that ends just before this point, an article allowed between."""
    end = len(folded[:start].rstrip())
    if end in by_end:
        return by_end[end]
    for article in articles:
        at = end - len(article)
        if at >= 0 and folded[at:end] == article and (at == 0 or not folded[at - 1].isalnum()):
            hit = by_end.get(len(folded[:at].rstrip()))
            if hit is not None:
                return hit
    return None


def _find_signals(
    parts: list[tuple[Where, FoldedText]], matchers: _Matchers, negations: frozenset[str], evidence: list[Evidence]
) -> dict[str, list[_Found]]:
    signals: dict[str, list[_Found]] = {kind: [] for kind in SIGNAL_KINDS}
    for where, part in parts:
        found = matchers.signals.find_each(part)
        _drop_measures_inside_signals(found, matchers.supply_phrases.find(part))
        easing = found.get("easing", [])
        for kind in SIGNAL_KINDS:
            for hit in found.get(kind, ()):
                # "will not lift the ban": the negation belongs to the easing verb, the ban still stands.
                inside_easing = kind != "easing" and any(e.start <= hit.start < e.end for e in easing)
                negation = None if inside_easing else _negation(part.folded, hit, negations)
                if negation:
                    evidence.append(
                        Evidence(kind="negated", value=kind, match=f"{hit.match} ({negation})", where=where)
                    )
                    continue
                signals[kind].append(_Found(where, hit))
                evidence.append(Evidence(kind="signal", value=kind, match=hit.match, where=where))
    return signals


def _drop_measures_inside_signals(found: dict[str, list[Hit]], phrases: list[Hit]) -> None:
    """A measure word inside a supply signal's own phrase is that signal's: the quota of "mining quota" and of
    开采配额 is no export quota. Only phrases without a gap count: a gap spans other words."""
    if not phrases:
        return
    for kind in (*MEASURE_KINDS, "restriction"):
        if kind in found:
            found[kind] = [h for h in found[kind] if not any(p.start <= h.start and h.end <= p.end for p in phrases)]


def _find_material_moves(
    materials: list[_Found],
    parts: list[tuple[Where, FoldedText]],
    matchers: _Matchers,
    articles: frozenset[str],
    signals: dict[str, list[_Found]],
    evidence: list[Evidence],
) -> None:
    """A material that starts its clause and is followed by a strong move is a price signal: "Tin jumps as ...",
    "L'étain s'envole". Only at a clause's start (after at most an article): in "exports of copper plunge" and
    "ekspor nikel anjlok" the material is not what moves."""
    for where, part in parts:
        mine = [f for f in materials if f.where == where]
        if not mine:
            continue
        moves = {hit.start: hit for hit in matchers.material_moves.find(part)}
        for found in mine:
            after = len(part.folded) - len(part.folded[found.hit.end :].lstrip(" "))
            move = moves.get(after)
            if move is None or not _starts_clause(part.folded[: found.hit.start], articles):
                continue
            if any(f.where == where and f.hit.start <= move.start < f.hit.end for f in signals["price"]):
                continue  # "soars" is a price term already
            match = part.original_span(found.hit.start, move.end)
            signals["price"].append(_Found(where, Hit(found.hit.start, move.end, "price", move.term, match)))
            evidence.append(Evidence(kind="signal", value="price", match=match, where=where))


def _starts_clause(before: str, articles: frozenset[str]) -> bool:
    """Nothing but an article ("the", "el", "l'") between the last clause break and this point."""
    clause = _CLAUSE_BREAK.split(before)[-1].strip()
    return not clause or clause in articles


def _find_figures(
    parts: list[tuple[Where, FoldedText]],
    matchers: _Matchers,
    signals: dict[str, list[_Found]],
    materials: list[_Found],
    articles: frozenset[str],
    evidence: list[Evidence],
) -> tuple[Figure | None, Figure | None]:
    """The lead time (from a sentence with a lead-time signal) and the price move, title before text."""
    leadtime = price = None
    for where, part in parts:
        hits = [f.hit for f in signals["leadtime"] if f.where == where]
        if leadtime is None and hits and (leadtime := matchers.figures.leadtime_days(part, hits)) is not None:
            evidence.append(
                Evidence(kind="figure", value=f"leadtime_days={int(leadtime.value)}", match=leadtime.match, where=where)
            )
        rates = [f.hit for kind in ("tariff", "export_tax") for f in signals[kind] if f.where == where]
        subjects = [
            f.hit for f in materials if f.where == where and _starts_clause(part.folded[: f.hit.start], articles)
        ]
        if price is None and (price := matchers.figures.price_change_pct(part, rates, subjects)) is not None:
            evidence.append(
                Evidence(kind="figure", value=f"price_change_pct={price.value:g}", match=price.match, where=where)
            )
    return leadtime, price


def _negation(folded: str, hit: Hit, negations: frozenset[str]) -> str | None:
    if is_cjk(hit.term):
        before = folded[max(0, hit.start - CJK_NEGATION_WINDOW) : hit.start]
        return next((word for word in negations if is_cjk(word) and word in before), None)
    before = folded[max(0, hit.start - 120) : hit.start]
    before = _CITATION.sub(" ", _SENTENCE_END.split(before)[-1])
    window = _WORDS.findall(before)[-NEGATION_WINDOW:]
    own = {token.strip("*") for token in hit.term.split()}
    inside = [w for w in _WORDS.findall(folded[hit.start : hit.end]) if w not in own]
    for word in (*window, *inside):
        if word in negations:
            return word
    return None


def _decide_measure(weights: Counter[str], signals: dict[str, list[_Found]]) -> tuple[Measure, str | None]:
    if weights["easing"] or weights["replacement"]:
        replacing = _replacing_measure(signals)
        if replacing:
            return replacing, replacing  # type: ignore[return-value]
    if weights["easing"]:
        return "easing", "easing"
    specific = [kind for kind in MEASURE_KINDS if weights[kind]]
    if specific:
        best = max(specific, key=lambda kind: (weights[kind], -PRECEDENCE.index(kind)))
        return best, best  # type: ignore[return-value]
    if weights["restriction"]:
        return "export_licence", "restriction"
    return "none", None


def _replacing_measure(signals: dict[str, list[_Found]]) -> str | None:
    """The measure that takes the eased one's place: quotas named besides what is eased (a ban ends, quotas
    follow), or a quota, tax or licence when the item says it replaces ("replaces the ban with")."""
    measures = [f for kind in MEASURE_KINDS for f in signals[kind]]
    eased: set[tuple[str, int]] = set()
    for easing in signals["easing"]:
        # What an easing eases is the first measure inside it: "lifts the ban, introduces quotas" eases the ban.
        inside = [f for f in measures if f.where == easing.where and easing.hit.start <= f.hit.start < easing.hit.end]
        if inside:
            first = min(inside, key=lambda f: f.hit.start)
            eased.add((first.where, first.hit.start))
    kinds = REPLACING if signals["replacement"] else ("export_quota",)
    new = Counter(kind for kind in kinds for f in signals[kind] if (f.where, f.hit.start) not in eased)
    if not new:
        return None
    return max(new, key=lambda kind: (new[kind], -REPLACING.index(kind)))


def _decide_topic(measure: str, weights: Counter[str], signals: dict[str, list[_Found]]) -> Topic:
    """export_control when there is a measure; else the supply signal weighed most, and on a tie the one
    written first (the headline leads with what the item is about), then TOPIC_PRECEDENCE."""
    if measure != "none":
        return "export_control"
    found = [kind for kind in TOPIC_PRECEDENCE if weights[kind]]
    if not found:
        return "none"

    def first(kind: str) -> tuple[int, int]:
        return min((f.where != "title", f.hit.start) for f in signals[kind])

    best = min(found, key=lambda kind: (-weights[kind], first(kind), TOPIC_PRECEDENCE.index(kind)))
    return best  # type: ignore[return-value]


def _score(materials: list[_Found], signals: dict[str, list[_Found]], deciding: str | None) -> float:
    in_title = any(f.where == "title" for f in materials)
    s_material = min(1.0, 0.6 + 0.2 * in_title + 0.2 * (len(materials) >= 2))
    found = signals.get(deciding or "", [])
    signal_in_title = any(f.where == "title" for f in found)
    if deciding in TOPIC_KINDS:
        s_signal = 0.5 + 0.1 * signal_in_title
    elif deciding == "restriction":
        s_signal = 0.6 + 0.2 * signal_in_title
    else:
        s_signal = 0.8 + 0.2 * signal_in_title
    return round(s_material * s_signal, 3)


def _counts(probability: float, counts: dict[str, int]) -> str:
    words = ", ".join(f"{language}={count}" for language, count in counts.items() if count)
    return f"py3langid p={probability:.2f}; stop words {words or 'none'}"


def _explain_measure(weights: Counter[str], deciding: str | None) -> str:
    found = ", ".join(f"{kind}={weights[kind]}" for kind in SIGNAL_KINDS if weights[kind])
    if deciding == "easing":
        return f"easing found, it overrides what it eases ({found})"
    if deciding in MEASURE_KINDS:
        return f"highest weighted measure, title counts {TITLE_WEIGHT} ({found})"
    if deciding == "restriction":
        return f"only generic export-control wording, read as licensing ({found})"
    if deciding in TOPIC_KINDS:
        return f"supply signal but no export measure ({found})"
    return "no trade measure found"


def _explain_topic(topic: str, weights: Counter[str]) -> str:
    if topic == "none":
        return "no export measure and no supply signal"
    if topic == "export_control":
        return "an export measure decides the topic"
    found = ", ".join(f"{kind}={weights[kind]}" for kind in TOPIC_KINDS if weights[kind])
    return f"highest weighted supply signal, title counts {TITLE_WEIGHT} ({found})"


def _explain_relevance(materials: tuple[str, ...], topic: str) -> str:
    if not materials:
        return "no catalog material named"
    if topic == "none":
        return f"{', '.join(materials)} named, but no trade measure or supply signal"
    return f"{', '.join(materials)} named with {topic}"
