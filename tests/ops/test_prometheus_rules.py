"""The pipeline alert rules are valid, unit-tested with promtool, and use only the agreed metric names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.ops.conftest import AGREED_METRICS, DEPLOY, ROOT, metric_names

RULES = DEPLOY / "prometheus" / "rules" / "mews.rules.yaml"
RULE_TESTS = sorted((DEPLOY / "prometheus" / "tests").glob("*.yaml"))
OPERATIONS = ROOT / "docs" / "operations.md"


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules(promtool: str) -> None:
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass(promtool: str) -> None:
    assert RULE_TESTS, "no rule unit tests under deploy/prometheus/tests"
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS[0].parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_rule_with_a_syntax_error(promtool: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(rate(x[5m])\n")
    result = subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_every_alert_is_unit_tested() -> None:
    tested = {
        case["alertname"]
        for path in RULE_TESTS
        for test in yaml.safe_load(path.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} <= tested


def test_rules_use_only_agreed_metric_names() -> None:
    for rule in alert_rules():
        unknown = metric_names(rule["expr"]) - AGREED_METRICS
        assert not unknown, f"{rule['alert']} uses {sorted(unknown)}"


def test_every_alert_has_severity_summary_and_an_existing_runbook_section() -> None:
    anchors = {
        "#" + line.lstrip("#").strip().lower().replace(" ", "-")
        for line in OPERATIONS.read_text().splitlines()
        if line.startswith("#")
    }
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        runbook = rule["annotations"]["runbook"]
        assert runbook.startswith("docs/operations.md#"), rule["alert"]
        assert runbook.removeprefix("docs/operations.md") in anchors, f"{rule['alert']}: {runbook} has no section"
