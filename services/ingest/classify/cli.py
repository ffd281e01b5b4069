"""JSON lines in, classifications out: `python -m services.ingest.classify.cli < news.jsonl`.

Each input line is an object with `text` and optionally `title`, `id` and `published` (ISO date). A line
that cannot be classified becomes `{"error": ..., "line": n}` and the stream goes on.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from services.ingest.classify.classifier import classify_item


def classify_lines(lines: Iterable[str]) -> Iterator[str]:
    """One output JSON line per non-blank input line: the classification, or an error naming the line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = _parse(line)
        except ValueError as err:
            yield json.dumps({"error": str(err), "line": number}, ensure_ascii=False)
            continue
        result = classify_item(item["text"], title=item.get("title") or "", published=item.get("published"))
        out: dict[str, Any] = {"id": item["id"]} if "id" in item else {}
        out.update(result.model_dump(mode="json"))
        yield json.dumps(out, ensure_ascii=False)


def _parse(line: str) -> dict[str, Any]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON: {err.msg} at column {err.colno}") from None
    if not isinstance(item, dict):
        raise ValueError(f"expected a JSON object with a 'text' field, got {type(item).__name__}")
    if "text" not in item:
        raise ValueError("missing required field 'text'")
    if not isinstance(item["text"], str):
        raise ValueError("field 'text' must be a string")
    if not isinstance(item.get("title", ""), str | None):
        raise ValueError("field 'title' must be a string")
    if item.get("published") is not None:
        item["published"] = _published(item["published"])
    return item


def _published(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("field 'published' must be an ISO date string")
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # A timestamp with an offset is read as its UTC calendar day.
        return (moment.astimezone(UTC) if moment.tzinfo else moment).date()
    except ValueError:
        raise ValueError(f"field 'published' is not an ISO date: {value!r}") from None


def main() -> int:
    """Classify stdin to stdout, one JSON line each."""
    for out in classify_lines(sys.stdin):
        sys.stdout.write(out + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
