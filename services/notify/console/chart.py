"""Charts drawn on the server as SVG: an alert's evidence over time, and its indicator against the thresholds.

No script draws them, so they render without JavaScript and the page's policy allows no script at all; the
evidence table beside each chart carries the same numbers for a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_Y = 720, 220, 60, 140, 24


@dataclass(frozen=True)
class Level:
    """A horizontal line: a threshold with its name."""

    name: str
    value: float
    y: float


@dataclass
class Chart:
    """Pixel geometry of one chart: the polyline's points, dots, threshold lines and axis labels."""

    title: str
    points: list[tuple[float, float]] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    y_labels: list[tuple[float, float]] = field(default_factory=list)  # (value, y)
    x_labels: list[tuple[str, float]] = field(default_factory=list)  # (text, x)
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in self.points)


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def line_chart(
    title: str, series: list[tuple[datetime, float]], levels: dict[str, float | None], label_time: Any = None
) -> Chart | None:
    """A chart of values over time with threshold lines; None when there is nothing to draw."""
    series = sorted(series)
    known = {name: v for name, v in levels.items() if v is not None}
    if not series:
        return None
    values = [v for _, v in series] + list(known.values())
    low, high = min(values), max(values)
    if high == low:
        low, high = low - (abs(low) or 1) * 0.1, high + (abs(high) or 1) * 0.1
    margin = (high - low) * 0.08
    low, high = low - margin, high + margin
    start, end = series[0][0].timestamp(), series[-1][0].timestamp()
    span = end - start

    def x(t: datetime) -> float:
        return PAD_LEFT + (WIDTH - PAD_LEFT - PAD_RIGHT) * ((t.timestamp() - start) / span if span else 0.5)

    def y(v: float) -> float:
        return HEIGHT - PAD_Y - (HEIGHT - 2 * PAD_Y) * (v - low) / (high - low)

    chart = Chart(title)
    chart.points = [(x(t), y(v)) for t, v in series]
    chart.levels = [Level(name, v, y(v)) for name, v in known.items()]
    chart.y_labels = [(low + (high - low) * i / 4, y(low + (high - low) * i / 4)) for i in range(5)]
    ends = [series[0][0]] if not span else [series[0][0], series[-1][0]]
    chart.x_labels = [(label_time(t) if label_time else t.isoformat(), x(t)) for t in ends]
    return chart


def alert_charts(breach: dict[str, Any], words: dict[str, str], label_time: Any = None) -> list[Chart]:
    """The charts an alert's breach allows: each kind of numeric evidence over time, and the indicator's value
    when observed against its warning, critical and clear thresholds."""
    charts: list[Chart] = []
    by_kind: dict[str, list[tuple[datetime, float]]] = {}
    for item in breach.get("evidence") or []:
        moment, value = _moment(item.get("time")), item.get("value")
        if moment is not None and isinstance(value, int | float) and not isinstance(value, bool):
            by_kind.setdefault(str(item.get("kind", "")), []).append((moment, float(value)))
    for kind, series in by_kind.items():
        chart = line_chart(f"{words['evidence']}: {kind}", series, {}, label_time)
        if chart is not None:
            charts.append(chart)
    observed, value = _moment(breach.get("observed_at")), breach.get("value")
    if observed is not None and isinstance(value, int | float):
        chart = line_chart(
            words["indicator"],
            [(observed, float(value))],
            {
                words["warning_threshold"]: breach.get("warning_threshold"),
                words["critical_threshold"]: breach.get("critical_threshold"),
                words["clear_threshold"]: breach.get("clear_threshold"),
            },
            label_time,
        )
        if chart is not None:
            charts.append(chart)
    return charts


def sparkline(breach: dict[str, Any], width: int = 120, height: int = 24) -> str:
    """The points of a small line of a breach's numeric evidence over time ("" with fewer than two values)."""
    return sparkline_of(
        [
            (moment, float(item["value"]))
            for item in breach.get("evidence") or []
            if (moment := _moment(item.get("time"))) is not None
            and isinstance(item.get("value"), int | float)
            and not isinstance(item.get("value"), bool)
        ],
        width,
        height,
    )


def sparkline_of(series: list[tuple[datetime, float]], width: int = 120, height: int = 24) -> str:
    """The points of a small line of values over time ("" with fewer than two values)."""
    series = sorted(series)
    if len(series) < 2:
        return ""
    low, high = min(v for _, v in series), max(v for _, v in series)
    start, span = series[0][0].timestamp(), (series[-1][0].timestamp() - series[0][0].timestamp()) or 1.0
    return " ".join(
        f"{2 + (width - 4) * (t.timestamp() - start) / span:.1f},"
        f"{height - 2 - (height - 4) * ((v - low) / (high - low) if high > low else 0.5):.1f}"
        for t, v in series
    )
