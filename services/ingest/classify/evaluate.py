"""Quality of the classifier on labelled items, per language: `python -m services.ingest.classify.evaluate`.

Each labelled line is an object with `id`, `lang`, `published`, `title`, `text` and `expected` (`materials`,
`measure`, `relevant`, optionally `countries`, `imposed_by`, `topic`, `effective_date`, `leadtime_days`,
`price_change_pct`). The figures
are those docs/classifier.md shows; `--write-docs` puts the tables there between its evaluate markers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from services.ingest.classify.classifier import classify_item
from services.ingest.classify.models import Classification

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
DEVELOPMENT = FIXTURES / "news_labelled.jsonl"
HELD_OUT = FIXTURES / "news_heldout.jsonl"
DOCS = ROOT / "docs" / "classifier.md"
BEGIN, END = "<!-- evaluate:begin -->", "<!-- evaluate:end -->"
FIGURES = ("effective_date", "leadtime_days", "price_change_pct")


@dataclass
class Tally:
    """Counts behind the figures of one group of items."""

    items: int = 0
    relevant_tp: int = 0
    relevant_fp: int = 0
    relevant_fn: int = 0
    relevant_right: int = 0
    measure_right: int = 0
    topic_right: int = 0
    topic_items: int = 0
    materials_tp: int = 0
    materials_fp: int = 0
    materials_fn: int = 0
    language_right: int = 0
    figures_right: int = 0
    figures_items: int = 0
    imposers_right: int = 0
    imposers_items: int = 0
    misses: list[str] = field(default_factory=list)

    def add(self, row: dict[str, Any], result: Classification) -> None:
        expected = row["expected"]
        self.items += 1
        want, got = bool(expected["relevant"]), result.relevant
        self.relevant_tp += want and got
        self.relevant_fp += got and not want
        self.relevant_fn += want and not got
        self.relevant_right += want == got
        self.measure_right += result.measure == expected["measure"]
        if "topic" in expected:
            self.topic_items += 1
            self.topic_right += result.topic == expected["topic"]
        wanted, found = set(expected["materials"]), set(result.materials)
        self.materials_tp += len(wanted & found)
        self.materials_fp += len(found - wanted)
        self.materials_fn += len(wanted - found)
        self.language_right += result.language == row["lang"]
        wrong = _wrong(row, result)
        for name in FIGURES:
            if name in expected:
                self.figures_items += 1
                self.figures_right += not any(w.startswith(f"{name} ") for w in wrong)
        if "imposed_by" in expected:
            self.imposers_items += 1
            self.imposers_right += sorted(result.imposed_by) == sorted(expected["imposed_by"])
        if wrong:
            self.misses.append(f"{row['id']}: " + "; ".join(wrong))

    def figures(self) -> dict[str, float]:
        """Precision, recall and accuracy of `relevant`; `measure`, `topic`, language accuracy; materials F1."""
        tp, fp, fn = self.relevant_tp, self.relevant_fp, self.relevant_fn
        m_tp, m_fp, m_fn = self.materials_tp, self.materials_fp, self.materials_fn
        return {
            "relevant_precision": tp / (tp + fp) if tp + fp else 1.0,
            "relevant_recall": tp / (tp + fn) if tp + fn else 1.0,
            "relevant_accuracy": self.relevant_right / self.items if self.items else 1.0,
            "measure_accuracy": self.measure_right / self.items if self.items else 1.0,
            "topic_accuracy": self.topic_right / self.topic_items if self.topic_items else 1.0,
            "materials_f1": 2 * m_tp / (2 * m_tp + m_fp + m_fn) if m_tp + m_fp + m_fn else 1.0,
            "language_accuracy": self.language_right / self.items if self.items else 1.0,
            "figures_accuracy": self.figures_right / self.figures_items if self.figures_items else 1.0,
            "imposers_accuracy": self.imposers_right / self.imposers_items if self.imposers_items else 1.0,
        }


def _wrong(row: dict[str, Any], result: Classification) -> list[str]:
    expected = row["expected"]
    wrong = []
    if result.relevant != expected["relevant"]:
        wrong.append(f"relevant {str(result.relevant).lower()}")
    if result.measure != expected["measure"]:
        wrong.append(f"measure {result.measure} (not {expected['measure']})")
    if "topic" in expected and result.topic != expected["topic"]:
        wrong.append(f"topic {result.topic} (not {expected['topic']})")
    if sorted(result.materials) != sorted(expected["materials"]):
        wrong.append(f"materials {', '.join(result.materials) or '-'} (not {', '.join(expected['materials']) or '-'})")
    if "imposed_by" in expected and sorted(result.imposed_by) != sorted(expected["imposed_by"]):
        wrong.append(
            f"imposed_by {', '.join(result.imposed_by) or '-'} (not {', '.join(sorted(expected['imposed_by'])) or '-'})"
        )
    if result.language != row["lang"]:
        wrong.append(f"language {result.language}")
    for name in FIGURES:
        if name in expected:
            value = getattr(result, name)
            value = value.isoformat() if isinstance(value, date) else value
            if value != expected[name]:
                wrong.append(f"{name} {value} (not {expected[name]})")
    return wrong


def held_out_files() -> list[Path]:
    """The held-out sets, each written after a freeze of the lexicon and run once: news_heldout*.jsonl."""
    return sorted(FIXTURES.glob("news_heldout*.jsonl"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Labelled items of a JSON lines file; a bad line is an error naming the file and line."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["expected"]["relevant"], row["lang"], row["text"]  # noqa: B018 - presence check
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(f"{path.name}:{number}: not a labelled item ({err})") from None
        rows.append(row)
    return rows


def evaluate(rows: Iterable[dict[str, Any]]) -> dict[str, Tally]:
    """A tally per language and one for all items (`all`)."""
    tallies: dict[str, Tally] = {}
    for row in rows:
        published = date.fromisoformat(row["published"]) if row.get("published") else None
        result = classify_item(row["text"], title=row.get("title") or "", published=published)
        for key in (row["lang"], "all"):
            tallies.setdefault(key, Tally()).add(row, result)
    return dict(sorted(tallies.items(), key=lambda kv: (kv[0] == "all", kv[0])))


def markdown(title: str, tallies: dict[str, Tally]) -> str:
    """One table of the figures per language, and the misses."""
    head = (
        "| language | items | `relevant` precision | `relevant` recall | `relevant` accuracy | `measure` accuracy |"
        " `topic` accuracy | materials F1 | language | figures | `imposed_by` |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
    )
    lines = [f"**{title}**", "", head.rstrip("\n")]
    for language, tally in tallies.items():
        f = tally.figures()
        name = "**all**" if language == "all" else language
        lines.append(
            f"| {name} | {tally.items} | {f['relevant_precision']:.3f} | {f['relevant_recall']:.3f} |"
            f" {f['relevant_accuracy']:.3f} | {f['measure_accuracy']:.3f} | {f['topic_accuracy']:.3f} |"
            f" {f['materials_f1']:.3f} | {f['language_accuracy']:.3f} |"
            f" {tally.figures_right}/{tally.figures_items} | {tally.imposers_right}/{tally.imposers_items} |"
        )
    misses = tallies["all"].misses if "all" in tallies else []
    lines += ["", f"Misses ({len(misses)}):" if misses else "No misses."]
    lines += [f"- {miss}" for miss in misses]
    return "\n".join(lines) + "\n"


def write_docs(text: str, docs: Path = DOCS) -> None:
    """Replace what stands between the evaluate markers of the docs page."""
    page = docs.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    if not pattern.search(page):
        raise ValueError(f"{docs.name}: no {BEGIN} ... {END} block")
    docs.write_text(pattern.sub(lambda _: f"{BEGIN}\n{text}{END}", page), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the figures of the development and held-out sets (or the files given) as markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="labelled JSON lines (default: both sets)")
    parser.add_argument("--write-docs", action="store_true", help="also write the tables into docs/classifier.md")
    args = parser.parse_args(argv)
    files = args.files or [DEVELOPMENT, *held_out_files()]
    parts = []
    for path in files:
        try:
            rows = read_rows(path)
        except (OSError, ValueError) as err:
            sys.stderr.write(f"error: {err}\n")
            return 2
        parts.append(markdown(f"{path.name} ({len(rows)} items)", evaluate(rows)))
    text = "\n".join(parts)
    sys.stdout.write(text)
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
