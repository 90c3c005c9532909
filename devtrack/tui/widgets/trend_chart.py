"""A terminal chart of one metric across releases, the deployed release marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual_plotext import PlotextPlot

from devtrack.core.units import latency_unit

MAX_TICKS = 8


def tick_positions(count: int, limit: int = MAX_TICKS) -> list[int]:
    """At most ``limit`` evenly spread x positions (1-based), always the first and last."""
    if count <= limit:
        return list(range(1, count + 1))
    step = (count - 1) / (limit - 1)
    return sorted({round(1 + i * step) for i in range(limit)})


class TrendChart(PlotextPlot):
    """Releases on x (in registration order), the metric on y."""

    def __init__(self, title: str, unit: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart_title = title
        self.unit = unit

    def show_message(self, message: str) -> None:
        """An empty chart with a line of text instead of data."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.chart_title)
        plt.xlim(0, 10)
        plt.ylim(0, 1)
        plt.xticks([], [])
        plt.yticks([], [])
        plt.text(message, x=0.5, y=0.5, color="yellow")
        self.refresh()

    def show(self, points: Sequence[Any], regressed: set[str]) -> None:
        """``points`` have ``version``, ``value`` (None = not measured) and ``deployed``."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs = [i for i, p in enumerate(points, 1) if p.value is not None]
        unit, scale = self.unit, 1.0
        if unit == "ms":  # sub-millisecond models read better in µs
            unit, scale = latency_unit([p.value for p in points])
        ys = [float(p.value) * scale for p in points if p.value is not None]
        deployed = [(i, p) for i, p in enumerate(points, 1) if p.deployed]
        title = self.chart_title
        if deployed:
            title += "  ▲ deployed: " + ", ".join(p.version for _, p in deployed)
        plt.title(title)
        plt.ylabel(unit)
        if not xs:
            plt.xlim(0, max(2, len(points) + 1))
            plt.text("not measured on this profile", x=1, y=0.5, color="yellow")
            plt.ylim(0, 1)
            self.refresh()
            return
        plt.plot(xs, ys, marker="braille", color="blue")
        plt.scatter(xs, ys, marker="dot", color="blue")
        bad = [(i, float(p.value) * scale) for i, p in enumerate(points, 1)
               if p.version in regressed and p.value is not None]
        if bad:
            plt.scatter([x for x, _ in bad], [y for _, y in bad], marker="x", color="red")
        for x, point in deployed:
            plt.vline(x, color="cyan")
            if point.value is not None:
                plt.scatter([x], [float(point.value) * scale], marker="◆", color="cyan")
        ticks = tick_positions(len(points))
        plt.xticks([float(t) for t in ticks], [points[t - 1].version for t in ticks])
        plt.xlim(0.5, len(points) + 0.5)
        low, high = min(ys), max(ys)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        plt.ylim(low - pad, high + pad)
        self.refresh()
