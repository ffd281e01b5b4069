"""The dashboards are what dashboards.py generates, query only agreed metrics, and use the provisioned uid."""

from __future__ import annotations

import json

import yaml

from deploy.grafana import dashboards
from tests.ops.conftest import AGREED_METRICS, DEPLOY, metric_names

GRAFANA = DEPLOY / "grafana"
REQUIRED = {"mews-ops-desk", "mews-material", "mews-pipeline", "mews-crisis"}


def loaded() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in sorted((GRAFANA / "dashboards").glob("*.json"))}


def panels(board: dict) -> list[dict]:
    return [p for p in board["panels"] if p["type"] != "row"]


def test_dashboard_files_are_what_the_generator_writes() -> None:
    assert {name: json.loads(text) for name, text in dashboards.render().items()} == loaded()


def test_the_four_dashboards_exist_with_unique_uids() -> None:
    uids = [board["uid"] for board in loaded().values()]
    assert set(uids) == REQUIRED
    assert len(uids) == len(set(uids))


def test_every_panel_queries_the_provisioned_datasource_uid() -> None:
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    for board in loaded().values():
        for panel in panels(board):
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"], f"{board['title']}: {panel['title']} has no query"
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid


def test_every_query_uses_only_agreed_metric_names() -> None:
    for board in loaded().values():
        for panel in panels(board):
            for target in panel["targets"]:
                names = metric_names(target["expr"])
                assert names, f"{panel['title']}: no metric in {target['expr']}"
                assert names <= AGREED_METRICS, f"{panel['title']}: {sorted(names - AGREED_METRICS)}"


def test_panels_do_not_overlap() -> None:
    for board in loaded().values():
        taken: set[tuple[int, int]] = set()
        for panel in board["panels"]:
            pos = panel["gridPos"]
            cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & taken, f"{board['title']}: {panel['title']} overlaps another panel"
            assert pos["x"] + pos["w"] <= 24
            taken |= cells


def test_material_dashboard_selects_the_material_from_the_risk_score_labels() -> None:
    board = loaded()["material.json"]
    variable = board["templating"]["list"][0]
    assert variable["name"] == "material"
    assert variable["query"]["query"] == "label_values(mews_scoring_risk_score, material)"
    for panel in panels(board):
        assert all('material="$material"' in t["expr"] for t in panel["targets"]), panel["title"]


def test_provisioning_loads_dashboards_from_files() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "mews.yaml").read_text())["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
