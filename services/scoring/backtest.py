"""Backtest: replay historical price, news, trade and lead-time files through `apply_event`, report every breach.

The same pure engine as the live service; only the driver differs: files in, merged by event time, breach
transitions out as CSV or JSON lines. Files ingest reads (the Pink Sheet workbook) come through ingest's own
readers, wired in services/cli.py (`report_of`), so the replay sees what the poller would have published.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from services.scoring.config import ScoringConfig
from services.scoring.engine import MaterialState, apply_event_in_place
from services.scoring.price_history import apply_price_history
from shared.events import (
    SIGNALS,
    BreachRaised,
    EnvelopeError,
    PriceObserved,
    SignalEvent,
    decode,
    describe_validation_error,
)
from shared.kafka import event_id_for

# Inputs at the same event time are applied in the order of SIGNALS, so a replay is the same however files are listed.
_KIND_ORDER = {kind: n for n, kind in enumerate(SIGNALS)}
REPORT_FIELDS = (
    "time",
    "material",
    "rule",
    "severity",
    "status",
    "value",
    "threshold",
    "indicator",
    "starts_at",
    "ends_at",
    "summary",
    "fingerprint",
    "classification",
    "evidence_ids",
)


@dataclass
class Input:
    """One replayable event with the id it carries (its CloudEvents id, or the id ingest would give it)."""

    event: SignalEvent
    event_id: str


@dataclass
class ReadReport:
    """Inputs read from files, and the records that could not be read, with their reasons."""

    inputs: list[Input] = field(default_factory=list)
    unreadable: Counter[str] = field(default_factory=Counter)


def _input(event: SignalEvent, event_id: str | None = None) -> Input:
    return Input(event, event_id or event_id_for(event.dedup_key()))


def report_of(events: Iterable[SignalEvent], unreadable: Counter[str] | None = None) -> ReadReport:
    """Events read elsewhere (ingest's readers of historical files) as replay inputs, under the ids ingest gives."""
    return ReadReport([_input(e) for e in events], Counter(unreadable or {}))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield n, line


def read_jsonl(path: Path, cls: type[SignalEvent]) -> ReadReport:
    """Events of one type from JSON lines: either the event's fields or a whole CloudEvents envelope."""
    report = ReadReport()
    for _, line in _lines(path):
        try:
            obj = json.loads(line)
            if isinstance(obj, dict) and "specversion" in obj:
                envelope, event = decode(line, cls)
                report.inputs.append(_input(event, str(envelope["id"])))
            else:
                report.inputs.append(_input(cls.model_validate(obj)))
        except json.JSONDecodeError:
            report.unreadable[f"{path.name}: not JSON"] += 1
        except EnvelopeError as exc:
            report.unreadable[f"{path.name}: {str(exc)[:120]}"] += 1
        except ValidationError as exc:
            report.unreadable[f"{path.name}: {describe_validation_error(exc)[:120]}"] += 1
    return report


def read_price_csv(path: Path) -> ReadReport:
    """PriceObserved-shaped rows from CSV (header row; lines starting with '#' are provenance notes)."""
    report = ReadReport()
    body = "".join(line for _, line in _lines(path))
    for row in csv.DictReader(io.StringIO(body)):
        record: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
        record.setdefault("source", path.stem)
        try:
            report.inputs.append(_input(PriceObserved.model_validate(record)))
        except ValidationError as exc:
            report.unreadable[f"{path.name}: {describe_validation_error(exc)[:120]}"] += 1
    return report


def merge_inputs(reports: Iterable[ReadReport]) -> list[Input]:
    """All inputs in event-time order; ties by kind, material and id, so the order never depends on the files."""
    inputs = [i for r in reports for i in r.inputs]
    inputs.sort(key=lambda i: (i.event.occurred_at, _KIND_ORDER[i.event.kind], i.event.material, i.event_id))
    return inputs


@dataclass
class BacktestResult:
    """The breach transitions of a replay, and how many inputs were applied or rejected (by reason)."""

    breaches: list[BreachRaised] = field(default_factory=list)
    applied: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    states: dict[str, MaterialState] = field(default_factory=dict)


def replay(
    inputs: Iterable[Input], config: ScoringConfig, on_breach: Callable[[BreachRaised], None] | None = None
) -> BacktestResult:
    """Drive the engine over inputs in order, one state per material, collecting breach transitions.

    A material's state depends on its own inputs alone, so each material is replayed on its own and the breach
    transitions are put back in input order. The states are the replay's own, so they are changed in place
    (`apply_event_in_place`); a material whose inputs are one price series in time order is applied at once
    (`apply_price_history`: the same outcomes, without the per-input overhead).
    """
    items = list(inputs)
    by_material: dict[str, list[int]] = {}
    for n, item in enumerate(items):
        by_material.setdefault(item.event.material, []).append(n)
    result = BacktestResult()
    found: dict[int, list[BreachRaised]] = {}
    for material, indices in by_material.items():
        history = None
        prices = [e for n in indices if type(e := items[n].event) is PriceObserved]
        if len(prices) == len(indices):
            history = apply_price_history(prices, [items[n].event_id for n in indices], config)
        if history is not None:
            result.states[material] = history.state
            result.applied += len(indices)
            found.update((indices[k], b) for k, b in history.breaches.items())
            continue
        state = None
        for n in indices:
            item = items[n]
            outcome = apply_event_in_place(state, item.event, event_id=item.event_id, config=config)
            state = outcome.state
            if outcome.rejected is not None:
                result.rejected[outcome.rejected.kind] += 1
                continue
            result.applied += 1
            if outcome.breaches:
                found[n] = outcome.breaches
        if state is not None:
            result.states[material] = state
    for n in sorted(found):
        for breach in found[n]:
            result.breaches.append(breach)
            if on_breach is not None:
                on_breach(breach)
    return result


def breach_row(b: BreachRaised) -> dict[str, Any]:
    """One report row of a breach transition."""
    return {
        "time": b.observed_at.isoformat(),
        "material": b.material,
        "rule": b.rule,
        "severity": b.severity.value,
        "status": b.status.value,
        "value": b.value,
        "threshold": b.threshold,
        "indicator": b.indicator,
        "starts_at": b.starts_at.isoformat(),
        "ends_at": b.ends_at.isoformat() if b.ends_at else "",
        "summary": b.summary,
        "fingerprint": b.fingerprint,
        "classification": b.classification.value,
        "evidence_ids": " ".join(e.id for e in b.evidence),
    }


def write_report(breaches: Iterable[BreachRaised], out: TextIO, fmt: str = "csv") -> int:
    """Write breach rows as CSV or JSON lines; returns the number of rows."""
    n = 0
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=REPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        for b in breaches:
            writer.writerow(breach_row(b))
            n += 1
    elif fmt == "jsonl":
        for b in breaches:
            out.write(json.dumps(breach_row(b), separators=(",", ":")) + "\n")
            n += 1
    else:
        raise ValueError(f"unknown report format {fmt!r} (csv or jsonl)")
    return n
