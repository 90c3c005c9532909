"""One release in full: provenance, notes, model summary, per-profile results, audit events."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from devtrack.core.units import latency_unit
from devtrack.errors import DevtrackError
from devtrack.overview import (
    ProfileResult,
    ReleaseDetail,
    budget_verdict,
    compare_baseline,
    release_detail,
)
from devtrack.tui import format as fmt
from devtrack.tui.messages import DataChanged
from devtrack.tui.review_actions import ReviewActions, Target
from devtrack.tui.widgets.app_footer import AppFooter
from devtrack.tui.widgets.bench_bar import BenchBar

if TYPE_CHECKING:
    from devtrack.tui.app import DevtrackApp


LINEAGE_SHOWN = 6
SECTIONS = ("provenance", "notes", "model", "results", "deployments", "events")


KEY_WIDTH = 15


def kv_table(rows: Iterable[tuple[str, Text | str]]) -> Text:
    """``key  value`` lines (plain Text: a rich Table per block costs ~10x to draw)."""
    text = Text()
    for i, (key, value) in enumerate(rows):
        if i:
            text.append("\n")
        text.append(key.ljust(KEY_WIDTH), style="bold")
        text.append_text(value if isinstance(value, Text) else Text(value))
    return text


def section(title: str, *parts: RenderableType) -> Group:
    return Group(Text(title, style="bold reverse"), *parts, Text(""))


def heading(detail: ReleaseDetail) -> Text:
    rel = detail.release
    text = Text()
    text.append(rel.ref, style="bold")
    text.append("  ")
    text.append_text(fmt.status(rel.status))
    live = [p.profile for p in detail.profiles if p.deployed]
    if live:
        text.append("  deployed on ")
        text.append_text(fmt.badges(live))
    return text


def provenance(detail: ReleaseDetail) -> Group:
    rel = detail.release
    commit: Text = Text("-")
    if rel.git_commit:
        commit = Text(rel.git_commit[:12])
        if rel.git_dirty:
            commit.append(" (dirty tree: uncommitted changes)", style="yellow")
    chain = [rel.version, *detail.lineage[:LINEAGE_SHOWN]]
    lineage = Text(" ← ".join(chain) if detail.lineage else "-")
    if len(detail.lineage) > LINEAGE_SHOWN:
        lineage.append(f" ← … {len(detail.lineage) - LINEAGE_SHOWN} more", style="dim")
    config = Text("-")
    if rel.config:
        config = Text(json.dumps(rel.config, indent=None, ensure_ascii=False, sort_keys=True))
    tags = ", ".join(f"{k}={v}" for k, v in rel.tags.items())
    rows = [
        ("artifact", Text(f"{rel.format}, {fmt.size(rel.size_bytes)}, sha256 "
                          f"{rel.sha256[:16]}…")),
        ("parent chain", lineage),
        ("children", fmt.literal(", ".join(detail.children) or "-")),
        ("same bytes as", fmt.literal(", ".join(rel.same_artifact_as) or "-")),
        ("source file", fmt.literal(rel.source_name or "-")),
        ("code commit", commit),
        ("data version", fmt.literal(rel.data_version or "-")),
        ("data sha256", Text((rel.data_sha256 or "-")[:16])),
        ("training run", fmt.literal(rel.run_id or "-")),
        ("config", config),
        ("tags", fmt.literal(tags or "-")),
        ("input specs", fmt.literal(", ".join(x.to_text() for x in rel.input_specs + rel.fills)
                                    or "-")),
        ("created", fmt.literal(f"{fmt.short_time(rel.created_at)} by {rel.created_by} on "
                                f"{rel.host} (devtrack {rel.devtrack_version})")),
    ]
    return section("Provenance", kv_table(rows))


def notes(detail: ReleaseDetail) -> Group:
    text = detail.release.notes.strip()
    body = fmt.literal(text) if text else Text("(no release notes: deploying needs them)",
                                               style="yellow")
    return section("Release notes", body)


def _shape(shape: list[Any] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def model_summary(detail: ReleaseDetail) -> Group:
    s = detail.release.summary
    io = Table(box=None, pad_edge=False, show_edge=False, header_style="dim")
    for column in ("", "name", "shape", "dtype"):
        io.add_column(column)
    for kind, tensors in (("in", s.inputs), ("out", s.outputs)):
        for tensor in tensors:
            io.add_row(kind, fmt.literal(tensor.name), fmt.literal(_shape(tensor.shape)),
                       tensor.dtype)
    ops = sorted(s.ops.items(), key=lambda kv: (-kv[1], kv[0]))
    top = ", ".join(f"{op}×{count}" for op, count in ops[:8])
    if len(ops) > 8:
        top += f", … {len(ops) - 8} more"
    rows = [
        ("params", Text(f"{s.params:,}")),
        ("weights", Text(", ".join(f"{k} {v:,}" for k, v in s.weight_dtypes.items()) or "-")),
        ("quantization", Text(s.quantization)),
        ("ops", fmt.literal(f"{sum(s.ops.values())} nodes: {top}" if ops else "-")),
        ("opset", fmt.literal(s.opset)),
        ("producer", fmt.literal(s.producer or "-")),
    ]
    return section("Model", kv_table(rows), io)


def _fidelity(fidelity: dict[str, Any] | None) -> Text:
    if not fidelity:
        return Text("-")
    parts = []
    for key, label in (("reference", "vs"), ("max_abs_err", "max abs err"),
                       ("mean_abs_err", "mean abs err"), ("cosine", "cosine"),
                       ("top1_agreement", "top-1 agreement")):
        value = fidelity.get(key)
        if value is None:
            continue
        parts.append(f"{label} {value:.4g}" if isinstance(value, float) else f"{label} {value}")
    return fmt.literal(" · ".join(parts) or json.dumps(fidelity, sort_keys=True))


def profile_block(result: ProfileResult) -> Group:
    title = Text()
    title.append(f" {result.profile} ", style="bold reverse")
    if result.deployed:
        title.append(" ▲ deployed here", style="bold cyan")
    verdict = budget_verdict(result.budget_results) if result.counted else "no run"
    title.append("  budget ")
    title.append_text(fmt.budget(verdict))
    title.append(f"  · {len(result.runs)} run{'s' if len(result.runs) != 1 else ''}",
                 style="dim")
    parts: list[RenderableType] = [title]
    run = result.counted
    if run is None:
        why = result.conditions_note() or "No successful run on this profile"
        parts.append(Text(f"{why[0].upper()}{why[1:]}: press b to benchmark.",
                          style="yellow"))
    else:
        rows: list[tuple[str, Text | str]] = []
        unit, scale = latency_unit([run["p99_ms"]])
        latency = Text(f"p50 {fmt.figure(run['p50_ms'], scale)} · p90 "
                       f"{fmt.figure(run['p90_ms'], scale)} · p99 "
                       f"{fmt.figure(run['p99_ms'], scale)} · mean "
                       f"{fmt.figure(run['mean_ms'], scale)} {unit}")
        if run.get("cv") is not None:
            latency.append(f" · CV {run['cv'] * 100:.1f}%")
        rows.append(("latency", latency))
        ci = ""
        if run.get("ci_low_ms") is not None and run.get("ci_high_ms") is not None:
            ci = (f" · 95% CI of p50 {fmt.figure(run['ci_low_ms'], scale)}–"
                  f"{fmt.figure(run['ci_high_ms'], scale)} {unit}")
        rows.append(("samples", Text(f"n={run['n'] or '-'}{ci} · stop: "
                                     f"{run.get('stop_reason') or '-'}")))
        rows.append(("phases", Text(f"import {fmt.ms(run['import_ms'])} · init "
                                    f"{fmt.ms(run['init_ms'])} · first "
                                    f"{fmt.ms(run['first_ms'])} · warm-up "
                                    f"{fmt.ms(run['warmup_ms'])} ms")))
        rows.append(("memory", Text(f"peak RSS {fmt.mb(run['peak_rss_mb'])} MB · load Δ "
                                    f"{fmt.mb(run['load_delta_mb'])} MB · baseline "
                                    f"{fmt.mb(run['baseline_rss_mb'])} MB")))
        evaluation = result.evaluation
        if evaluation is not None:
            acc = Text(f"{fmt.accuracy(evaluation.get('accuracy'))}")
            metrics = evaluation.get("metrics") or {}
            acc_ci = metrics.get("accuracy_ci")
            if isinstance(acc_ci, list) and len(acc_ci) == 2:
                acc.append(f" (95% CI {acc_ci[0]:.4f}–{acc_ci[1]:.4f})", style="dim")
            if isinstance(metrics.get("top5"), float):
                acc.append(f" · top-5 {metrics['top5']:.4f}")
            if isinstance(metrics.get("n"), int):
                acc.append(f" · n={metrics['n']}")
            if evaluation.get("dataset"):
                acc.append(" on ")
                acc.append_text(fmt.literal(evaluation["dataset"]))
            if evaluation.get("nonfinite"):
                acc.append("  NaN/Inf in outputs!", style="bold red")
            rows.append(("accuracy", acc))
            if evaluation.get("fidelity"):
                rows.append(("fidelity", _fidelity(evaluation.get("fidelity"))))
        else:
            rows.append(("accuracy", Text("not evaluated", style="dim")))
        rows.append(("runtime", fmt.literal(f"{run.get('runtime') or '-'} "
                                            f"{run.get('runtime_version') or ''} · run "
                                            f"#{run['run_id']} {fmt.short_time(run['finished_at'])}"
                                            f" by {run['actor']} on {run['host']}")))
        for budget in result.budget_results:
            style = {"pass": "green", "fail": "bold red"}.get(budget.status, "yellow")
            rows.append(("budget", Text(budget.message(), style=style)))
        for warning in run.get("warnings") or []:
            rows.append(("warning", Text(str(warning), style="yellow")))
        if result.conditions_note():
            rows.append(("note", Text(str(result.conditions_note()), style="yellow")))
        parts.append(kv_table(rows))
    failed = [r for r in result.runs if r["status"] != "ok"][:3]
    for bad in failed:
        line = Text(f"run #{bad['run_id']} {bad['status']} {fmt.short_time(bad['finished_at'])}: ",
                    style="red")
        line.append_text(fmt.literal(bad.get("error") or ""))
        parts.append(line)
    parts.append(Text(""))
    return Group(*parts)


def deployments(detail: ReleaseDetail) -> Group | None:
    """One line per deployment, its reason indented below: reasons are sentences, and a
    column narrow enough for 80 columns would break them a word per line."""
    if not detail.deployments:
        return None
    width = max(len(d["profile"]) for d in detail.deployments)
    lines: list[RenderableType] = []
    for d in detail.deployments:
        line = Text()
        line.append_text(fmt.literal(d["profile"].ljust(width)))
        line.append(f"  {d['kind']}{' (forced)' if d['forced'] else ''}  "
                    f"{fmt.short_time(d['deployed_at'])} → ")
        line.append(*(("live", "bold cyan") if d["ended_at"] is None
                      else (fmt.short_time(d["ended_at"]), "")))
        line.append("  by ", style="dim")
        line.append_text(fmt.literal(d["deployed_by"]))
        if d["replaced_version"]:
            line.append("  replaced ", style="dim")
            line.append_text(fmt.literal(d["replaced_version"]))
        lines.append(line)
        if d["reason"]:
            reason = fmt.literal(d["reason"])
            reason.stylize("italic")
            lines.append(Padding(reason, (0, 0, 0, width + 2)))
    return section("Deployments", Group(*lines))


def events(detail: ReleaseDetail) -> Group:
    table = Table(box=None, pad_edge=False, header_style="dim", expand=True)
    for column in ("#", "time", "actor", "kind", "reason", "details"):
        table.add_column(column, ratio={"reason": 3, "details": 2}.get(column),
                         overflow="fold" if column == "reason" else "ellipsis",
                         no_wrap=column == "details")
    for event in detail.events:
        payload = json.loads(event["payload"]) if event["payload"] else {}
        details = fmt.payload_details(payload)
        table.add_row(str(event["id"]), fmt.short_time(event["ts"]), fmt.literal(event["actor"]),
                      event["kind"], fmt.literal(event["reason"] or ""),
                      fmt.literal(fmt.first_line(details, 90)))
    if not detail.events:
        return section("Audit events", Text("none", style="dim"))
    return section("Audit events", table)


class ReleaseDetailScreen(ReviewActions, Screen[None]):
    """Scrollable detail of one release; the review actions work here too."""

    CSS_PATH = "release_detail.tcss"
    HELP_TITLE = "release detail"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),
        Binding("j", "scroll_down", "Scroll down", show=False),
        Binding("k", "scroll_up", "Scroll up", show=False),
        Binding("c", "compare", "Compare"),
        Binding("r", "reload", "Refresh", show=False),
        *ReviewActions.ACTION_BINDINGS,
    ]

    def __init__(self, ref: str, profile: str | None = None) -> None:
        super().__init__()
        self.ref = ref
        self.profile = profile
        self.detail: ReleaseDetail | None = None

    @property
    def dt_app(self) -> DevtrackApp:
        return self._app

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="detail-heading", markup=False)
        with VerticalScroll(id="detail-scroll"):
            for section in SECTIONS:  # one widget each: only what is on screen is drawn
                yield Static("", id=f"sec-{section}", classes="detail-section", markup=False)
        yield BenchBar()
        yield AppFooter()

    def on_mount(self) -> None:
        self.dt_app.data_signal.subscribe(self, self.on_data_changed)
        self.load()
        self.query_one("#detail-scroll").focus()

    def show(self, ref: str, profile: str | None) -> None:
        """Show another release in this (reused) screen."""
        self.ref, self.profile = ref, profile
        if self.is_mounted:
            self.load()
            scroll = self.query_one("#detail-scroll", VerticalScroll)
            scroll.scroll_home(animate=False)
            scroll.focus()

    def load(self) -> None:
        try:
            self.detail = release_detail(self.dt_app.ws, self.ref)
        except DevtrackError as exc:
            self.query_one("#sec-provenance", Static).update(Text(str(exc), style="red"))
            return
        detail = self.detail
        self.query_one("#detail-heading", Static).update(heading(detail))
        results: list[RenderableType] = [Text("Results per device profile", style="bold reverse")]
        if detail.profiles:
            ordered = sorted(detail.profiles, key=lambda p: (p.profile != self.profile,
                                                             p.profile))
            results.extend(profile_block(p) for p in ordered)
        else:
            results.append(Text("Not measured on any profile yet: press b to benchmark.\n",
                                style="yellow"))
        history = deployments(detail)
        content: dict[str, RenderableType] = {
            "provenance": provenance(detail), "notes": notes(detail),
            "model": model_summary(detail), "results": Group(*results),
            "deployments": history if history is not None else "",
            "events": events(detail),
        }
        for section in SECTIONS:
            widget = self.query_one(f"#sec-{section}", Static)
            widget.update(content[section])
            widget.display = bool(content[section])

    def on_data_changed(self, change: DataChanged) -> None:
        self.load()

    def review_target(self) -> Target | None:
        if self.detail is None:
            return None
        rel = self.detail.release
        return Target(rel.model, rel.version, rel.format, self.profile, rel.status)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll_down(self) -> None:
        self.query_one("#detail-scroll", VerticalScroll).scroll_down()

    def action_scroll_up(self) -> None:
        self.query_one("#detail-scroll", VerticalScroll).scroll_up()

    def action_reload(self) -> None:
        self.load()

    def action_compare(self) -> None:
        if self.detail is None:
            return
        from devtrack.tui.screens.compare import CompareScreen

        rel = self.detail.release
        baseline = compare_baseline(self.dt_app.ws, rel.model, rel.version)
        self.app.push_screen(CompareScreen(rel.model, baseline, rel.version, self.profile))

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(f"Compare {self.ref}", "With its parent (c)", self.action_compare)
        yield from self.review_palette_commands()
        yield SystemCommand("Back", "To the releases (esc)", self.action_back)
