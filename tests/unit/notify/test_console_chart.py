"""The console's server-drawn charts: values and thresholds placed where the axes say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify.console.chart import HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_Y, WIDTH, alert_charts, line_chart, sparkline

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_points_span_the_plot_and_thresholds_sit_at_their_value():
    chart = line_chart(
        "price",
        [(T0, 10.0), (T0 + timedelta(days=2), 30.0), (T0 + timedelta(days=1), 20.0)],
        {"warning": 25.0, "none": None},
    )
    # The range 10..30 with 8 % margin each side: 8.4 .. 31.6; x runs from the left to the right padding.
    low, high = 10 - 20 * 0.08, 30 + 20 * 0.08

    def y(v):  # noqa: E306
        return HEIGHT - PAD_Y - (HEIGHT - 2 * PAD_Y) * (v - low) / (high - low)

    assert [round(x, 6) for x, _ in chart.points] == [PAD_LEFT, (PAD_LEFT + WIDTH - PAD_RIGHT) / 2, WIDTH - PAD_RIGHT]
    assert [round(p[1], 6) for p in chart.points] == [round(y(10), 6), round(y(20), 6), round(y(30), 6)]
    [level] = chart.levels
    assert (level.name, level.value, round(level.y, 6)) == ("warning", 25.0, round(y(25), 6))


def test_alert_charts_take_numeric_evidence_by_kind_and_the_indicator_with_its_thresholds():
    breach = {
        "value": 0.72,
        "observed_at": "2026-11-03T00:00:00Z",
        "warning_threshold": 0.3,
        "critical_threshold": 0.6,
        "clear_threshold": 0.25,
        "evidence": [
            {"kind": "price", "time": "2026-11-01T00:00:00Z", "value": 800},
            {"kind": "price", "time": "2026-11-02T00:00:00Z", "value": 900},
            {"kind": "news", "time": "2026-11-02T00:00:00Z", "value": "export ban"},
            {"kind": "price", "time": "not a time", "value": 1},
        ],
    }
    words = {
        "evidence": "Evidence",
        "indicator": "Indicator",
        "warning_threshold": "W",
        "critical_threshold": "C",
        "clear_threshold": "R",
    }
    prices, indicator = alert_charts(breach, words)
    assert (prices.title, len(prices.points), prices.levels) == ("Evidence: price", 2, [])
    assert indicator.title == "Indicator"
    assert [lv.name for lv in indicator.levels] == ["W", "C", "R"]
    assert alert_charts({"evidence": []}, words) == []


def test_sparkline_needs_two_values():
    one = {"evidence": [{"time": "2026-11-01T00:00:00Z", "value": 1}]}
    two = {"evidence": [{"time": "2026-11-01T00:00:00Z", "value": 1}, {"time": "2026-11-02T00:00:00Z", "value": 3}]}
    assert sparkline(one) == ""
    assert sparkline(two, width=120, height=24) == "2.0,22.0 118.0,2.0"
