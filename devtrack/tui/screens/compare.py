"""Two releases side by side: what changed, and every metric's delta with its verdict."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from devtrack.core.policy import DEFAULT_LATENCY_REGRESSION_PCT
from devtrack.core.units import latency_unit
from devtrack.errors import DevtrackError
from devtrack.overview import release_versions
from devtrack.tui import format as fmt
from devtrack.tui.widgets.app_footer import AppFooter
from devtrack.tui.widgets.bench_bar import BenchBar

if TYPE_CHECKING:
    from devtrack.comparison import Comparison, ProfileComparison
    from devtrack.core.explanation import Explanation
    from devtrack.tui.app import DevtrackApp

VERDICT_STYLES = {"slower": "bold red", "faster": "bold green", "unchanged": "dim"}
ALL_PROFILES = "*"


def _value(value: Any) -> Text:
    if value is None:
        return Text("-", style="dim")
    if isinstance(value, dict):
        return fmt.literal(", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                     for k, v in value.items()) or "-")
    if isinstance(value, list):
        return fmt.literal(", ".join(str(v) for v in value) or "-")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, int):
        return Text(f"{value:,}")
    text = str(value)
    return fmt.literal(text[:12] if len(text) == 40 and text.isalnum() else text)


def changes_table(comparison: Comparison) -> RenderableType:
    diff = comparison.diff
    table = Table(box=None, pad_edge=False, header_style="dim", expand=True)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column(f"A {diff.a}", ratio=1, overflow="fold")
    table.add_column(f"B {diff.b}", ratio=1, overflow="fold")
    size = Text(f"{fmt.size(diff.size_b)}")
    if diff.size_rel is not None:  # no profile's limit applies to the file: the default's
        size.append(f"  ({diff.size_rel * 100:+.1f}%)",
                    style=_change_style(diff.size_rel * 100, DEFAULT_LATENCY_REGRESSION_PCT))
    table.add_row("size", Text(fmt.size(diff.size_a)), size)
    table.add_row("same bytes", "", Text("yes: identical artifact", style="yellow")
                  if diff.same_artifact else Text("no"))
    for change in diff.fields:
        if change.changed:
            table.add_row(change.name, _value(change.a), Text.assemble(_value(change.b),
                                                                       style="bold"))
    unchanged = [f.name for f in diff.fields if not f.changed]
    parts: list[RenderableType] = [table]
    if unchanged:
        parts.append(Text("unchanged: " + ", ".join(unchanged), style="dim"))
    if not diff.config.empty:
        config = Table(box=None, pad_edge=False, header_style="dim", expand=True)
        config.add_column("config key", no_wrap=True)
        config.add_column("A", ratio=1, overflow="fold")
        config.add_column("B", ratio=1, overflow="fold")
        for key, value in diff.config.added.items():
            config.add_row(Text(f"+ {key}", style="green"), "", fmt.literal(value))
        for key, value in diff.config.removed.items():
            config.add_row(Text(f"- {key}", style="red"), fmt.literal(value), "")
        for key, (a, b) in diff.config.changed.items():
            config.add_row(Text(f"~ {key}", style="yellow"), fmt.literal(a), fmt.literal(b))
        parts.append(config)
    else:
        parts.append(Text("config: no change", style="dim"))
    ops = diff.ops
    if not ops.empty:
        line = Text(f"ops: {ops.nodes_a} → {ops.nodes_b} nodes; ")
        line.append_text(fmt.literal(", ".join(
            [f"+{k}×{v}" for k, v in ops.added.items()]
            + [f"-{k}×{v}" for k, v in ops.removed.items()]
            + [f"{k} {a}→{b}" for k, (a, b) in ops.changed.items()])))
        parts.append(line)
    else:
        parts.append(Text(f"ops: no change ({ops.nodes_a} nodes)", style="dim"))
    return Group(*parts)


def _change_style(pct: float, limit_pct: float) -> str:
    """Red beyond the limit, green beyond it the other way, plain within it."""
    return "red" if pct > limit_pct else "green" if pct < -limit_pct else ""


def _rel_pct(a: float, b: float) -> float:
    if a:
        return (b / a - 1.0) * 100.0
    return float("inf") if b > 0 else 0.0


def _pct(rel: float | None, limit_pct: float) -> Text:
    if rel is None:
        return Text("-", style="dim")
    return Text(f"{rel * 100:+.1f}%", style=_change_style(rel * 100, limit_pct))


def profile_table(p: ProfileComparison) -> RenderableType:
    title = Text(f" {p.profile} ", style="bold reverse")
    title.append(f"  both measured under the same conditions · changes beyond "
                 f"±{p.threshold_pct:g}% coloured", style="dim")
    table = Table(box=None, pad_edge=False, header_style="dim", expand=True)
    table.add_column("metric")
    for column in ("A", "B", "change"):
        table.add_column(column, justify="right")
    table.add_column("verdict")
    details: list[Text] = []
    lat = p.latency
    if lat is not None:
        verdict = Text(lat.verdict, style=VERDICT_STYLES.get(lat.verdict, ""))
        detail = Text(f"  latency: ratio {lat.ratio:.3f}, 95% CI {lat.ci_low:.3f}–"
                      f"{lat.ci_high:.3f}", style="dim")
        if lat.p_value is not None:
            detail.append(f", Mann-Whitney p={lat.p_value:.3g}")
        detail.append(f", noise threshold {lat.threshold_pct:g}%")
        if lat.indicative:
            detail.append(" (stored runs taken apart: indicative; R re-measures)",
                          style="yellow")
        else:
            detail.append(f" (interleaved re-run, {lat.n} repeats)", style="cyan")
        details.append(detail)
        unit, scale = latency_unit([lat.a_ms, lat.b_ms])
        table.add_row(f"p50 latency {unit}", fmt.figure(lat.a_ms, scale),
                      fmt.figure(lat.b_ms, scale),
                      Text(f"{lat.pct:+.1f}%"), verdict)
    for m in p.memory:
        label = {"peak_rss_mb": "peak RSS MB", "load_delta_mb": "load Δ MB",
                 "init_ms": "init ms"}.get(m.metric, m.metric)
        render = fmt.ms if m.metric.endswith("_ms") else fmt.mb
        table.add_row(label, render(m.a), render(m.b), _pct(m.rel, p.threshold_pct), "")
    acc = p.accuracy
    if acc is not None:
        details.append(Text(f"  accuracy: Δ {acc.diff:+.4f}, 95% CI {acc.ci_low:+.4f}–"
                            f"{acc.ci_high:+.4f}, {acc.method}, n={acc.n}", style="dim"))
        table.add_row(Text.assemble("accuracy (", fmt.literal(acc.dataset), ")"),
                      fmt.accuracy(acc.a), fmt.accuracy(acc.b),
                      Text(f"{acc.diff * 100:+.2f} pt"), "")
    parts: list[RenderableType] = [title, table, *details]
    if p.ops:
        ops = Table(box=None, pad_edge=False, header_style="dim")
        for column in ("op (time per inference)", "A ms", "B ms", "Δ ms"):
            ops.add_column(column, justify="left" if column.startswith("op") else "right")
        for o in p.ops:
            ops.add_row(fmt.literal(o.op), f"{o.a_ms:.4f}", f"{o.b_ms:.4f}",
                        Text(f"{o.b_ms - o.a_ms:+.4f}", style=_change_style(
                            _rel_pct(o.a_ms, o.b_ms), p.threshold_pct)))
        parts.append(ops)
    parts.extend(Text(f"note: {n}", style="yellow") for n in p.notes)
    parts.append(Text(""))
    return Group(*parts)


def comparison_view(comparison: Comparison) -> RenderableType:
    parts: list[RenderableType] = [Text("What changed", style="bold reverse"),
                                   changes_table(comparison), Text("")]
    parts.append(Text("Metrics (B against A)", style="bold reverse"))
    if not comparison.profiles and not comparison.not_comparable:
        parts.append(Text("Neither release was measured on a common profile: press b on each "
                          "to benchmark, or R to measure both side by side.", style="yellow"))
    for p in comparison.profiles:
        parts.append(profile_table(p))
    for name, why in comparison.not_comparable.items():
        parts.append(Text.assemble((f" {name} ", "bold reverse"), "  ", (why, "yellow")))
    for note in comparison.notes:
        parts.append(Text(f"\n{note}", style="dim"))
    return Group(*parts)


EXPLAIN_TOP = 5


def explanation_view(e: Explanation) -> RenderableType:
    """The top contributors to the latency change, under the comparison (``x``)."""
    parts: list[RenderableType] = [
        Text(f"Why (per operator, side by side on {e.profile})", style="bold reverse"),
        Text(e.headline)]
    if e.nodes:
        table = Table(box=None, pad_edge=False, show_edge=False)
        for name, justify in (("node", "left"), ("op", "left"), ("status", "left"),
                              ("A ms", "right"), ("B ms", "right"), ("Δ ms", "right"),
                              ("share", "right")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for c in e.top(EXPLAIN_TOP):
            table.add_row(Text(c.name), Text(c.op), Text(c.status),
                          "-" if c.a_ms is None else f"{c.a_ms:.4f}",
                          "-" if c.b_ms is None else f"{c.b_ms:.4f}", f"{c.delta_ms:+.4f}",
                          "-" if c.share is None else f"{c.share * 100:.0f}%")
        parts.append(table)
    return Group(*parts)


def run_explain(root: Path, model: str, a: str, b: str, profile: str) -> Explanation:
    """``devtrack explain`` in a worker thread: its own connection to the workspace."""
    from devtrack.explaining import explain_releases
    from devtrack.workspace import open_workspace

    with open_workspace(root) as ws:
        return explain_releases(ws, f"{model}@{a}", f"{model}@{b}", profile)


def run_compare(root: Path, model: str, a: str, b: str, profile: str | None, rerun: bool,
                progress: Any = None) -> Comparison:
    """``devtrack compare`` in a worker thread: its own connection to the workspace."""
    from devtrack.comparison import compare_releases
    from devtrack.workspace import open_workspace

    with open_workspace(root) as ws:
        return compare_releases(ws, f"{model}@{a}", f"{model}@{b}",
                                profiles=[profile] if profile else None, rerun=rerun,
                                progress=progress)


class CompareScreen(Screen[None]):
    """Pick baseline A and candidate B (and a profile); ``R`` re-measures them side by side."""

    CSS_PATH = "compare.tcss"
    HELP_TITLE = "compare"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("w", "swap", "Swap A/B"),
        Binding("R", "rerun", "Re-measure side by side"),
        Binding("x", "explain", "Explain per operator", show=False),
        Binding("j", "scroll_down", "Scroll down", show=False),
        Binding("k", "scroll_up", "Scroll up", show=False),
    ]

    def __init__(self, model: str, baseline: str | None, candidate: str | None,
                 profile: str | None = None) -> None:
        super().__init__()
        self.model = model
        self.baseline = baseline
        self.candidate = candidate
        self.profile = profile
        self.comparison: Comparison | None = None
        self.explanation: Explanation | None = None
        self._quiet = 0

    @property
    def dt_app(self) -> DevtrackApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        versions = release_versions(self.dt_app.ws, self.model)
        options = [(v, v) for v in reversed(versions)]
        yield Header()
        with Horizontal(id="compare-bar"):
            yield Static("A", classes="bar-label")
            yield Select[str](options, id="compare-a", compact=True, prompt="baseline",
                              value=self.baseline if self.baseline in versions else Select.NULL)
            yield Static("B", classes="bar-label")
            yield Select[str](options, id="compare-b", compact=True, prompt="candidate",
                              value=self.candidate if self.candidate in versions
                              else Select.NULL)
            yield Static("on", classes="bar-label")
            from devtrack.overview import profile_names

            profiles = [("every profile", ALL_PROFILES)] + [
                (p, p) for p in profile_names(self.dt_app.ws)]
            yield Select[str](profiles, id="compare-profile", compact=True, allow_blank=False,
                              value=ALL_PROFILES)
        yield Static("", id="compare-status", markup=False)
        with VerticalScroll(id="compare-scroll"):
            yield Static("", id="compare-body", markup=False)
        yield BenchBar()
        yield AppFooter()

    def on_mount(self) -> None:
        self.title = f"Compare {self.model}"
        self.query_one("#compare-scroll").focus()
        self.refresh_comparison()

    def on_select_changed(self, event: Select.Changed) -> None:
        value = event.value if isinstance(event.value, str) else None
        if event.select.id == "compare-a":
            self.baseline = value
        elif event.select.id == "compare-b":
            self.candidate = value
        elif event.select.id == "compare-profile":
            self.profile = None if value == ALL_PROFILES else value
        if self._quiet:
            self._quiet -= 1
            return
        self.refresh_comparison()

    def _status(self, text: Text | str) -> None:
        self.query_one("#compare-status", Static).update(text)

    def refresh_comparison(self, rerun: bool = False) -> None:
        if not self.baseline or not self.candidate:
            self._status(Text("Pick a baseline (A) and a candidate (B).", style="yellow"))
            self.query_one("#compare-body", Static).update("")
            return
        if self.baseline == self.candidate:
            self._status(Text("A and B are the same release: pick two different ones.",
                              style="yellow"))
            self.query_one("#compare-body", Static).update("")
            return
        if rerun and self.dt_app.measuring.locked():
            self.notify("A measurement is already running; re-measure when it has finished.",
                        severity="warning")
            return
        what = "Re-measuring side by side, interleaved…" if rerun else "Comparing…"
        self._status(Text(f"{what} {self.model}@{self.candidate} against {self.baseline}",
                          style="dim"))
        self._compare(self.baseline, self.candidate, self.profile, rerun)

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def _compare(self, a: str, b: str, profile: str | None, rerun: bool) -> Comparison:
        worker: Worker[Comparison] = get_current_worker()

        def progress(message: str) -> None:
            if not worker.is_cancelled:
                self.app.call_from_thread(self._status, Text(f"⏵ {message}", style="cyan"))

        if not rerun:
            return run_compare(self.dt_app.root, self.model, a, b, profile, rerun, None)
        from devtrack.pairing import stop_when

        what = f"Re-measuring {self.model}@{b} against {a} side by side" + (
            f" on {profile}" if profile else "")
        # Quitting with "Stop and quit" stops the pair's worker (nothing is stored, as on
        # Ctrl-C); leaving this screen does not: the comparison is stored when it ends.
        with self.dt_app.measurement(what), stop_when(self.dt_app.stop_requested.is_set):
            return run_compare(self.dt_app.root, self.model, a, b, profile, rerun, progress)

    def _render_body(self) -> None:
        if self.comparison is None:
            return
        parts = [comparison_view(self.comparison)]
        e = self.explanation
        if e is not None and (e.a, e.b) == (self.comparison.a.ref, self.comparison.b.ref):
            parts += [Text(""), explanation_view(e)]
        self.query_one("#compare-body", Static).update(Group(*parts))

    def _explain_profile(self) -> str | None:
        if self.profile:
            return self.profile
        if self.comparison is not None and self.comparison.profiles:
            return self.comparison.profiles[0].profile
        return None

    def action_explain(self) -> None:
        """Measure both per operator side by side and show the top contributors."""
        profile = self._explain_profile()
        if not self.baseline or not self.candidate or self.baseline == self.candidate:
            self.notify("Pick two different releases to explain.", severity="warning")
            return
        if profile is None:
            self.notify("Pick a profile to explain on.", severity="warning")
            return
        if self.dt_app.measuring.locked():
            self.notify("A measurement is already running; explain when it has finished.",
                        severity="warning")
            return
        self._status(Text(f"Explaining {self.model}@{self.candidate} against "
                          f"{self.baseline} on {profile}, per operator…", style="dim"))
        self._explain(self.baseline, self.candidate, profile)

    @work(thread=True, exclusive=True, group="explain", exit_on_error=False)
    def _explain(self, a: str, b: str, profile: str) -> Explanation:
        from devtrack.pairing import stop_when

        what = f"Explaining {self.model}@{b} against {a} on {profile}"
        with self.dt_app.measurement(what), stop_when(self.dt_app.stop_requested.is_set):
            return run_explain(self.dt_app.root, self.model, a, b, profile)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "explain":
            if event.state == WorkerState.SUCCESS:
                self.explanation = event.worker.result
                self._status(Text("Explained: top contributors below", style="dim"))
                self._render_body()
                if self.explanation is not None and self.explanation.source is not None:
                    self.dt_app.data_changed("explain", self.explanation.b)  # recorded
            elif event.state == WorkerState.ERROR:
                error = event.worker.error
                message = str(error) if isinstance(error, DevtrackError) else repr(error)
                self._status(Text(message, style="bold red"))
            return
        if event.worker.group != "compare":
            return
        if event.state == WorkerState.SUCCESS:
            self.comparison = event.worker.result
            assert self.comparison is not None
            self._status(Text.assemble(
                ("A ", "dim"), (self.comparison.a.ref, "bold"), ("  →  B ", "dim"),
                (self.comparison.b.ref, "bold"),
                ("   (interleaved re-run)" if self.comparison.rerun else
                 "   (stored runs; R re-measures both side by side)", "dim")))
            self._render_body()
            if self.comparison.rerun:
                self.dt_app.data_changed("compare", self.comparison.b.ref)
        elif event.state == WorkerState.ERROR:
            error = event.worker.error
            message = str(error) if isinstance(error, DevtrackError) else repr(error)
            self._status(Text(message, style="bold red"))

    def action_back(self) -> None:
        self.workers.cancel_group(self, "compare")
        self.workers.cancel_group(self, "explain")
        self.app.pop_screen()

    def action_swap(self) -> None:
        if not self.baseline or not self.candidate:
            return
        self.baseline, self.candidate = self.candidate, self.baseline
        self._quiet = 2
        self.query_one("#compare-a", Select).value = self.baseline
        self.query_one("#compare-b", Select).value = self.candidate
        self.refresh_comparison()

    def action_rerun(self) -> None:
        self.refresh_comparison(rerun=True)

    def action_scroll_down(self) -> None:
        self.query_one("#compare-scroll", VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one("#compare-scroll", VerticalScroll).scroll_up()

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Swap A and B", "w", self.action_swap)
        yield SystemCommand("Re-measure side by side", "Interleaved, in one worker (R)",
                            self.action_rerun)
        yield SystemCommand("Explain per operator", "Top contributors to the change (x)",
                            self.action_explain)
        yield SystemCommand("Back", "esc", self.action_back)
