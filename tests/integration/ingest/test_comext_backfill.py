"""`mews ingest backfill` of real Comext data onto a real broker: EU27 flows, published once, scored by the rules."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from services.scoring.config import load_config
from services.scoring.engine import apply_event
from shared import topics
from shared.events import TradeFlowReported

from .conftest import read_topic

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
EXTRACT = ROOT / "tests" / "fixtures" / "trade" / "comext_gallium_germanium_2022_2024.csv"
FULL = (
    ROOT.parent
    / "shared"
    / "data"
    / "eurostat-comext-crm-imports-2022-2024"
    / "eu_comext_critical_inputs_cn8_2022_2024.csv"
)


def backfill(path: Path, bootstrap: str, namespace: str, state: Path) -> dict[str, int]:
    """Run the command as an operator would; its counts by outcome."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "MEWS_TOPIC_NAMESPACE": namespace,
        "MEWS_INGEST_STATE_DIR": str(state),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "ingest",
            "backfill",
            "--file",
            str(path),
            "--kind",
            "comext",
            "--eu27-total",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    _, outcome, counts = done.stdout.strip().split("\t")
    assert outcome == "ok"
    return {k: int(v) for k, v in (c.split("=") for c in counts.split())}


async def test_backfill_publishes_eu27_flows_once_and_the_crma_and_eu_screen_rules_fire(
    kafka_bootstrap, kafka_topics, tmp_path
):
    groups = {(r["PRODUCT_NC"], r["PARTNER_ISO"], r["PERIOD"]) for r in csv.DictReader(EXTRACT.open())}
    first = backfill(EXTRACT, kafka_bootstrap, kafka_topics, tmp_path / "state")
    assert first == {"published": len(groups)}
    again = backfill(EXTRACT, kafka_bootstrap, kafka_topics, tmp_path / "state")
    assert again == {"duplicate": len(groups)}

    messages = await read_topic(kafka_bootstrap, kafka_topics, topics.TRADE, expect=len(groups))
    flows = [e for _, e, _ in messages if isinstance(e, TradeFlowReported)]
    assert len(flows) == len(groups)
    assert {f.reporter for f in flows} == {"EU27"}

    # The flows as they came off the broker, year by year, through the scoring engine's default rules.
    config, state, fired = load_config(), None, defaultdict(list)
    for i, flow in enumerate(sorted((f for f in flows if f.material == "gallium"), key=lambda f: f.period)):
        outcome = apply_event(state, flow, event_id=f"flow-{i}", config=config)
        state = outcome.state
        for b in outcome.breaches:
            fired[b.rule].append((flow.period, b.status.value, round(b.value, 3)))
    top_share = state.flat_indicators()["top_origin_share"]
    assert top_share == pytest.approx(0.6794, abs=1e-4)  # China's share of extra-EU gallium imports, 2024
    assert fired["crma-single-country"][0][:2] == ("2022", "firing")
    assert fired["strategic-dependency-hhi"][0][:2] == ("2022", "firing")
    assert all(b[1] == "firing" for b in fired["crma-single-country"])  # 97 %, 87 %, 68 %: above 65 % throughout
    assert state.rules["crma-single-country"].open_severity == "warning"
    assert state.rules["strategic-dependency-hhi"].open_severity == "warning"  # HHI 5,034 in 2024


@pytest.mark.skipif(not FULL.exists(), reason="the Comext extract (sibling shared/data folder) is absent")
async def test_backfill_of_the_whole_extract_refuses_nothing(kafka_bootstrap, kafka_topics, tmp_path):
    counts = backfill(FULL, kafka_bootstrap, kafka_topics, tmp_path / "state")
    # Skipped: codes no catalog material may claim (mixed carbides) and partners that are not one country
    # (Kosovo, Ceuta); nothing is refused.
    assert set(counts) == {"published", "skipped"}
    messages = await read_topic(kafka_bootstrap, kafka_topics, topics.TRADE, expect=counts["published"])
    flows = [e for _, e, _ in messages]
    # A record becomes one event per material its code denotes (rare-earth codes name several), each once.
    assert len(flows) >= counts["published"]
    assert len({f.dedup_key() for f in flows}) == len(flows)
    gallium_2024 = {f.partner: f.value_eur for f in flows if f.material == "gallium" and f.period == "2024"}
    assert gallium_2024["CN"] == pytest.approx(7_646_901.0, rel=1e-6)
