"""Latency, memory and accuracy across a model's releases on one profile, as charts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, Select, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from devtrack.errors import DevtrackError
from devtrack.overview import ReleaseTable, profile_names, release_overview
from devtrack.tui.messages import DataChanged
from devtrack.tui.widgets.app_footer import AppFooter
from devtrack.tui.widgets.bench_bar import BenchBar
from devtrack.tui.widgets.trend_chart import TrendChart

if TYPE_CHECKING:
    from devtrack.tui.app import DevtrackApp

CHARTS = (
    ("p50_ms", "p50 latency", "ms"),
    ("peak_rss_mb", "peak memory", "MB"),
    ("accuracy", "accuracy", ""),
)
SHORT = {"p50 latency": "p50", "peak memory": "memory", "accuracy": "accuracy"}


@dataclass(frozen=True)
class ChartPoint:
    """One release on a chart: its value of the metric (None = not measured)."""

    version: str
    value: float | None
    deployed: bool


def quick_series(table: ReleaseTable, metric: str) -> tuple[list[ChartPoint], set[str]]:
    """The chart of ``metric`` from the release table (instant), and its quick regressions."""
    points = [ChartPoint(r.version, getattr(r, metric),
                         table.profile is not None and table.profile in r.deployed_on)
              for r in table.rows]
    return points, {r.version for r in table.rows if metric in r.regressed_metrics}


def load_trends(root: Path, model: str, profile: str) -> dict[str, Any]:
    """``devtrack trend`` for each charted metric (in a worker thread: its own connection).

    Maps metric -> the library's ``Trend``, or the one-line reason there is none.
    """
    from devtrack.trends import trend
    from devtrack.workspace import open_workspace

    out: dict[str, Any] = {}
    with open_workspace(root) as ws:
        for metric, _, _ in CHARTS:
            try:
                out[metric] = trend(ws, model, profile, metric)
            except DevtrackError as exc:
                out[metric] = str(exc)
    return out


class TrendsScreen(Screen[None]):
    """One tab per metric (keys 1-3); the profile selector picks where they were measured."""

    CSS_PATH = "trends.tcss"
    HELP_TITLE = "trends"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("1", "tab('p50_ms')", "Latency"),
        Binding("2", "tab('peak_rss_mb')", "Memory"),
        Binding("3", "tab('accuracy')", "Accuracy"),
        Binding("p", "choose_profile", "Profile"),
    ]

    def __init__(self, model: str, profile: str | None) -> None:
        super().__init__()
        self.model = model
        self.profile = profile
        self.trends: dict[str, Any] = {}
        self.source = ""

    @property
    def dt_app(self) -> DevtrackApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        names = profile_names(self.dt_app.ws)
        yield Header()
        with Horizontal(id="trends-bar"):
            yield Static("Profile", classes="bar-label")
            yield Select[str]([(n, n) for n in names], id="trends-profile", compact=True,
                              value=self.profile if self.profile in names else Select.NULL)
            yield Static("", id="trends-summary", markup=False)
        with TabbedContent(id="trends-tabs"):
            for metric, title, unit in CHARTS:
                with TabPane(title, id=metric):
                    yield TrendChart(f"{self.model}: {title}", unit, id=f"chart-{metric}")
        yield Static("", id="trends-legend", markup=False)
        yield BenchBar()
        yield AppFooter()

    def on_mount(self) -> None:
        self.title = f"Trends of {self.model}"
        self.dt_app.data_signal.subscribe(self, self.on_data_changed)
        self.load()

    def load(self) -> None:
        """Charts from the release table at once; ``devtrack trend``'s verdicts follow.

        ``trend`` judges each p50 change on the stored samples (bootstrap and Mann-Whitney),
        which takes seconds on long runs; until it answers, regressions are marked by the
        table's quick rule (the same limits, without the significance test).
        """
        if self.profile is None:
            self.query_one("#trends-summary", Static).update(
                Text("Choose a profile (p).", style="yellow"))
            return
        table = release_overview(self.dt_app.ws, self.model, self.profile)
        self.trends = {}
        marked: dict[str, list[str]] = {}
        for metric, title, _ in CHARTS:
            points, regressed = quick_series(table, metric)
            chart = self.query_one(f"#chart-{metric}", TrendChart)
            if any(p.value is not None for p in points):
                chart.show(points, regressed)
            else:
                chart.show_message(f"no release of {self.model} has {title} measured on "
                                   f"{self.profile}")
            for version in regressed:
                marked.setdefault(version, []).append(title)
        self._summary(len(table.rows), marked, "quick rule, devtrack trend is checking…")
        self._legend([])
        self._load(self.profile)

    def _summary(self, count: int, regressed: dict[str, list[str]], source: str) -> None:
        summary = Text(f"{count} releases", no_wrap=True, overflow="ellipsis")
        if regressed:
            summary.append(" · regressions: ", style="bold red")
            summary.append(", ".join(f"{v} ({', '.join(SHORT.get(m, m) for m in ms)})"
                                     for v, ms in regressed.items()), style="red")
        self.query_one("#trends-summary", Static).update(summary)
        self.source = source

    def _legend(self, notes: list[str]) -> None:
        legend = Text(no_wrap=True, overflow="ellipsis")
        legend.append(f"marks: {self.source}  ", style="dim")
        legend.append("● release  ", style="blue")
        legend.append("x regression vs the release before  ", style="red")
        legend.append("◆│ deployed here", style="cyan")
        if notes:
            legend.append("  " + notes[0], style="dim")
        self.query_one("#trends-legend", Static).update(legend)

    @work(thread=True, exclusive=True, group="trends", exit_on_error=False)
    def _load(self, profile: str) -> dict[str, Any]:
        return load_trends(self.dt_app.root, self.model, profile)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "trends":
            return
        if event.state == WorkerState.SUCCESS and event.worker.result is not None:
            self.show(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.query_one("#trends-summary", Static).update(
                Text(str(event.worker.error), style="red"))

    def show(self, trends: dict[str, Any]) -> None:
        """Redraw with ``devtrack trend``'s own values and regression marks."""
        self.trends = trends
        regressed: dict[str, list[str]] = {}
        notes: list[str] = []
        count = 0
        for metric, title, _ in CHARTS:
            chart = self.query_one(f"#chart-{metric}", TrendChart)
            result = trends.get(metric)
            if isinstance(result, str) or result is None:
                chart.show_message(result or "no data")
                continue
            count = len(result.points)
            marked = {p.version for p in result.regressions}
            chart.show(result.points, marked)
            for version in marked:
                regressed.setdefault(version, []).append(title)
            notes.extend(n for n in result.notes if n not in notes)
        self._summary(count, regressed, "devtrack trend")
        self._legend(notes)

    def on_data_changed(self, change: DataChanged) -> None:
        self.load()

    def on_select_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.profile:
            self.profile = event.value
            self.load()

    def action_tab(self, metric: str) -> None:
        self.query_one(TabbedContent).active = metric

    def action_choose_profile(self) -> None:
        select = self.query_one("#trends-profile", Select)
        select.focus()
        select.expanded = True

    def action_back(self) -> None:
        self.workers.cancel_group(self, "trends")
        self.app.pop_screen()

    def palette_commands(self) -> Iterable[SystemCommand]:
        for metric, title, _ in CHARTS:
            yield SystemCommand(f"Trend: {title}", f"Show the {title} chart",
                                lambda metric=metric: self.action_tab(metric))
        yield SystemCommand("Back", "esc", self.action_back)
