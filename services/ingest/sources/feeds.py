"""RSS and Atom feeds, read with feedparser only after defusedxml has found them harmless.

A feed that declares entities (billion laughs, external entities), is not well-formed XML, or whose bytes
are not in the encoding it declares is refused whole, with the reason, before feedparser sees it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as safe_xml
import feedparser
from defusedxml import DefusedXmlException

from services.ingest.config import SourceConfig
from services.ingest.observation import Candidate, Malformed, Record, raw_of

_DECLARED_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
MAX_SUMMARY = 20_000


def refuse_unsafe_xml(body: bytes) -> Malformed | None:
    """Why an XML document must not be parsed (entities, external references, bad bytes), or None."""
    m = _DECLARED_ENCODING.match(body[:200])
    encoding = m[1].decode() if m else "utf-8"
    try:
        body.decode(encoding)
    except LookupError:
        return Malformed("encoding", f"declared encoding {encoding!r} is unknown", body)
    except UnicodeDecodeError as exc:
        return Malformed("encoding", f"bytes are not the declared {encoding}: {exc}", body)
    try:
        safe_xml.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        return Malformed("unsafe_xml", f"XML refused: {type(exc).__name__}: {exc}", body)
    except ParseError as exc:
        return Malformed("malformed_xml", f"not well-formed XML: {exc}", body)
    return None


def _time_of(entry: dict) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            # feedparser normalises every date it reads to UTC as a struct_time.
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    return None


def read_feed(body: bytes, source: SourceConfig) -> Iterator[Record]:
    """One news record per feed entry, or one `Malformed` for a refused document."""
    refusal = refuse_unsafe_xml(body)
    if refusal is not None:
        yield refusal
        return
    parsed = feedparser.parse(body, resolve_relative_uris=False, sanitize_html=True)
    if not parsed.entries and parsed.get("bozo"):
        yield Malformed("malformed_feed", f"not an RSS or Atom feed: {parsed.get('bozo_exception')}", body)
        return
    feed_title = str(parsed.feed.get("title", ""))[:200]
    for entry in parsed.entries:
        summary = entry.get("summary", "")
        if not summary and entry.get("content"):
            summary = entry["content"][0].get("value", "")
        published = _time_of(entry)
        fields = {
            "title": str(entry.get("title", "")).strip(),
            "link": str(entry.get("link", "")).strip(),
            "summary": _plain(str(summary))[:MAX_SUMMARY],
            "published_at": published,
            "guid": str(entry.get("id", "")),
            "feed": feed_title,
            "language": str(parsed.feed.get("language", "") or entry.get("language", "") or ""),
        }
        yield Candidate("news", source.name, fields, raw_of(fields))


def _plain(html: str) -> str:
    """Text of an HTML summary: tags dropped, whitespace folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
