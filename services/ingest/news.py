"""Supply news: de-duplicated across feeds and re-posts, classified, one event per material named.

An item is the same item when its normalised link matches, or its normalised title and publication date
match (the same announcement re-posted under another URL). Items that name no catalog material are not
errors: they are counted as skipped with reason `no_material`, logged, and published nowhere.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ValidationError

from services.ingest.observation import Accepted, Candidate, Limits, Outcome, Rejected, Skipped, check_time, parse_time
from shared.events import (
    NEWS_DAYS_UNTIL_IN_FORCE_MAX,
    NEWS_LEADTIME_DAYS_MAX,
    NEWS_PRICE_CHANGE_PCT,
    Measure,
    NewsReported,
    Topic,
    describe_validation_error,
)

_TRACKING = re.compile(r"^(utm_.*|fbclid|gclid|mc_cid|mc_eid|ref|source)$", re.I)
Classifier = Callable[..., Any]


def normalise_link(url: str) -> str:
    """A link reduced to what identifies the page: no scheme, no www., no fragment or tracking parameters."""
    parts = urlsplit(url.strip())
    if not parts.netloc:
        return ""
    host = parts.netloc.lower().removeprefix("www.")
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k))
    )
    path = re.sub(r"/+$", "", parts.path) or "/"
    return urlunsplit(("", host, path, query, ""))


def normalise_title(title: str) -> str:
    """A title reduced to its words: accents, case and punctuation dropped."""
    text = unicodedata.normalize("NFKD", title)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", text).split())


def news_identities(title: str, link: str, published: date | None) -> tuple[str, ...]:
    """The keys under which an item counts as already seen: its link, and its title on its day."""
    keys = []
    if link_key := normalise_link(link):
        keys.append(f"news-link|{link_key}")
    if title_key := normalise_title(title):
        keys.append(f"news-title|{title_key}|{published.isoformat() if published else ''}")
    return tuple(keys)


def item_id_for(identities: tuple[str, ...]) -> str:
    """A stable item id from the item's first identity."""
    return "news-" + hashlib.sha256(identities[0].encode()).hexdigest()[:32]


def normalise_news(candidate: Candidate, classify: Classifier, catalog: Any, limits: Limits) -> Outcome:
    """NewsReported events, one per material the classifier finds, or why there are none."""
    f = candidate.fields
    title = str(f.get("title") or "").strip()
    summary = str(f.get("summary") or "").strip()
    link = str(f.get("link") or f.get("url") or "").strip()
    if not title and not summary:
        return Rejected("empty_item", "item has neither title nor text")
    if link and urlsplit(link).scheme.lower() not in ("http", "https"):
        return Rejected("invalid_link", f"link scheme {urlsplit(link).scheme!r} is not http(s)")
    raw_time = f.get("published_at")
    if raw_time in (None, ""):
        # Many RSS items carry no date; the moment we first saw them is the best we know.
        published_at = limits.now
    else:
        try:
            published_at = parse_time(raw_time)
        except (ValueError, OverflowError, OSError) as exc:
            return Rejected("invalid_time", f"published_at: {exc}")
    if (problem := check_time(published_at, limits)) is not None:
        return problem
    identities = news_identities(title, link, published_at.date() if raw_time not in (None, "") else None)
    try:
        result = classify(summary, title=title, catalog=catalog)
    except Exception as exc:  # a classifier bug must not stop the feed; the item is dead-lettered with it
        return Rejected("classifier_error", f"{type(exc).__name__}: {exc}")
    materials = list(dict.fromkeys(getattr(result, "materials", ()) or ()))
    if not materials:
        return Skipped("no_material", f"names no catalog material: {title[:120]!r}")
    measure = getattr(result, "measure", Measure.NONE) or Measure.NONE
    effective = getattr(result, "effective_date", None)
    if isinstance(effective, datetime):
        effective = effective.date()
    given = f.get("imposed_by")
    if given is not None:
        unknown = sorted({code for code in given if catalog.resolve_country(code) != code})
        if unknown:
            return Rejected("invalid_news", f"imposed_by: unknown country code(s) {', '.join(unknown)}")
    item_id = item_id_for(identities)
    # Effective date minus publication date, as the classifier gives it when it is told the publication date.
    days_until = (
        (effective - published_at.date()).days
        if (
            str(getattr(measure, "value", measure)) != Measure.NONE
            and isinstance(effective, date)
            and raw_time not in (None, "")
        )
        else None
    )
    signal = _signal(f, result, days_until)
    try:
        events = tuple(
            NewsReported(
                material=material,
                item_id=item_id,
                source=candidate.source,
                url=link[:2000],
                title=title[:1000],
                summary=summary[:20000],
                published_at=published_at,
                language=str(getattr(result, "language", "") or f.get("language") or "und")[:8],
                materials=materials,
                countries=list(getattr(result, "countries", ()) or ()),
                imposed_by=_imposers(given, result),
                measure=Measure(str(getattr(measure, "value", measure))),
                effective_date=effective,
                relevant=bool(getattr(result, "relevant", False)) or signal["topic"] not in (None, Topic.NONE),
                score=min(1.0, max(0.0, float(getattr(result, "score", 0.0) or 0.0))),
                evidence=[_evidence_text(e) for e in (getattr(result, "evidence", ()) or ())][:20],
                **signal,
            )
            for material in materials
        )
    except (ValidationError, ValueError) as exc:
        detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
        return Rejected("invalid_news", detail)
    return Accepted(events, identities)


def _signal(fields: Mapping[str, Any], result: Any, days_until: int | None) -> dict[str, Any]:
    """The topic and figures: each as a push client gave it (validated by the API), else the classifier's.

    A figure the classifier read that no item could mean (a lead time of a century) is left unsaid rather than
    losing the item over it; its words stay in the evidence.
    """
    topic = fields.get("topic")
    if topic is None and (found := getattr(result, "topic", None)) is not None:
        topic = Topic(str(getattr(found, "value", found)))
    low, high = NEWS_PRICE_CHANGE_PCT
    return {
        "topic": None if topic is None else Topic(topic),
        "leadtime_days": _given_or_read(fields, result, "leadtime_days", 1, NEWS_LEADTIME_DAYS_MAX),
        "price_change_pct": _given_or_read(fields, result, "price_change_pct", low, high),
        "days_until_in_force": _given_or_read(
            fields,
            result,
            "days_until_in_force",
            -NEWS_DAYS_UNTIL_IN_FORCE_MAX,
            NEWS_DAYS_UNTIL_IN_FORCE_MAX,
            days_until,
        ),
    }


def _given_or_read(
    fields: Mapping[str, Any], result: Any, name: str, low: float, high: float, otherwise: float | None = None
) -> Any:
    if (given := fields.get(name)) is not None:
        return given  # a bad given figure fails NewsReported's validation and rejects the item with its reason
    read = getattr(result, name, None)
    if read is None:
        read = otherwise
    if isinstance(read, bool) or not isinstance(read, int | float) or not math.isfinite(read):
        return None
    return read if low <= read <= high else None


def _imposers(given: Any, result: Any) -> list[str] | None:
    """The imposing countries a push client gave, else the classifier's; None when neither says."""
    if given is not None:
        return list(given)
    found = getattr(result, "imposed_by", None)
    return None if found is None else list(found)


def _evidence_text(evidence: Any) -> str:
    """One line per piece of evidence: 'signal=export_licence: require export licences'."""
    if hasattr(evidence, "kind") and hasattr(evidence, "match"):
        return f"{evidence.kind}={getattr(evidence, 'value', '')}: {evidence.match}"[:500]
    return str(evidence)[:500]
