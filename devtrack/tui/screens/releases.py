"""The start screen: model lines on the left, their releases on one profile on the right."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Header, OptionList, Select, Static

from devtrack.core.units import latency_unit
from devtrack.overview import (
    ReleaseOverview,
    ReleaseTable,
    compare_baseline,
    default_profile,
    list_model_overview,
    profile_names,
    regression_limits,
    release_overview,
)
from devtrack.tui import format as fmt
from devtrack.tui.messages import DataChanged
from devtrack.tui.review_actions import ReviewActions, Target
from devtrack.tui.widgets.app_footer import AppFooter
from devtrack.tui.widgets.bench_bar import BenchBar
from devtrack.tui.widgets.empty_state import EmptyState
from devtrack.tui.widgets.filter_bar import FilterBar
from devtrack.tui.widgets.model_list import ModelList
from devtrack.tui.widgets.nav_table import Column, NavTable, Row

if TYPE_CHECKING:
    from devtrack.tui.app import DevtrackApp


def _num(text: str) -> Text:
    return Text(text, justify="right")


def release_columns(unit: str = "ms") -> tuple[Column, ...]:
    """The table's columns; latencies in ``unit`` (µs when every figure is below 1 ms).
    The figures come first: at 80 columns the rest scrolls, and the line under the table
    repeats size, quantization, date and notes for the highlighted release."""
    return (
        Column("version", "version", sort=lambda v: v),
        Column("status", "status", sort=lambda v: v),
        Column("budget", "budget", sort=lambda v: v),
        Column("p50", f"p50 {unit}", sort=lambda v: v, justify="right"),
        Column("delta", "Δp50", sort=lambda v: v, justify="right"),
        Column("p90", f"p90 {unit}", sort=lambda v: v, justify="right"),
        Column("mem", "peak MB", sort=lambda v: v, justify="right"),
        Column("acc", "accuracy", sort=lambda v: v, justify="right"),
        Column("deployed", "deployed on"),
        Column("size", "size", sort=lambda v: v, justify="right"),
        Column("quant", "quant", sort=lambda v: v),
        Column("date", "created", sort=lambda v: v),
        Column("notes", "notes"),
    )


def release_row(row: ReleaseOverview, profile: str | None, latency_limit: float,
                scale: float = 1.0) -> Row:
    """The table row of a release; its cells are made only when the row is shown.
    ``scale`` converts its latencies from ms to the table's unit."""
    sort_values = {
        "version": row.id, "status": row.status, "p50": row.p50_ms, "p90": row.p90_ms,
        "mem": row.peak_rss_mb, "acc": row.accuracy, "budget": row.budget,
        "delta": row.p50_change_pct, "size": row.size_bytes, "quant": row.quantization,
        "date": row.created_at,
    }
    search = " ".join([row.version, row.status, row.notes, row.quantization, row.budget,
                       *row.deployed_on, "regression" if row.regressed else ""])
    return Row(row.version, lambda: release_cells(row, profile, latency_limit, scale),
               sort_values, search)


def release_cells(row: ReleaseOverview, profile: str | None, latency_limit: float,
                  scale: float = 1.0) -> list[Text | str]:
    here = profile is not None and profile in row.deployed_on
    version = Text()
    version.append("▲" if here else " ", style="bold cyan")
    version.append("!" if row.regressed else " ", style="bold red")
    version.append(" ")
    version.append(row.version, style="bold red" if row.regressed else "bold")
    if row.run_status is not None and row.run_status != "ok" and row.p50_ms is None:
        p50 = Text(row.run_status, style="red", justify="right")
    else:
        p50 = _num(fmt.figure(row.p50_ms, scale))
    cells: list[Text | str] = [
        version,
        fmt.status(row.status),
        fmt.budget(row.budget),
        p50,
        Text.assemble(fmt.pct_change(row.p50_change_pct, latency_limit), justify="right"),
        _num(fmt.figure(row.p90_ms, scale)),
        _num(fmt.mb(row.peak_rss_mb)),
        _num(fmt.accuracy(row.accuracy)),
        fmt.badges(row.deployed_on),
        Text(fmt.size(row.size_bytes), justify="right"),
        fmt.literal(row.quantization),
        fmt.short_time(row.created_at)[:10],
        fmt.literal(fmt.first_line(row.notes, 40)),
    ]
    return cells


def latency_regressed(row: ReleaseOverview | None) -> bool:
    """Whether the table marks ``row`` ``!`` for its p50: what a bisect can look into."""
    return row is not None and "p50_ms" in row.regressed_metrics


def row_info(row: ReleaseOverview | None, profile: str | None,
             formats: tuple[str, ...] = ()) -> Text:
    """Two lines about the highlighted release: what it is, then what is wrong with it."""
    if row is None:
        return Text("")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(row.ref, style="bold")
    text.append(f"  {row.format} · {fmt.size(row.size_bytes)} · {row.quantization} · "
                f"{row.params:,} params · {fmt.short_time(row.created_at)}", style="dim")
    if row.notes.strip():
        text.append("  ")
        text.append(fmt.first_line(row.notes, 80))
    text.append("\n")
    problems: list[tuple[str, str]] = [(r, "bold red") for r in row.regressions]
    problems += [(r.message(), "red") for r in row.budget_results if r.status == "fail"]
    if row.run_status is None and formats and row.format not in formats:
        problems.append((f"{profile} runs {', '.join(formats)} models only", "dim"))
    elif row.run_status is None:
        problems.append((f"not measured on {profile}: press b to benchmark it", "yellow"))
    elif row.run_status != "ok":
        problems.append((f"last run {row.run_status}: {row.run_error or ''}", "red"))
    if not row.measured and row.other_runs:
        problems.append((f"{row.conditions_note()}: press b to benchmark it", "yellow"))
    if not problems and row.run_status == "ok":
        base = f" · Δ vs {row.baseline_version}" if row.baseline_version else ""
        problems.append((f"within every budget set on {profile}{base}" if row.budget == "pass"
                         else f"budget: {row.budget}{base}", "green" if row.budget == "pass"
                         else "dim"))
    if row.newer_runs:
        problems.append((f"{row.conditions_note()} (enter shows them)", "dim"))
    if latency_regressed(row) and len(problems) == 1:
        problems.append(("B bisects: which release made it slower", "dim"))
    for i, (message, style) in enumerate(problems[:2]):
        if i:
            text.append(" · ")
        text.append(message, style=style)
    if len(problems) > 2:
        text.append(f" (+{len(problems) - 2} more: enter for details)", style="dim")
    return text


NEEDS_RELEASES = frozenset({
    "open", "compare", "sort", "reverse_sort", "filter", "trends", "choose_profile",
    "set_status", "deploy", "rollback", "bench", "focus_models", "focus_releases", "bisect",
})



class ReleasesScreen(ReviewActions, Screen[None]):
    """Model list, profile selector, sortable filterable release table."""

    CSS_PATH = "releases.tcss"
    HELP_TITLE = "releases"
    HELP_WHEN: ClassVar[dict[str, str]] = {"bisect": "not on the highlighted one"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.quit", "Quit", tooltip="Quit (asks first while a measurement runs)"),
        Binding("slash", "filter", "Filter", key_display="/",
                tooltip="Filter the releases (version, status, notes, profile, 'regression')"),
        Binding("enter", "open", "Open", tooltip="Open the highlighted release"),
        Binding("s", "sort", "Sort", show=False,
                tooltip="Sort by the next column (or click a header)"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
        Binding("p", "choose_profile", "Profile", show=False,
                tooltip="Choose the device profile the figures are shown for"),
        Binding("c", "compare", "Compare",
                tooltip="Compare the highlighted release with its parent"),
        Binding("h", "focus_models", "Models pane", show=False),
        Binding("l", "focus_releases", "Releases pane", show=False),
        Binding("r", "reload", "Refresh", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        *ReviewActions.ACTION_BINDINGS,
        Binding("B", "bisect", "Bisect", tooltip="Which release made it slower? On a release "
                "marked ! for p50: bisect from the last good one, side by side, in the "
                "background; ctrl+x stops it"),
        Binding("t", "trends", "Trends", tooltip="Charts of latency, memory and accuracy"),
        Binding("e", "audit", "Audit", tooltip="The audit log: every change, filterable"),
    ]

    def __init__(self, model: str | None = None, profile: str | None = None) -> None:
        super().__init__()
        self.model: str | None = model
        self.profile: str | None = profile
        self.table_data: ReleaseTable | None = None
        self._rows_by_version: dict[str, ReleaseOverview] = {}
        self._loading_profiles = False
        self._latency_unit = "ms"
        self._bisectable = False

    @property
    def dt_app(self) -> DevtrackApp:
        return self._app

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            with Vertical(id="models-pane"):
                yield Static("Models", classes="pane-title")
                yield ModelList(id="models")
            with Vertical(id="releases-pane"):
                with Horizontal(id="toolbar"):
                    yield Static("Profile", id="profile-label")
                    yield Select[str]([], id="profile", compact=True, allow_blank=True,
                                      prompt="(no profile)")
                    yield Static("", id="table-summary", markup=False)
                yield FilterBar(id="filter")
                yield NavTable(id="releases")
                yield EmptyState(id="empty")
                yield Static("", id="row-info", markup=False)
        yield BenchBar()
        yield AppFooter()

    def on_mount(self) -> None:
        self.query_one(NavTable).set_columns(release_columns())
        names = profile_names(self.dt_app.ws)
        self._loading_profiles = True
        select = self.query_one("#profile", Select)
        select.set_options([(name, name) for name in names])
        self.dt_app.data_signal.subscribe(self, self.on_data_changed)
        self.reload()
        self.query_one(NavTable).focus()

    # -- loading ----------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the models and the current model's releases (cursor stays put)."""
        models = list_model_overview(self.dt_app.ws)
        names = [m.name for m in models]
        if self.model not in names:
            self.model = names[0] if names else None
        self.query_one(ModelList).set_models(models, self.model)
        empty = not any(m.releases for m in models)
        self.query_one("#empty").display = empty
        for selector in ("#toolbar", "#releases", "#row-info"):
            self.query_one(selector).display = not empty
        self.set_class(empty, "-empty")  # the models pane hides (CSS), as it does when
        self.set_class(len(models) == 1, "-one-model")  # there is one model to show
        self.refresh_bindings()
        if empty:
            self.table_data = None
            self.refresh_bindings()
            return
        self.load_model(self.model)

    def load_model(self, model: str | None) -> None:
        self.model = model
        if model is None:
            self.table_data = None
            self.query_one(NavTable).set_rows([])
            return
        select = self.query_one("#profile", Select)
        options = [value for _, value in select._options if isinstance(value, str)]
        if self.profile is None or self.profile not in options:
            self.profile = default_profile(self.dt_app.ws, model, options)
        if self.profile is not None and select.value != self.profile:
            self._loading_profiles = True
            select.value = self.profile
        had_table = self.table_data is not None
        self.table_data = release_overview(self.dt_app.ws, model, self.profile)
        self._show_table(self.table_data)
        if not had_table:
            self.refresh_bindings()  # the release actions appear in the footer

    def _show_table(self, data: ReleaseTable) -> None:
        loaded = None
        if data.profile is not None:
            from devtrack.overview import load_profile_or_error

            loaded, _ = load_profile_or_error(self.dt_app.ws, data.profile)
        latency_limit, _, _ = regression_limits(loaded)
        self._rows_by_version = {r.version: r for r in data.rows}
        table = self.query_one(NavTable)
        unit, scale = latency_unit([r.p90_ms for r in data.rows])
        if unit != self._latency_unit:
            self._latency_unit = unit
            table.set_columns(release_columns(unit))
        table.set_rows([release_row(r, data.profile, latency_limit, scale) for r in data.rows])
        summary = Text()
        summary.append(data.model, style="bold")
        measured = sum(1 for r in data.rows if r.p50_ms is not None)
        count = len(data.rows)
        summary.append(f" · {count} release{'s' if count != 1 else ''}")
        if measured < count:
            summary.append(f", {measured} measured")
        regressed = sum(1 for r in data.rows if r.regressed)
        if regressed:
            summary.append(f" · {regressed} regressed", style="bold red")
        if data.profile_error:
            summary.append(f" · {data.profile_error}", style="red")
        elif data.budgets:
            summary.append(" · budgets " + fmt.budget_line(data.budgets), style="dim")
        self.query_one("#table-summary", Static).update(summary)
        self._update_row_info()

    def on_data_changed(self, change: DataChanged) -> None:
        self.reload()

    # -- events -----------------------------------------------------------------------------

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_list.id == "models" and event.option.id != self.model:
            self.load_model(event.option.id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id == "models":
            self.query_one(NavTable).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "profile":
            return
        if self._loading_profiles:
            self._loading_profiles = False
            if event.value == self.profile:
                return
        if not isinstance(event.value, str):  # the blank entry: figures need a profile
            if self.profile is not None:
                self.query_one("#profile", Select).value = self.profile
            return
        if event.value != self.profile:
            self.profile = event.value
            self.load_model(self.model)
            self.query_one(NavTable).focus()

    def on_nav_table_row_highlighted(self, event: NavTable.RowHighlighted) -> None:
        self._update_row_info()

    def on_nav_table_row_selected(self, event: NavTable.RowSelected) -> None:
        self.action_open()

    def on_filter_bar_updated(self, event: FilterBar.Updated) -> None:
        self.query_one(NavTable).apply_filter(event.text)
        self._update_row_info()

    def on_filter_bar_closed(self, event: FilterBar.Closed) -> None:
        self.query_one(NavTable).focus()

    def _update_row_info(self) -> None:
        table = self.query_one(NavTable)
        formats = self.table_data.formats if self.table_data is not None else ()
        info = row_info(self.current_row, self.profile, formats)
        if table.row_count == 0 and table.all_rows and table.filter_text.strip():
            info = Text.assemble((f"No release matches {table.filter_text.strip()!r}", "yellow"),
                                 ("  esc clears the filter", "dim"))
        self.query_one("#row-info", Static).update(info)
        bisectable = latency_regressed(self.current_row)
        if bisectable != self._bisectable:  # the footer offers B only on such a row
            self._bisectable = bisectable
            self.refresh_bindings()

    @property
    def current_row(self) -> ReleaseOverview | None:
        key = self.query_one(NavTable).current_key
        return self._rows_by_version.get(key) if key is not None else None

    # -- ReviewActions hooks -------------------------------------------------------------------

    def review_target(self) -> Target | None:
        row = self.current_row
        if row is None:
            return None
        return Target(model=row.model, version=row.version, format=row.format,
                      profile=self.profile, status=row.status)

    # -- actions ----------------------------------------------------------------------------

    def action_filter(self) -> None:
        if self.table_data is None:
            return
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.value or bar.display:
            bar.action_clear_and_close()

    def action_open(self) -> None:
        row = self.current_row
        if row is None:
            return
        self.app.push_screen(self.dt_app.release_screen(row.ref, self.profile))

    def action_sort(self) -> None:
        label = self.query_one(NavTable).cycle_sort()
        self.notify(f"Sorted by {label}", timeout=1.5)

    def action_reverse_sort(self) -> None:
        table = self.query_one(NavTable)
        table.sort_by(table.sort_key or "version", not table.sort_reverse)

    def action_choose_profile(self) -> None:
        select = self.query_one("#profile", Select)
        select.focus()
        select.expanded = True

    def action_focus_models(self) -> None:
        self.query_one(ModelList).focus()

    def action_focus_releases(self) -> None:
        self.query_one(NavTable).focus()

    def action_reload(self) -> None:
        self.reload()
        self.notify("Reloaded", timeout=1)

    def action_compare(self) -> None:
        row = self.current_row
        if row is None:
            return
        from devtrack.tui.screens.compare import CompareScreen

        baseline = compare_baseline(self.dt_app.ws, row.model, row.version)
        self.app.push_screen(CompareScreen(row.model, baseline, row.version, self.profile))

    def action_bisect(self) -> None:
        """Bisect the highlighted release (marked ! for p50) in the background, after a
        dialog that shows the plan and lets the good release be changed."""
        from devtrack.bisecting import plan_bisect, suggest_good
        from devtrack.tui.bisect_job import BisectRequest, start_bisect
        from devtrack.tui.screens.bisect_dialog import BisectDialog

        row, data, profile = self.current_row, self.table_data, self.profile
        if row is None or data is None or profile is None:
            return
        if not latency_regressed(row):
            self.notify(f"{row.ref} is not marked ! for p50 on {profile}: bisect looks for "
                        "the release that made latency worse.", severity="warning",
                        markup=False)
            return
        if self.dt_app.bench_running or self.dt_app.measuring.locked():
            self.notify("A measurement is already running; bisect when it has finished "
                        "(ctrl+x cancels it).", severity="warning")
            return
        versions = [r.version for r in data.rows]
        earlier = [r.version for r in data.rows[:versions.index(row.version)]
                   if data.runs_format(r.format)]
        if not earlier:
            self.notify(f"No release before {row.ref} runs on {profile}: nothing to bisect.",
                        severity="warning", markup=False)
            return
        ws, model, bad = self.dt_app.ws, row.model, row.version

        def done(request: BisectRequest | None) -> None:
            if request is not None:
                start_bisect(self.dt_app, request)

        self.app.push_screen(BisectDialog(
            model, bad, profile, earlier, suggest_good(data.rows, bad, profile, data.runs_format),
            lambda good: plan_bisect(ws, model, good, bad, profile)), done)

    def action_trends(self) -> None:
        if self.model is None:
            return
        from devtrack.tui.screens.trends import TrendsScreen

        self.app.push_screen(TrendsScreen(self.model, self.profile))

    def action_audit(self) -> None:
        from devtrack.tui.screens.audit import AuditScreen

        self.app.push_screen(AuditScreen(model=self.model))

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Audit log", "Every change, hash-chained (e)", self.action_audit)
        if self.model is not None:
            yield SystemCommand(f"Trends of {self.model}", "Latency, memory and accuracy "
                                "across releases (t)", self.action_trends)
        row = self.current_row
        if row is not None:
            yield SystemCommand(f"Open {row.ref}", "Release detail (enter)", self.action_open)
            yield SystemCommand(f"Compare {row.ref}", "With the release before it (c)",
                                self.action_compare)
        if latency_regressed(row) and row is not None:
            yield SystemCommand(f"Bisect {row.ref}", "Which release made it slower, side by "
                                "side in the background (B)", self.action_bisect)
        yield from self.review_palette_commands()
        yield SystemCommand("Sort by the next column", "s; S reverses", self.action_sort)
        yield SystemCommand("Refresh", "Re-read the workspace (r)", self.action_reload)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Release actions are hidden while the workspace has no releases."""
        if action in NEEDS_RELEASES and self.table_data is None:
            return False
        if action == "bisect" and not latency_regressed(self.current_row):
            return False  # offered on a release marked ! for p50 only
        if action == "focus_models" and not all(p.display for p in self.query("#models-pane")):
            return False  # hidden: only one model
        return super().check_action(action, parameters)
