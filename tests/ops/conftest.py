"""Fixtures of the ops tests: the checking tools (installed once, cached) and the rendered manifests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = Path(os.environ.get("MEWS_TOOLS_DIR", ROOT / "var" / "tools"))
KUBERNETES_VERSION = "1.33.0"  # as in deploy/tools/install-tools.sh

# The metric names the team agreed on; every dashboard panel and alert rule must use only these.
AGREED_METRICS = {
    "mews_ingest_fetches_total",
    "mews_ingest_items_published_total",
    "mews_ingest_items_rejected_total",
    "mews_ingest_items_duplicate_total",
    "mews_ingest_newest_item_timestamp_seconds",
    "mews_ingest_last_success_timestamp_seconds",
    "mews_ingest_api_items_total",
    "mews_scoring_risk_score",
    "mews_scoring_risk_component",
    "mews_scoring_price",
    "mews_scoring_price_volatility",
    "mews_scoring_leadtime_days",
    "mews_scoring_leadtime_ratio",
    "mews_scoring_concentration_hhi",
    "mews_scoring_export_controls_active",
    "mews_scoring_breaches_total",
    "mews_scoring_breaches_firing",
    "mews_scoring_events_total",
    "mews_scoring_late_events_total",
    "mews_scoring_processing_lag_seconds",
    "mews_scoring_input_gaps_total",
    "mews_scoring_recovery_restarts_total",
    "mews_consumer_lag_messages",
    "mews_notify_deliveries_total",
    "mews_notify_delivery_retries_total",
    "mews_notify_outbox_depth",
    "mews_notify_outbox_oldest_pending_age_seconds",
    "mews_notify_breach_to_delivery_seconds",
    "mews_notify_alerts_firing",
    "mews_notify_pipeline_decisions_total",
    "mews_build_info",
    "up",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, histogram series folded onto their family."""
    names = set(re.findall(r"\b(mews_[a-z0-9_]+)\b", expr))
    if re.search(r"\bup\s*(\{|==|$)", expr):
        names.add("up")
    folded = set()
    for name in names:
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in AGREED_METRICS:
                name = name[: -len(suffix)]
        folded.add(name)
    return folded


def ensure_tools() -> dict[str, Path]:
    """kustomize, kubeconform and the offline schemas; installs them (cached) when missing."""
    wanted = {
        "kustomize": TOOLS / "bin" / "kustomize",
        "kubeconform": TOOLS / "bin" / "kubeconform",
        "kubernetes_schemas": TOOLS / "schemas" / "kubernetes" / f"v{KUBERNETES_VERSION}",
        "crd_schemas": TOOLS / "schemas" / "crd",
    }
    marker = TOOLS / "schemas" / "crd" / "kafka.strimzi.io" / "kafkatopic_v1.json"
    if not all(p.exists() for p in wanted.values()) or not marker.exists():
        subprocess.run(
            ["bash", str(DEPLOY / "tools" / "install-tools.sh")],
            check=True,
            env={**os.environ, "MEWS_TOOLS_DIR": str(TOOLS)},
        )
    return wanted


@pytest.fixture(scope="session")
def tools() -> dict[str, Path]:
    return ensure_tools()


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run deploy/tools/install-system.sh as root (Debian package prometheus)")
    return found


@pytest.fixture(scope="session")
def render(tools: dict[str, Path]) -> Callable[[str], str]:
    """Render an overlay with kustomize; results are cached for the session."""
    cache: dict[str, str] = {}

    def build(overlay: str) -> str:
        if overlay not in cache:
            result = subprocess.run(
                [str(tools["kustomize"]), "build", str(DEPLOY / "k8s" / "overlays" / overlay)],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode == 0, result.stderr
            cache[overlay] = result.stdout
        return cache[overlay]

    return build
