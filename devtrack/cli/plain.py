"""Plain-text helpers and the release list, free of Rich so ``devtrack releases`` starts fast."""

from __future__ import annotations

from typing import Any

from devtrack.cli.box_table import Cell, Column, print_table, terminal_width
from devtrack.core.release import Release


def human_size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


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
               Column("format"), Column("size", "right"), Column("quant"),
               Column("params", "right"), Column("created")]
    rows: list[list[Cell]] = [
        [rel.version if one_model else rel.ref, rel.status, rel.format,
         human_size(rel.size_bytes), rel.summary.quantization, f"{rel.summary.params:,}",
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
    return ([columns[i] for i in keep] + [Column("notes", shrink=True)],
            [[row[i] for i in keep] + [note] for row, note in zip(rows, notes, strict=True)])


def print_releases(releases: list[Release], title: str, one_model: bool = False) -> None:
    columns, rows = releases_table(releases, one_model, terminal_width())
    print_table(columns, rows, title=title)
