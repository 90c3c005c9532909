"""A fast row table: renders only the rows on screen, sorts, filters, keeps the cursor's row.

Textual's DataTable measures and re-renders every cell it holds whenever a row is added,
which makes a thousand releases take a third of a second per model switch. This table
draws each visible line straight from the rows' cells (made on demand and cached), so its
cost follows the terminal's height, not the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cells = Sequence[Text | str]
WIDTH_SAMPLE = 200  # rows measured for column widths; longer cells end in an ellipsis
MAX_WIDTH = 48
PADDING = 1


@dataclass(frozen=True)
class Column:
    """A column: its key, header label, and how its rows sort."""

    key: str
    label: str
    sort: Callable[[Any], Any] | None = None  # maps a row's sort value to a comparable key
    justify: str = "left"
    width: int | None = None  # fixed width; None = fit the content


@dataclass(frozen=True)
class Row:
    """One row: a key, its cells in column order (or a function making them, called only
    when the row is shown), the values it sorts by, and its filter text."""

    key: str
    cells: Cells | Callable[[], Cells]
    sort_values: dict[str, Any] = field(default_factory=dict)
    search: str = ""

    def render(self) -> Cells:
        return self.cells() if callable(self.cells) else self.cells


class NavTable(ScrollView, can_focus=True):
    """The tables of the app: ``j``/``k`` move, ``g``/``G`` jump, ``enter`` selects, rows
    filter and sort (``s`` cycles, a header click sorts, a second click reverses)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First row", show=False),
        Binding("end,G", "last", "Last row", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "nav-table--header", "nav-table--cursor", "nav-table--cursor-blurred",
        "nav-table--even-row", "nav-table--odd-row",
    }
    DEFAULT_CSS = """
    NavTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-horizontal: 1;
        & > .nav-table--header { background: $panel; color: $foreground; text-style: bold; }
        & > .nav-table--cursor { background: $block-cursor-background;
                                 color: $block-cursor-foreground; text-style: bold; }
        & > .nav-table--cursor-blurred { background: $block-cursor-blurred-background;
                                         color: $foreground; }
        & > .nav-table--even-row { background: $surface; }
        & > .nav-table--odd-row { background: $surface-lighten-1; }
    }
    """

    @dataclass
    class RowHighlighted(Message):
        """The cursor moved to the row with this key (None: the table is empty)."""

        table: NavTable
        key: str | None

        @property
        def control(self) -> NavTable:
            return self.table

    @dataclass
    class RowSelected(Message):
        """``enter``, or a click on the highlighted row: open it."""

        table: NavTable
        key: str

        @property
        def control(self) -> NavTable:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._columns: list[Column] = []
        self._widths: list[int] = []
        self._rows_all: list[Row] = []
        self._shown: list[Row] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, Cells] = {}
        self._lines: dict[tuple[Any, ...], Strip] = {}
        self.cursor_row = 0
        self.filter_text = ""
        self.sort_key: str | None = None
        self.sort_reverse = False

    # -- data -------------------------------------------------------------------------------

    def set_columns(self, columns: Sequence[Column]) -> None:
        self._columns = list(columns)
        self._layout()

    @property
    def columns_spec(self) -> list[Column]:
        return self._columns

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Replace the rows, keeping the cursor on the same row key when it still exists."""
        self._rows_all = list(rows)
        self._cells = {}
        self._rebuild()

    @property
    def all_rows(self) -> list[Row]:
        return self._rows_all

    @property
    def row_count(self) -> int:
        return len(self._shown)

    def row_keys(self) -> list[str]:
        """The keys of the rows shown, top to bottom."""
        return [row.key for row in self._shown]

    def get_row(self, key: str) -> Cells:
        return self._cells_of(self._shown[self._index[key]])

    def visible_rows(self) -> list[Row]:
        """The rows that pass the filter, in the chosen order (unmeasured rows last)."""
        needle = self.filter_text.casefold().strip()
        rows = [r for r in self._rows_all if not needle or needle in r.search.casefold()]
        spec = next((c for c in self._columns if c.key == self.sort_key), None)
        if spec is not None:
            convert = spec.sort or (lambda v: v)
            present = [r for r in rows if r.sort_values.get(spec.key) is not None]
            missing = [r for r in rows if r.sort_values.get(spec.key) is None]
            present.sort(key=lambda r: convert(r.sort_values[spec.key]),
                         reverse=self.sort_reverse)
            rows = present + missing
        return rows

    def apply_filter(self, text: str) -> None:
        self.filter_text = text
        self._rebuild()

    def sort_by(self, key: str | None, reverse: bool = False) -> None:
        self.sort_key, self.sort_reverse = key, reverse
        self._rebuild()

    def cycle_sort(self) -> str:
        """Sort by the next sortable column (then back to the natural order); returns its label."""
        keys = [c.key for c in self._columns if c.sort is not None]
        if not keys:
            return "natural order"
        if self.sort_key not in keys:
            self.sort_by(keys[0], self.sort_reverse)
        elif keys.index(self.sort_key) + 1 < len(keys):
            self.sort_by(keys[keys.index(self.sort_key) + 1], self.sort_reverse)
        else:
            self.sort_by(None)
            return "natural order"
        return next(c.label for c in self._columns if c.key == self.sort_key)

    @property
    def current_key(self) -> str | None:
        if not self._shown:
            return None
        return self._shown[min(self.cursor_row, len(self._shown) - 1)].key

    def select_key(self, key: str) -> bool:
        index = self._index.get(key)
        if index is None:
            return False
        self.move_cursor(index)
        return True

    def _rebuild(self) -> None:
        keep = self.current_key
        self._shown = self.visible_rows()
        self._index = {row.key: i for i, row in enumerate(self._shown)}
        self._layout()
        index = self._index.get(keep, 0) if keep is not None else 0
        self.cursor_row = -1  # force the highlight message
        self.move_cursor(index, center=True)

    def _cells_of(self, row: Row) -> Cells:
        cells = self._cells.get(row.key)
        if cells is None:
            cells = self._cells[row.key] = row.render()
        return cells

    def _layout(self) -> None:
        widths = []
        sample = self._shown[:WIDTH_SAMPLE]
        for i, column in enumerate(self._columns):
            if column.width is not None:
                widths.append(column.width)
                continue
            width = len(column.label) + (2 if column.key == self.sort_key else 0)  # arrow
            for row in sample:
                cells = self._cells_of(row)
                if i < len(cells):
                    cell = cells[i]
                    width = max(width, cell.cell_len if isinstance(cell, Text) else len(cell))
            widths.append(min(width, MAX_WIDTH))
        self._widths = widths
        total = sum(w + 2 * PADDING for w in widths)
        self.virtual_size = Size(total, len(self._shown) + 1)
        self._lines.clear()
        self.refresh()

    # -- cursor -----------------------------------------------------------------------------

    def move_cursor(self, row: int, center: bool = False) -> None:
        row = max(0, min(row, len(self._shown) - 1)) if self._shown else 0
        changed = row != self.cursor_row
        self.cursor_row = row
        visible = max(1, self.size.height - 1)  # the header takes a line
        top = int(self.scroll_y)
        if row < top or row >= top + visible:
            target = row - visible // 2 if center else (row if row < top else row - visible + 1)
            self.scroll_to(y=max(0, target), animate=False)
        self.refresh()
        if changed:
            self.post_message(self.RowHighlighted(self, self.current_key))

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - max(1, self.size.height - 2))

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + max(1, self.size.height - 2))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._shown) - 1)

    def action_select(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event: events.Click) -> None:
        if event.y == 0:
            self._header_clicked(event.x + int(self.scroll_x))
            return
        row = int(self.scroll_y) + event.y - 1
        if not 0 <= row < len(self._shown):
            return
        if row == self.cursor_row or event.chain > 1:
            self.move_cursor(row)
            self.action_select()
        else:
            self.move_cursor(row)

    def _header_clicked(self, x: int) -> None:
        edge = 0
        for column, width in zip(self._columns, self._widths, strict=False):
            edge += width + 2 * PADDING
            if x < edge:
                if column.sort is None:
                    return
                reverse = not self.sort_reverse if column.key == self.sort_key else False
                self.sort_by(column.key, reverse)
                return

    def on_resize(self, event: events.Resize) -> None:
        self._lines.clear()
        self.move_cursor(self.cursor_row)

    def on_focus(self, event: events.Focus) -> None:
        self.refresh()

    def on_blur(self, event: events.Blur) -> None:
        self.refresh()

    # -- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            line = self._header_line()
        else:
            index = scroll_y + y - 1
            if index >= len(self._shown):
                return Strip.blank(width, self.rich_style)
            line = self._row_line(index)
        return line.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _header_line(self) -> Strip:
        key = ("header", self.sort_key, self.sort_reverse)
        cached = self._lines.get(key)
        if cached is not None:
            return cached
        style = self.get_component_rich_style("nav-table--header")
        text = Text(style=style, no_wrap=True, end="")
        for column, width in zip(self._columns, self._widths, strict=False):
            label = column.label
            if column.key == self.sort_key:
                label += " ▼" if self.sort_reverse else " ▲"
            self._append_cell(text, Text(label), width, column.justify)
        strip = self._strip(text, style)
        self._lines[key] = strip
        return strip

    def _row_line(self, index: int) -> Strip:
        row = self._shown[index]
        cursor = index == self.cursor_row
        key = ("row", row.key, index % 2, cursor, cursor and self.has_focus)
        cached = self._lines.get(key)
        if cached is not None:
            return cached
        if cursor:
            style = self.get_component_rich_style(
                "nav-table--cursor" if self.has_focus else "nav-table--cursor-blurred")
        else:
            style = self.get_component_rich_style(
                "nav-table--odd-row" if index % 2 else "nav-table--even-row")
        text = Text(style=style, no_wrap=True, end="")
        cells = self._cells_of(row)
        for i, (column, width) in enumerate(zip(self._columns, self._widths, strict=False)):
            cell = cells[i] if i < len(cells) else ""
            self._append_cell(text, cell if isinstance(cell, Text) else Text(cell), width,
                              column.justify, bold=cursor and self.has_focus)
        strip = self._strip(text, style)
        if len(self._lines) > 2000:
            self._lines.clear()
        self._lines[key] = strip
        return strip

    @staticmethod
    def _append_cell(line: Text, cell: Text, width: int, justify: str,
                     bold: bool = False) -> None:
        cell = cell.copy()
        cell.truncate(width, overflow="ellipsis")
        pad = width - cell.cell_len
        justify = cell.justify or justify
        line.append(" " * PADDING)
        if justify == "right":
            line.append(" " * pad)
        if bold:
            cell.stylize("bold")
        line.append_text(cell)
        if justify != "right":
            line.append(" " * pad)
        line.append(" " * PADDING)

    def _strip(self, text: Text, style: Style) -> Strip:
        total = self.virtual_size.width
        segments = list(text.render(self.app.console))
        length = text.cell_len
        if length < total:
            segments.append(Segment(" " * (total - length), style))
        return Strip(segments, max(total, length))
