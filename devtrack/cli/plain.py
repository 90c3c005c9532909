"""Plain-text helpers and the release list, free of Rich so ``devtrack releases`` starts fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devtrack.cli.box_table import Cell, Column, print_table, terminal_width
from devtrack.core.counting import NEWER_RUNS_NOTE
from devtrack.core.release import Release
from devtrack.core.units import format_number, format_size, latency_unit

if TYPE_CHECKING:
    from devtrack.overview import ReleaseTable

_STATUS_STYLES = {"approved": "green", "rejected": "red", "yanked": "red", "candidate": "yellow"}
_BUDGET_STYLES = {"pass": "green", "fail": "bold red", "missing": "yellow"}


def short_time(iso: str) -> str:
    return iso.replace("T", " ")[:16]


def first_line(text: str, width: int = 48) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def print_models(rows: list[dict[str, Any]]) -> None:
    print_table([Column("model"), Column("task"), Column("releases", "right"),
                 Column("latest")],
                [[row["model"], row["task"], str(row["releases"]), row["latest"] or "-"]
                 for row in rows], title="Models")


_NOTES_ROOM = 24  # below this, the params and created columns make way for the notes


def releases_table(releases: list[Release], one_model: bool = False,
                   width: int = 80) -> tuple[list[Column], list[list[Cell]]]:
    """One row per release; figures never shrink. On a narrow terminal the params and created
    columns are left out (``show`` has them) and the notes take what width is left."""
    columns = [Column("version" if one_model else "release"), Column("status"),
               Column("format", optional=True), Column("size", "right"),
               Column("quant", optional=True), Column("params", "right"), Column("created")]
    rows: list[list[Cell]] = [
        [rel.version if one_model else rel.ref, rel.status, rel.format,
         format_size(rel.size_bytes), rel.summary.quantization, f"{rel.summary.params:,}",
         rel.created_at[:10]] for rel in releases]
    widths = [max([len(c.header)] + [len(str(row[i])) for row in rows])
              for i, c in enumerate(columns)]
    keep = list(range(len(columns)))

    def notes_room() -> int:
        return width - sum(widths[i] for i in keep) - 3 * (len(keep) + 1) - 1

    for optional in (6, 5):  # created, then params
        if notes_room() < _NOTES_ROOM:
            keep.remove(optional)
    notes = [[(first_line(rel.notes, 200), "")] + (
        [(f" (same artifact as {', '.join(rel.same_artifact_as)})", "yellow")]
        if rel.same_artifact_as else []) for rel in releases]
    return ([columns[i] for i in keep] + [Column("notes", shrink=True, optional=True)],
            [[row[i] for i in keep] + [note] for row, note in zip(rows, notes, strict=True)])


def print_releases(releases: list[Release], title: str, one_model: bool = False) -> None:
    columns, rows = releases_table(releases, one_model, terminal_width())
    print_table(columns, rows, title=title)


def figures_table(table: ReleaseTable) -> tuple[list[Column], list[list[Cell]]]:
    """The releases of one model with their latest figures on one profile, as the review
    app's start screen shows them: regressions against the release before marked ``!``."""
    unit, scale = latency_unit([r.p90_ms for r in table.rows])
    # Narrow terminals lose whole columns, notes first, then p90, Δp50 and status: figures
    # and their units are never cut.
    columns = [Column("version"), Column("status", optional=True), Column("budget"),
               Column(f"p50 {unit}", "right"), Column("Δp50", "right", optional=True),
               Column(f"p90 {unit}", "right", optional=True), Column("peak MB", "right"),
               Column("accuracy", "right"), Column("notes", shrink=True, optional=True)]
    rows: list[list[Cell]] = []
    for r in table.rows:
        delta: Cell = "" if r.p50_change_pct is None else [(
            f"{r.p50_change_pct:+.1f}%", "bold red" if "p50_ms" in r.regressed_metrics else "")]
        rows.append([
            [("▲" if table.profile in r.deployed_on else " ", "bold cyan"),
             ("!" if r.regressed else " ", "bold red"), (" " + r.version, "bold")],
            [(r.status, _STATUS_STYLES.get(r.status, ""))],
            [(r.budget, _BUDGET_STYLES.get(r.budget, "dim"))] if table.runs_format(r.format)
            else [("n/a", "dim")],
            format_number(r.p50_ms * scale) if r.p50_ms is not None
            else (r.run_status if r.run_status not in (None, "ok") else "-") or "-",
            delta,
            format_number(r.p90_ms * scale) if r.p90_ms is not None else "-",
            f"{r.peak_rss_mb:.1f}" if r.peak_rss_mb is not None else "-",
            f"{r.accuracy:.4f}" if r.accuracy is not None else "-",
            first_line(r.notes, 200),
        ])
    return columns, rows


def print_figures(table: ReleaseTable) -> None:
    columns, rows = figures_table(table)
    print_table(columns, rows, title=f"Releases of {table.model} on {table.profile}")
    notes = []
    if not all(table.runs_format(r.format) for r in table.rows):
        notes.append(f"n/a: {table.profile} runs {', '.join(table.formats)} models only")
    if not any(r.p50_ms is not None or r.other_runs for r in table.rows):
        notes.append(f"nothing of {table.model} measured on {table.profile} yet; measure with\n"
                     f"  devtrack bench {table.model}@VERSION --profile {table.profile}")
    if any(table.profile in r.deployed_on for r in table.rows):
        notes.append(f"▲ live on {table.profile}")
    if any(r.regressed for r in table.rows):
        notes.append("! a regression against the release before (devtrack trend has them)")
    if any(r.newer_runs for r in table.rows):
        notes.append(f"{NEWER_RUNS_NOTE}\n  (bench flags such as --threads, or a profile edit): "
                     f"devtrack results {table.model}@VERSION -p {table.profile}")
    unmeasured = [r.version for r in table.rows if not r.measured and r.other_runs]
    if unmeasured:
        notes.append(f"not measured under {table.profile}'s current conditions: "
                     f"{', '.join(unmeasured)} (their runs used other conditions);\n  measure "
                     f"with: devtrack bench {table.model}@VERSION --profile {table.profile}")
    for note in notes:
        print(note)
