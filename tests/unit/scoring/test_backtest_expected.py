"""The backtest's breach report and final indicators equal stored expected reports, byte for byte.

The expected files were written by an earlier version of the engine; any change to them is a deliberate change
of results, made by running this module as a script (`python -m tests.unit.scoring.test_backtest_expected`)
and said in the commit.
"""

from __future__ import annotations

import io
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.cli import read_prices
from services.scoring.backtest import (
    BacktestResult,
    ReadReport,
    _input,
    merge_inputs,
    replay,
    write_report,
)
from services.scoring.config import load_config
from shared.events import LeadTimeQuoted, NewsReported, PriceObserved, TradeFlowReported

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scoring"
EXTRACT = FIXTURES / "pinksheet_metals_2020_2023.csv"
EXPECTED = {"extract": FIXTURES / "expected_extract", "synthetic": FIXTURES / "expected_synthetic"}


def synthetic_inputs(seed: int = 7) -> ReadReport:
    """Seeded business-day prices (random walks with jumps, one flat-then-moving), quotes, trade and news."""
    rng = random.Random(seed)
    report = ReadReport()
    start = datetime(2019, 1, 1, tzinfo=UTC)
    days = [start + timedelta(days=d) for d in range(3 * 365) if (start + timedelta(days=d)).weekday() < 5]
    for m, material in enumerate(("gallium", "germanium", "antimony", "cobalt")):
        price = rng.uniform(5, 5000)
        sigma = rng.uniform(0.15, 0.6) / math.sqrt(252)
        for n, day in enumerate(days):
            if material == "cobalt" and n < 300:
                # A fixed price that barely moves, then a market: the flat-history case of the jump z-score.
                price = 30000.0 + (n % 2) * 0.5
            else:
                jump = rng.gauss(0, 8 * sigma) if rng.random() < 0.004 else 0.0
                price *= math.exp(rng.gauss(0, sigma) + jump)
            report.inputs.append(
                _input(
                    PriceObserved(
                        material=material,
                        source="synthetic",
                        observed_at=day,
                        price=price,
                        currency="USD",
                        unit="kg",
                        series=f"spot-{m}",
                    )
                )
            )
    for week in range(150):
        days_quoted = 60.0 + rng.gauss(0, 4) + (70.0 if 90 <= week < 100 else 0.0)
        report.inputs.append(
            _input(
                LeadTimeQuoted(
                    material="gallium",
                    source="survey",
                    quoted_at=start + timedelta(weeks=week, days=1),
                    lead_time_days=max(1.0, days_quoted),
                    origin_country="CN" if week % 3 else "JP",
                    supplier="s",
                )
            )
        )
    for month in range(36):
        period = f"{2019 + month // 12}-{month % 12 + 1:02d}"
        for partner, share in (("CN", 0.6 + 0.3 * (month >= 18)), ("JP", 0.3), ("DE", 0.1)):
            report.inputs.append(
                _input(
                    TradeFlowReported(
                        material="germanium",
                        source="comext",
                        reporter="EU27",
                        partner=partner,
                        hs_code="81129295",
                        period=period,
                        quantity_kg=1000.0 * share,
                        value_eur=50000.0 * share * rng.uniform(0.9, 1.1),
                    )
                )
            )
    for title, measure, at in (
        ("China restricts germanium exports", "export_licence", datetime(2020, 7, 3)),
        ("China suspends germanium export licences", "easing", datetime(2021, 3, 1)),
    ):
        report.inputs.append(
            _input(
                NewsReported(
                    material="germanium",
                    item_id=title,
                    source="mofcom",
                    title=title,
                    published_at=at.replace(tzinfo=UTC),
                    countries=["CN"],
                    measure=measure,
                    relevant=True,
                )
            )
        )
    return report


def run(kind: str) -> BacktestResult:
    """The replay of one of the expected cases."""
    report = read_prices(EXTRACT) if kind == "extract" else synthetic_inputs()
    return replay(merge_inputs([report]), load_config())


def rendered(result: BacktestResult) -> tuple[str, str]:
    """The breach report (CSV) and the counts and final indicators (JSON) of a replay."""
    out = io.StringIO()
    write_report(result.breaches, out, "csv")
    final = {
        "applied": result.applied,
        "rejected": dict(sorted(result.rejected.items())),
        "indicators": {m: s.flat_indicators() for m, s in sorted(result.states.items())},
    }
    return out.getvalue(), json.dumps(final, indent=1, sort_keys=True) + "\n"


def test_extract_replay_gives_the_stored_report_and_final_indicators():
    report, final = rendered(run("extract"))
    assert report == EXPECTED["extract"].with_suffix(".csv").read_text(encoding="utf-8")
    assert final == EXPECTED["extract"].with_suffix(".json").read_text(encoding="utf-8")


def test_synthetic_daily_replay_gives_the_stored_report_and_final_indicators():
    report, final = rendered(run("synthetic"))
    assert report.count("\n") > 50  # the case exercises many transitions, not a handful
    assert report == EXPECTED["synthetic"].with_suffix(".csv").read_text(encoding="utf-8")
    assert final == EXPECTED["synthetic"].with_suffix(".json").read_text(encoding="utf-8")


if __name__ == "__main__":
    for kind, path in EXPECTED.items():
        report, final = rendered(run(kind))
        path.with_suffix(".csv").write_text(report, encoding="utf-8")
        path.with_suffix(".json").write_text(final, encoding="utf-8")
        print(f"wrote {path.name}.csv ({report.count(chr(10)) - 1} breach rows) and {path.name}.json")
