"""A small box-drawn table for commands that must start fast (``devtrack releases``).

Importing Rich's console and table costs ~30 ms, more than the rest of such a command. This
draws the heavy-head box Rich draws by default, so the output looks like every other devtrack
table. Text is always literal: there is no markup, and control characters are shown escaped
(``\\x1b``), never sent to the terminal.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

from devtrack.core.text import printable

# (text, style) pieces of one cell; a plain str is one unstyled piece.
Piece = tuple[str, str]
Cell = str | Sequence[Piece]

_SGR = {"bold": "1", "dim": "2", "italic": "3", "red": "31", "green": "32", "yellow": "33"}
_COLOURS = {"red", "green", "yellow"}
ELLIPSIS = "…"
SPARE_FIRST_UNTIL = 5  # other columns give way down to this width before the first one does


@dataclass(frozen=True)
class Column:
    header: str
    justify: Literal["left", "right"] = "left"
    shrink: bool = False  # may be narrowed to fit the width; its cells then end in "…"
    min_width: int = 8  # how narrow a shrinking column may get
    optional: bool = False  # left out (right to left) when the table cannot fit otherwise


@dataclass(frozen=True)
class Styling:
    """Which escape codes the output may carry."""

    enabled: bool = False
    colour: bool = True

    @classmethod
    def for_stream(cls, stream: TextIO) -> Styling:
        """As Rich decides: styles on a terminal (or with FORCE_COLOR), none on a pipe or on
        a dumb terminal (even forced); NO_COLOR keeps bold and italic but drops colours."""
        env = os.environ
        is_tty = hasattr(stream, "isatty") and stream.isatty()
        dumb = env.get("TERM", "") in ("dumb", "unknown")
        enabled = (bool(env.get("FORCE_COLOR")) or is_tty) and not dumb
        return cls(enabled=enabled, colour=not env.get("NO_COLOR"))

    def apply(self, text: str, style: str) -> str:
        if not (self.enabled and style and text):
            return text
        codes = [_SGR[s] for s in style.split() if s in _SGR and (self.colour or s not in _COLOURS)]
        return f"\x1b[{';'.join(codes)}m{text}\x1b[0m" if codes else text


def terminal_width(default: int = 80) -> int:
    """$COLUMNS, else the width of whichever standard stream is a terminal (so ``| less``
    still fits the screen), else ``default`` — the same order Rich uses."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    for fd in (1, 2, 0):
        try:
            return os.get_terminal_size(fd).columns or default
        except (OSError, ValueError):
            continue
    return default


def cell_width(text: str) -> int:
    """Terminal cells ``text`` takes: wide East Asian characters count 2, combining marks 0."""
    if text.isascii():
        return len(text)
    return sum(_char_width(ch) for ch in text)


def _char_width(ch: str) -> int:
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _pieces(cell: Cell) -> list[Piece]:
    parts = [(cell, "")] if isinstance(cell, str) else list(cell)
    return [(printable(text), style) for text, style in parts]


def _cut(pieces: list[Piece], width: int) -> list[Piece]:
    """The pieces cut to ``width`` cells, ending in "…" when anything was cut."""
    if sum(cell_width(t) for t, _ in pieces) <= width:
        return pieces
    room, out = width - 1, []
    for text, style in pieces:
        kept = ""
        for ch in text:
            w = _char_width(ch)
            if w > room:
                break
            kept, room = kept + ch, room - w
        out.append((kept, style))
        if len(kept) < len(text):
            out.append((ELLIPSIS, style))
            break
    return out


def _columns_that_fit(columns: Sequence[Column], rows: list[list[list[Piece]]],
                      width: int) -> list[int]:
    """Indexes of the columns to show: optional ones go, rightmost first, while the table
    would be wider than ``width`` with every shrinking column at its minimum."""
    def least(i: int) -> int:
        natural = max([cell_width(columns[i].header)]
                      + [sum(cell_width(t) for t, _ in row[i]) for row in rows])
        if columns[i].shrink:
            return min(natural, max(columns[i].min_width, cell_width(columns[i].header)))
        return natural

    keep = list(range(len(columns)))
    needed = {i: least(i) for i in keep}
    for i in reversed(range(len(columns))):
        if sum(needed[k] for k in keep) + 3 * len(keep) + 1 <= width:
            break
        if columns[i].optional and len(keep) > 1:
            keep.remove(i)
    return keep


def _column_widths(columns: Sequence[Column], rows: list[list[list[Piece]]],
                   width: int) -> list[int]:
    widths = [max([cell_width(col.header)] + [sum(cell_width(t) for t, _ in row[i])
                                               for row in rows])
              for i, col in enumerate(columns)]
    excess = sum(widths) + 3 * len(columns) + 1 - width
    for i in reversed(range(len(columns))):
        if excess <= 0:
            break
        if columns[i].shrink:
            give = min(excess, max(0, widths[i] - max(columns[i].min_width,
                                                       cell_width(columns[i].header))))
            widths[i] -= give
            excess -= give
    # Still too wide: narrow the widest, as Rich does, sparing the first (identifying)
    # column while another can give without going below a few characters.
    while excess > 0 and max(widths) > 1:
        others = [i for i in range(1, len(widths)) if widths[i] > SPARE_FIRST_UNTIL]
        pick = (max(others, key=lambda i: widths[i]) if others
                else widths.index(max(widths)))
        widths[pick] -= 1
        excess -= 1
    return widths


def render_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
                 title: str | None = None, width: int = 80,
                 styling: Styling | None = None) -> str:
    """The table as text lines (no trailing newline). When the table is wider than ``width``,
    columns marked ``optional`` are left out (right to left) while even shrunk it would not
    fit; then columns marked ``shrink`` give way, last first; only if that is not enough do
    the widest of the others."""
    style = styling or Styling()
    cells = [[_pieces(cell) for cell in row] for row in rows]
    for row in cells:
        if len(row) != len(columns):
            raise ValueError(f"row has {len(row)} cells for {len(columns)} columns")
    keep = _columns_that_fit(columns, cells, width)
    columns = [columns[i] for i in keep]
    cells = [[row[i] for i in keep] for row in cells]
    widths = _column_widths(columns, cells, width)

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * (w + 2) for w in widths) + right

    def line(row: list[list[Piece]], edge: str, extra_style: str = "") -> str:
        out = []
        for col, pieces, w in zip(columns, row, widths, strict=True):
            kept = _cut(pieces, w)
            pad = " " * (w - sum(cell_width(t) for t, _ in kept))
            body = "".join(style.apply(t, f"{s} {extra_style}".strip()) for t, s in kept)
            out.append(pad + body if col.justify == "right" else body + pad)
        return edge + " " + f" {edge} ".join(out) + " " + edge

    lines = []
    if title:
        lines.append(style.apply(printable(title), "italic"))
    lines.append(rule("┏", "┳", "┓", "━"))
    lines.append(line([[(printable(c.header), "")] for c in columns], "┃", "bold"))
    lines.append(rule("┡", "╇", "┩", "━"))
    lines += [line(row, "│") for row in cells]
    lines.append(rule("└", "┴", "┘", "─"))
    return "\n".join(lines)


def print_table(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
                title: str | None = None, stream: TextIO | None = None) -> None:
    """Render for ``stream`` (default stdout): its styling and the terminal's width."""
    out = stream or sys.stdout
    out.write(render_table(columns, rows, title=title, width=terminal_width(),
                           styling=Styling.for_stream(out)) + "\n")
