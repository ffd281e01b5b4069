"""Write the mews Grafana dashboards as JSON (dashboards/*.json) from the short declarations below.

Run `python deploy/grafana/dashboards.py` after a change and commit both files; tests/ops checks that the JSON
is what this script writes and that every query answers with data against a real Prometheus.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "mews-prometheus"}  # the uid provisioning/datasources fixes
WIDTH = 24


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    kind: str  # timeseries, stat, table, bargauge
    queries: list[Query]
    unit: str = "short"
    width: int = 12
    height: int = 8
    description: str = ""
    thresholds: list[tuple[float | None, str]] = field(default_factory=lambda: [(None, "green")])
    decimals: int | None = None


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    """A PromQL query with its legend."""
    return Query(" ".join(expr.split()), legend, instant)


RISK_STEPS = [(None, "green"), (40, "yellow"), (60, "orange"), (80, "red")]
SEVERITY_STEPS = [(None, "green"), (1, "red")]


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    """One Grafana panel."""
    targets = []
    for i, query in enumerate(panel.queries):
        target = {
            "datasource": DATASOURCE,
            "refId": chr(ord("A") + i),
            "expr": query.expr,
            "legendFormat": query.legend or "__auto",
            "range": not query.instant,
            "instant": query.instant,
        }
        if panel.kind == "table":
            target["format"] = "table"
        targets.append(target)
    defaults: dict = {
        "unit": panel.unit,
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": color, "value": value} for value, color in panel.thresholds],
        },
    }
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "spanNulls": True,
        }
        defaults["color"] = {"mode": "palette-classic"}
    else:
        defaults["color"] = {"mode": "thresholds"}
    options: dict = {}
    if panel.kind == "timeseries":
        options = {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind in ("stat", "bargauge"):
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
        }
        if panel.kind == "stat":
            options.update({"colorMode": "background", "graphMode": "none", "textMode": "value_and_name"})
        else:
            options.update({"displayMode": "gradient", "showUnfilled": True})
    elif panel.kind == "table":
        options = {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]}
    result = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": targets,
    }
    if panel.kind == "table":
        result["transformations"] = [
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ]
    return result


def row_json(title: str, panel_id: int, y: int) -> dict:
    return {
        "id": panel_id,
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"h": 1, "w": WIDTH, "x": 0, "y": y},
    }


def dashboard(
    uid: str,
    title: str,
    description: str,
    rows: list[tuple[str, list[Panel]]],
    variables: list[dict] | None = None,
    time_from: str = "now-6h",
    refresh: str = "1m",
) -> dict:
    """A whole dashboard: rows of panels laid out left to right, top to bottom."""
    panels, panel_id, y = [], 1, 0
    for row_title, row_panels in rows:
        panels.append(row_json(row_title, panel_id, y))
        panel_id, y = panel_id + 1, y + 1
        x, row_height = 0, 0
        for panel in row_panels:
            if x + panel.width > WIDTH:
                x, y = 0, y + row_height
                row_height = 0
            panels.append(panel_json(panel, panel_id, x, y))
            panel_id += 1
            x += panel.width
            row_height = max(row_height, panel.height)
        y += row_height
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["mews"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "timezone": "utc",
        "refresh": refresh,
        "graphTooltip": 1,
        "time": {"from": time_from, "to": "now"},
        "links": [
            {
                "type": "dashboards",
                "tags": ["mews"],
                "asDropdown": True,
                "title": "mews dashboards",
                "includeVars": False,
                "keepTime": True,
            }
        ],
        "templating": {"list": variables or []},
        "annotations": {"list": []},
        "panels": panels,
    }


def ops_desk() -> dict:
    """All materials at a glance."""
    return dashboard(
        "mews-ops-desk",
        "mews / Ops desk",
        "Every material at a glance: risk, its drivers, and the alerts in force.",
        [
            (
                "Risk",
                [
                    Panel(
                        "Risk score now",
                        "bargauge",
                        [q("max by (material) (mews_scoring_risk_score)", "{{material}}", True)],
                        unit="none",
                        width=8,
                        height=10,
                        thresholds=RISK_STEPS,
                        decimals=0,
                        description="Composite risk score per material (0-100); open the Material dashboard for one.",
                    ),
                    Panel(
                        "Risk score over time",
                        "timeseries",
                        [q("max by (material) (mews_scoring_risk_score)", "{{material}}")],
                        unit="none",
                        width=16,
                        height=10,
                    ),
                    Panel(
                        "Risk components now",
                        "table",
                        [q("max by (material, component) (mews_scoring_risk_component)", instant=True)],
                        unit="none",
                        width=24,
                        height=9,
                        decimals=1,
                        description="What drives each score: one row per material and component.",
                    ),
                ],
            ),
            (
                "Alerts in force",
                [
                    Panel(
                        "Breaches firing by severity",
                        "stat",
                        [q("sum by (severity) (mews_scoring_breaches_firing)", "{{severity}}", True)],
                        width=8,
                        height=5,
                        thresholds=SEVERITY_STEPS,
                    ),
                    Panel(
                        "Alerts firing in notify",
                        "stat",
                        [q("sum by (severity) (mews_notify_alerts_firing)", "{{severity}}", True)],
                        width=8,
                        height=5,
                        thresholds=SEVERITY_STEPS,
                        description="Alerts the notifier holds as firing (after grouping and inhibition).",
                    ),
                    Panel(
                        "Export controls in force",
                        "stat",
                        [q("sum(mews_scoring_export_controls_active)", "measures", True)],
                        width=8,
                        height=5,
                        thresholds=[(None, "green"), (1, "orange")],
                        description="Export-control measures in force across all materials.",
                    ),
                ],
            ),
            (
                "Markets",
                [
                    Panel(
                        "Price",
                        "timeseries",
                        [q("max by (material) (mews_scoring_price)", "{{material}}")],
                        unit="short",
                        width=12,
                    ),
                    Panel(
                        "Price volatility (annualised)",
                        "timeseries",
                        [q("max by (material) (mews_scoring_price_volatility)", "{{material}}")],
                        unit="percentunit",
                        width=12,
                    ),
                    Panel(
                        "Lead time",
                        "timeseries",
                        [q("max by (material) (mews_scoring_leadtime_days)", "{{material}}")],
                        unit="d",
                        width=8,
                    ),
                    Panel(
                        "Lead time against normal",
                        "timeseries",
                        [q("max by (material) (mews_scoring_leadtime_ratio)", "{{material}}")],
                        unit="none",
                        width=8,
                        description="Quoted lead time divided by its baseline: 2 means twice as long as usual.",
                    ),
                    Panel(
                        "Supply concentration (HHI)",
                        "bargauge",
                        [q("max by (material) (mews_scoring_concentration_hhi)", "{{material}}", True)],
                        unit="none",
                        width=8,
                        thresholds=[(None, "green"), (1500, "yellow"), (2500, "red")],
                        decimals=0,
                        description="Herfindahl-Hirschman index of import origins; above 2500 is highly concentrated.",
                    ),
                    Panel(
                        "Export controls by material",
                        "bargauge",
                        [q("max by (material) (mews_scoring_export_controls_active)", "{{material}}", True)],
                        width=24,
                        height=7,
                        thresholds=[(None, "green"), (1, "orange")],
                        decimals=0,
                    ),
                ],
            ),
        ],
    )


def material() -> dict:
    """One material in depth."""
    m = 'material="$material"'
    variable = {
        "name": "material",
        "label": "Material",
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": "label_values(mews_scoring_risk_score, material)", "refId": "material"},
        "definition": "label_values(mews_scoring_risk_score, material)",
        "refresh": 2,
        "sort": 1,
        "includeAll": False,
        "multi": False,
        "current": {},
    }
    return dashboard(
        "mews-material",
        "mews / Material",
        "One material in depth: score, drivers, breaches.",
        [
            (
                "Score",
                [
                    Panel(
                        "Risk score",
                        "stat",
                        [q(f"max(mews_scoring_risk_score{{{m}}})", "$material", True)],
                        unit="none",
                        width=6,
                        height=6,
                        thresholds=RISK_STEPS,
                        decimals=0,
                    ),
                    Panel(
                        "Risk score and components",
                        "timeseries",
                        [
                            q(f"max(mews_scoring_risk_score{{{m}}})", "risk score"),
                            q(f"max by (component) (mews_scoring_risk_component{{{m}}})", "{{component}}"),
                        ],
                        unit="none",
                        width=18,
                        height=6,
                    ),
                ],
            ),
            (
                "Drivers",
                [
                    Panel("Price", "timeseries", [q(f"max(mews_scoring_price{{{m}}})", "price")], width=12),
                    Panel(
                        "Price volatility (annualised)",
                        "timeseries",
                        [q(f"max(mews_scoring_price_volatility{{{m}}})", "volatility")],
                        unit="percentunit",
                        width=12,
                    ),
                    Panel(
                        "Lead time",
                        "timeseries",
                        [
                            q(f"max(mews_scoring_leadtime_days{{{m}}})", "days"),
                            q(f"max(mews_scoring_leadtime_ratio{{{m}}})", "ratio to normal"),
                        ],
                        unit="short",
                        width=8,
                    ),
                    Panel(
                        "Supply concentration (HHI)",
                        "stat",
                        [q(f"max(mews_scoring_concentration_hhi{{{m}}})", "HHI", True)],
                        width=8,
                        thresholds=[(None, "green"), (1500, "yellow"), (2500, "red")],
                        decimals=0,
                    ),
                    Panel(
                        "Export controls in force",
                        "stat",
                        [q(f"max(mews_scoring_export_controls_active{{{m}}})", "measures", True)],
                        width=8,
                        thresholds=[(None, "green"), (1, "orange")],
                        decimals=0,
                    ),
                ],
            ),
            (
                "Breaches",
                [
                    Panel(
                        "Breaches firing",
                        "stat",
                        [q(f"sum by (severity) (mews_scoring_breaches_firing{{{m}}})", "{{severity}}", True)],
                        width=8,
                        thresholds=SEVERITY_STEPS,
                    ),
                    Panel(
                        "Breach transitions in range",
                        "table",
                        [
                            q(
                                "sum by (rule, severity, status) "
                                f"(increase(mews_scoring_breaches_total{{{m}}}[$__range]))",
                                instant=True,
                            )
                        ],
                        width=16,
                        decimals=0,
                        description="How often each rule fired, escalated or resolved in the selected time range.",
                    ),
                ],
            ),
        ],
        variables=[variable],
        time_from="now-7d",
    )


def pipeline_health() -> dict:
    """Is data flowing in, through and out?"""
    rate = "[$__rate_interval]"
    return dashboard(
        "mews-pipeline",
        "mews / Pipeline health",
        "Ingest, scoring and delivery: rates, freshness, dead letters, lag and backlogs.",
        [
            (
                "Services",
                [
                    Panel(
                        "Targets up",
                        "stat",
                        [q('up{job=~"mews-.+"}', "{{job}} {{instance}}", True)],
                        width=12,
                        height=5,
                        thresholds=[(None, "red"), (1, "green")],
                    ),
                    Panel("Versions running", "table", [q("mews_build_info", instant=True)], width=12, height=5),
                ],
            ),
            (
                "Ingest",
                [
                    Panel(
                        "Fetches by outcome",
                        "timeseries",
                        [
                            q(
                                f"sum by (source, outcome) (rate(mews_ingest_fetches_total{rate}))",
                                "{{source}} {{outcome}}",
                            )
                        ],
                        unit="reqps",
                        width=12,
                    ),
                    Panel(
                        "Items published",
                        "timeseries",
                        [
                            q(
                                f"sum by (source, kind) (rate(mews_ingest_items_published_total{rate}))",
                                "{{source}} {{kind}}",
                            ),
                            q(
                                f"sum by (kind, outcome) (rate(mews_ingest_api_items_total{rate}))",
                                "API {{kind}} {{outcome}}",
                            ),
                        ],
                        unit="ops",
                        width=12,
                    ),
                    Panel(
                        "Newest item age",
                        "bargauge",
                        [q("time() - max by (source) (mews_ingest_newest_item_timestamp_seconds)", "{{source}}", True)],
                        unit="s",
                        width=8,
                        thresholds=[(None, "green"), (86400, "yellow"), (172800, "red")],
                        description="How old the newest published item of each source is; "
                        "alert MewsFeedStale at 2 days.",
                    ),
                    Panel(
                        "Since last successful fetch",
                        "bargauge",
                        [
                            q(
                                "time() - max by (source) (mews_ingest_last_success_timestamp_seconds)",
                                "{{source}}",
                                True,
                            )
                        ],
                        unit="s",
                        width=8,
                        thresholds=[(None, "green"), (21600, "yellow"), (86400, "red")],
                    ),
                    Panel(
                        "Dead-lettered items",
                        "timeseries",
                        [
                            q(
                                f"sum by (source, reason) (rate(mews_ingest_items_rejected_total{rate}))",
                                "{{source}}: {{reason}}",
                            ),
                            q(
                                f"sum by (source) (rate(mews_ingest_items_duplicate_total{rate}))",
                                "{{source}} duplicates",
                            ),
                        ],
                        unit="ops",
                        width=8,
                        description="Items refused and sent to mews.deadletter.v1 (with duplicates for comparison).",
                    ),
                ],
            ),
            (
                "Scoring",
                [
                    Panel(
                        "Events by outcome",
                        "timeseries",
                        [
                            q(
                                f"sum by (topic, outcome) (rate(mews_scoring_events_total{rate}))",
                                "{{topic}} {{outcome}}",
                            ),
                            q(f"sum by (topic) (rate(mews_scoring_late_events_total{rate}))", "{{topic}} late"),
                        ],
                        unit="ops",
                        width=8,
                    ),
                    Panel(
                        "Consumer lag",
                        "timeseries",
                        [q("max by (service, topic) (mews_consumer_lag_messages)", "{{service}} {{topic}}")],
                        unit="short",
                        width=8,
                    ),
                    Panel(
                        "Processing lag p95",
                        "timeseries",
                        [
                            q(
                                f"histogram_quantile(0.95, sum by (le, topic) "
                                f"(rate(mews_scoring_processing_lag_seconds_bucket{rate})))",
                                "{{topic}} p95",
                            ),
                            q(
                                f"histogram_quantile(0.5, sum by (le, topic) "
                                f"(rate(mews_scoring_processing_lag_seconds_bucket{rate})))",
                                "{{topic}} p50",
                            ),
                        ],
                        unit="s",
                        width=8,
                        description="From an event's own time to the moment scoring processed it.",
                    ),
                ],
            ),
            (
                "Delivery",
                [
                    Panel(
                        "Delivery outcomes",
                        "timeseries",
                        [
                            q(
                                f"sum by (channel, outcome) (rate(mews_notify_deliveries_total{rate}))",
                                "{{channel}} {{outcome}}",
                            ),
                            q(
                                f"sum by (channel) (rate(mews_notify_delivery_retries_total{rate}))",
                                "{{channel}} retries",
                            ),
                        ],
                        unit="ops",
                        width=8,
                    ),
                    Panel(
                        "Outbox depth",
                        "timeseries",
                        [q("sum by (channel) (mews_notify_outbox_depth)", "{{channel}}")],
                        unit="short",
                        width=8,
                    ),
                    Panel(
                        "Oldest pending notification",
                        "stat",
                        [q("max(mews_notify_outbox_oldest_pending_age_seconds)", "age", True)],
                        unit="s",
                        width=8,
                        thresholds=[(None, "green"), (900, "orange"), (3600, "red")],
                    ),
                    Panel(
                        "Alert pipeline decisions",
                        "timeseries",
                        [
                            q(
                                f"sum by (stage, decision) (rate(mews_notify_pipeline_decisions_total{rate}))",
                                "{{stage}}: {{decision}}",
                            )
                        ],
                        unit="ops",
                        width=24,
                        description="What each notification stage (classify, inhibit, silence, group, dedup) decided.",
                    ),
                ],
            ),
        ],
        refresh="30s",
        time_from="now-3h",
    )


def crisis() -> dict:
    """What fires now, and who has been told."""
    return dashboard(
        "mews-crisis",
        "mews / Crisis",
        "What fires now, for which materials, and whether the warnings reach subscribers.",
        [
            (
                "Firing now",
                [
                    Panel(
                        "Alerts firing",
                        "stat",
                        [q("sum by (severity) (mews_notify_alerts_firing)", "{{severity}}", True)],
                        width=8,
                        height=6,
                        thresholds=SEVERITY_STEPS,
                    ),
                    Panel(
                        "Breaches firing by material",
                        "table",
                        [q("sum by (material, severity) (mews_scoring_breaches_firing)", instant=True)],
                        width=16,
                        height=6,
                        thresholds=SEVERITY_STEPS,
                        decimals=0,
                    ),
                    Panel(
                        "Breaches raised and resolved in range",
                        "table",
                        [
                            q(
                                "sum by (material, rule, severity, status) "
                                "(increase(mews_scoring_breaches_total[$__range]))",
                                instant=True,
                            )
                        ],
                        width=12,
                        height=9,
                        decimals=0,
                    ),
                    Panel(
                        "Risk score of every material",
                        "bargauge",
                        [q("max by (material) (mews_scoring_risk_score)", "{{material}}", True)],
                        unit="none",
                        width=12,
                        height=9,
                        thresholds=RISK_STEPS,
                        decimals=0,
                    ),
                ],
            ),
            (
                "Are subscribers told?",
                [
                    Panel(
                        "Deliveries in range",
                        "table",
                        [
                            q(
                                "sum by (channel, outcome) (increase(mews_notify_deliveries_total[$__range]))",
                                instant=True,
                            )
                        ],
                        width=8,
                        decimals=0,
                    ),
                    Panel(
                        "Breach to delivery",
                        "timeseries",
                        [
                            q(
                                "histogram_quantile(0.5, sum by (le, channel) "
                                "(rate(mews_notify_breach_to_delivery_seconds_bucket[$__rate_interval])))",
                                "{{channel}} p50",
                            ),
                            q(
                                "histogram_quantile(0.95, sum by (le, channel) "
                                "(rate(mews_notify_breach_to_delivery_seconds_bucket[$__rate_interval])))",
                                "{{channel}} p95",
                            ),
                        ],
                        unit="s",
                        width=8,
                        description="From the breach reaching the notifier to the receiver accepting the notification.",
                    ),
                    Panel(
                        "Waiting to be sent",
                        "stat",
                        [
                            q("sum by (channel) (mews_notify_outbox_depth)", "{{channel}}", True),
                            q("max(mews_notify_outbox_oldest_pending_age_seconds)", "oldest (s)", True),
                        ],
                        width=8,
                        thresholds=[(None, "green"), (100, "orange")],
                    ),
                ],
            ),
        ],
        refresh="30s",
        time_from="now-24h",
    )


DASHBOARDS = {
    "ops-desk.json": ops_desk,
    "material.json": material,
    "pipeline-health.json": pipeline_health,
    "crisis.json": crisis,
}


def render() -> dict[str, str]:
    """File name -> the JSON text of every dashboard."""
    return {name: json.dumps(build(), indent=2) + "\n" for name, build in DASHBOARDS.items()}


def main() -> int:
    """Write every dashboard to dashboards/."""
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text)
        print(f"wrote dashboards/{name}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
