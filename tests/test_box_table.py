"""The light table used by ``releases`` and ``models``: Rich's look without Rich's import."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from devtrack.cli.box_table import Column, Styling, cell_width, render_table
from devtrack.core.text import printable


def rich_render(headers: list[tuple[str, str]], rows: list[list[str]], width: int) -> str:
    table = Table()
    for header, justify in headers:
        table.add_column(header, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(table)
    return out.getvalue().rstrip("\n")


def test_a_table_that_fits_is_drawn_exactly_as_rich_draws_it() -> None:
    headers = [("release", "left"), ("size", "right"), ("notes", "left")]
    rows = [["kws@1.0.0", "1.1 MB", "first build"], ["kws@1.10.0", "299.6 KB", "int8"]]
    ours = render_table([Column(h, j) for h, j in headers], rows, width=80)  # type: ignore[arg-type]
    assert ours == rich_render(headers, rows, 80)


def test_an_empty_table_still_has_its_header_and_frame() -> None:
    text = render_table([Column("model"), Column("task")], [], title="Models")
    assert text.splitlines()[0] == "Models"
    assert text.splitlines()[2] == "┃ model ┃ task ┃"
    assert text.splitlines()[-1] == "└───────┴──────┘"


def test_user_text_is_literal_and_control_characters_are_escaped() -> None:
    rows = [["[red]x[/red] :fire:", "evil\x1b[2J\x07bell\ttab"]]
    text = render_table([Column("a"), Column("b")], rows, width=200,
                        styling=Styling(enabled=True))
    assert "[red]x[/red] :fire:" in text
    assert "evil\\x1b[2J\\x07bell tab" in text
    assert "\x07" not in text and "\x1b[2J" not in text
    assert printable("tab\there\nnext") == "tab here next"


def test_wide_characters_keep_the_columns_aligned() -> None:
    text = render_table([Column("model"), Column("n", "right")], [["模型-中文", "1"], ["ab", "22"]])
    lines = text.splitlines()
    assert len({cell_width(line) for line in lines}) == 1, text
    assert cell_width("模型") == 4 and cell_width("e\u0301") == 1


def test_the_shrinking_column_gives_way_first_and_ends_in_an_ellipsis() -> None:
    columns = [Column("release"), Column("status"), Column("notes", shrink=True)]
    rows = [["kws@1.0.0", "approved", "a long note that will not fit in forty columns"]]
    text = render_table(columns, rows, width=40)
    lines = text.splitlines()
    assert max(cell_width(line) for line in lines) == 40, text
    assert "kws@1.0.0" in text and "approved" in text
    assert lines[3] == "│ kws@1.0.0 │ approved │ a long note … │"


def test_when_shrinking_is_not_enough_the_widest_columns_narrow_too() -> None:
    columns = [Column("release"), Column("status"), Column("notes", shrink=True)]
    rows = [["a-very-long-model-name@1.0.0", "candidate", "notes here"]]
    text = render_table(columns, rows, width=30)
    assert max(cell_width(line) for line in text.splitlines()) == 30, text
    assert text.splitlines()[3] == "│ a-very-lo… │ cand… │ note… │"  # the first column last


def test_cut_wide_characters_never_overflow_the_column() -> None:
    columns = [Column("k"), Column("notes", shrink=True, min_width=5)]
    text = render_table(columns, [["x", "中文中文中文中文"]], width=15)
    assert max(cell_width(line) for line in text.splitlines()) <= 15, text
    assert "…" in text


def test_styles_only_when_enabled_and_no_color_keeps_bold_but_drops_colour() -> None:
    cell = [("note", ""), (" (same artifact)", "yellow")]
    plain = render_table([Column("notes")], [[cell]])
    assert "\x1b" not in plain
    styled = render_table([Column("notes")], [[cell]], title="T", styling=Styling(enabled=True))
    assert "\x1b[33m (same artifact)\x1b[0m" in styled
    assert "\x1b[1mnotes\x1b[0m" in styled and "\x1b[3mT\x1b[0m" in styled
    mono = render_table([Column("notes")], [[cell]], styling=Styling(enabled=True, colour=False))
    assert "\x1b[33m" not in mono and "\x1b[1mnotes" in mono


def test_styling_follows_the_stream_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    for var in ("FORCE_COLOR", "NO_COLOR", "TERM"):
        monkeypatch.delenv(var, raising=False)
    assert not Styling.for_stream(io.StringIO()).enabled
    assert Styling.for_stream(Tty()).enabled
    monkeypatch.setenv("TERM", "dumb")
    assert not Styling.for_stream(Tty()).enabled
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert not Styling.for_stream(io.StringIO()).enabled  # still a dumb terminal
    monkeypatch.setenv("TERM", "xterm-256color")
    assert Styling.for_stream(io.StringIO()).enabled
    monkeypatch.setenv("NO_COLOR", "1")
    assert not Styling.for_stream(Tty()).colour


def test_a_row_with_the_wrong_number_of_cells_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        render_table([Column("a"), Column("b"), Column("c")], [["1", "2"]])


def test_optional_columns_are_left_out_right_to_left_when_nothing_else_fits() -> None:
    columns = [Column("version"), Column("p50", "right"), Column("p90", "right", optional=True),
               Column("accuracy", "right"), Column("notes", shrink=True, optional=True)]
    rows = [["1.0.0", "17.6", "18.0", "0.9610", "a note long enough to need shrinking"]]
    wide = render_table(columns, rows, width=120)
    assert "p90" in wide and "a note long enough" in wide
    medium = render_table(columns, rows, width=50)  # notes shrink, nothing is left out
    assert "p90" in medium and "notes" in medium
    assert max(cell_width(line) for line in medium.splitlines()) <= 50
    no_notes = render_table(columns, rows, width=36)  # notes go first ...
    assert "notes" not in no_notes and "p90" in no_notes
    narrow = render_table(columns, rows, width=30)  # ... then p90
    assert "p90" not in narrow and "accuracy" in narrow and "17.6" in narrow
    assert max(cell_width(line) for line in narrow.splitlines()) <= 30, narrow
