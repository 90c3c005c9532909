"""The start screen as a user drives it: models, profiles, sorting, filter, drill-in, help."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Select, Static
from tui_seed import plain, seed_workspace

from devtrack.tui.screens.help import HelpScreen
from devtrack.tui.screens.release_detail import ReleaseDetailScreen
from devtrack.tui.screens.releases import ReleasesScreen
from devtrack.tui.widgets.empty_state import EmptyState
from devtrack.tui.widgets.filter_bar import FilterBar
from devtrack.tui.widgets.model_list import ModelList
from devtrack.tui.widgets.nav_table import NavTable

SIZE = (120, 35)


def table_versions(screen: ReleasesScreen) -> list[str]:
    return screen.query_one("#releases", NavTable).row_keys()


def detail_text(screen: object) -> str:
    """Every section of the release detail screen, as plain text."""
    return "\n".join(plain(w.content) for w in screen.query(".detail-section"))  # type: ignore[attr-defined]


def text_of(screen: object, selector: str) -> str:
    """What a Static shows, as plain text (rich renderables rendered at 120 columns)."""
    return plain(screen.query_one(selector, Static).content)  # type: ignore[attr-defined]


@pytest.mark.both_backends
async def test_start_screen_lists_models_and_the_releases_of_the_first(seeded: Path,
                                                                       make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ReleasesScreen)
        assert [o.id for o in screen.query_one(ModelList).options] == ["hand-landmark", "kws"]
        assert table_versions(screen) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
        assert screen.profile == "ci-host"  # where hand-landmark was measured most
        assert app.focused is screen.query_one("#releases")


async def test_j_k_move_the_cursor_and_the_info_line_follows(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("j", "j")
        assert screen.current_row.version == "1.2.0"
        info = text_of(screen, "#row-info")
        assert "hand-landmark@1.2.0" in info and "accuracy -0.0450 vs 1.1.0" in info
        await pilot.press("k")
        assert screen.current_row.version == "1.1.0"


async def test_switching_models_and_profiles_reloads_the_table(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("h", "j")
        await pilot.pause()
        assert screen.model == "kws"
        assert table_versions(screen) == ["0.9.0", "1.0.0"]
        await pilot.press("k")
        await pilot.pause()
        assert screen.model == "hand-landmark"
        screen.query_one("#profile", Select).value = "big-core-1t"
        await pilot.pause()
        assert screen.profile == "big-core-1t"
        row = screen.current_row
        assert row is not None and row.p50_ms is not None and row.p50_ms > 1.0


async def test_regressions_stand_out(seeded: Path, make_app) -> None:
    app = make_app(seeded, profile="big-core-1t")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        rows = {r.version: r for r in screen.table_data.rows}
        assert rows["1.3.0"].regressed and "p50_ms" in rows["1.3.0"].regressed_metrics
        assert rows["1.2.0"].regressed_metrics == ("accuracy",)
        assert not rows["1.1.0"].regressed
        table = screen.query_one(NavTable)
        version_cell = table.get_row("1.3.0")[0]
        assert "!" in version_cell.plain and "bold red" in str(version_cell.spans[-1].style)
        assert "regressed" in text_of(screen, "#table-summary")


async def test_sorting_by_key_and_by_clicking_a_header(seeded: Path, make_app) -> None:
    app = make_app(seeded, profile="big-core-1t")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(NavTable)
        table.sort_by("p50")
        await pilot.pause()
        assert table_versions(screen) == ["1.2.0", "1.1.0", "1.0.0", "1.3.0", "1.4.0"]
        await pilot.press("S")  # reverse; the unmeasured release stays last
        assert table_versions(screen) == ["1.3.0", "1.0.0", "1.1.0", "1.2.0", "1.4.0"]
        await pilot.press("s")  # next column after p50: its change, Δp50
        assert table.sort_key == "delta"
        await pilot.click("#releases", offset=(3, 0))  # the "version" header
        await pilot.pause()
        assert table.sort_key == "version"
        assert table_versions(screen) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]


async def test_slash_filters_enter_keeps_esc_clears(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("slash")
        bar = screen.query_one(FilterBar)
        assert bar.display and app.focused is bar
        await pilot.press(*"int8")
        assert table_versions(screen) == ["1.1.0", "1.2.0", "1.3.0", "1.4.0"]
        await pilot.press("enter")
        assert app.focused is screen.query_one(NavTable)
        assert table_versions(screen) == ["1.1.0", "1.2.0", "1.3.0", "1.4.0"]
        await pilot.press("slash")
        bar.value = "regression"
        await pilot.pause()
        assert table_versions(screen) == ["1.2.0"]
        await pilot.press("escape")
        assert not bar.display
        assert len(table_versions(screen)) == 5


async def test_a_filter_matching_nothing_says_so(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        await pilot.press("slash", *"zzz")
        await pilot.pause()
        assert table_versions(screen) == []
        assert "No release matches 'zzz'" in text_of(screen, "#row-info")
        await pilot.press("escape")
        await pilot.pause()
        assert "hand-landmark@1.0.0" in text_of(screen, "#row-info")


async def test_one_model_hides_the_model_pane_and_at_80_columns_figures_come_first(
        tmp_path: Path, seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert screen.query_one("#models-pane").display  # two models to choose between
        labels = [c.label for c in screen.query_one(NavTable).columns_spec]
        assert labels[:8] == ["version", "status", "budget", "p50 µs", "Δp50", "p90 µs",
                              "peak MB", "accuracy"]
    single = make_app(seed_workspace(tmp_path / "one", with_kws=False))
    async with single.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = single.screen
        assert not screen.query_one("#models-pane").display
        assert text_of(screen, "#table-summary").startswith("hand-landmark · 5 releases")
        await pilot.resize_terminal(120, 35)
        await pilot.pause()
        assert not screen.query_one("#models-pane").display  # nothing to choose, any width
        assert not screen.check_action("focus_models", ())


@pytest.mark.both_backends
async def test_enter_opens_the_release_and_esc_comes_back(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "enter")
        await pilot.pause()
        detail = app.screen
        assert isinstance(detail, ReleaseDetailScreen)
        assert detail.ref == "hand-landmark@1.1.0"
        body = detail_text(detail)
        for expected in ("Provenance", "1.1.0 ← 1.0.0", "int8 dynamic quantization",
                         "ci-host", "big-core-1t", "deployed here", "Audit events",
                         "int8 is 25% faster on device", "landmarks-val"):
            assert expected in body, expected
        await pilot.press("escape")
        assert isinstance(app.screen, ReleasesScreen)
        assert app.screen.current_row.version == "1.1.0"


async def test_clicking_a_row_with_the_mouse_selects_it(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#releases", offset=(5, 3))  # header is row 0
        assert app.screen.current_row.version == "1.2.0"


async def test_question_mark_lists_every_binding_and_closes(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("question_mark")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        text = text_of(help_screen, "#help-body")
        for key, what in (("/", "Filter"), ("q", "Quit"), ("a", "Approve"), ("x", "Reject"),
                          ("y", "Yank"), ("d", "Deploy"), ("u", "Roll"), ("b", "Benchmark"),
                          ("c", "Compare"), ("t", "Charts"), ("e", "audit log"),
                          ("j", "Down"), ("k", "Up"), ("ctrl+p", "command palette")):
            assert what in text, what
            assert key in text
        rows = [" ".join(line.split()) for line in text.splitlines()]
        assert "In the NavTable" not in text and "In tables" in text
        assert rows.count("? Help") == 1, rows  # bound on the screen and the app: once
        await pilot.press("escape")
        assert isinstance(app.screen, ReleasesScreen)


async def test_q_quits_from_the_start_screen(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    assert not app.is_running


async def test_command_palette_reaches_screens_and_actions(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"audit log")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "AuditScreen"


async def test_user_text_is_shown_literally(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "j")
        info = text_of(app.screen, "#row-info")
        assert "[red]not red[/red]" in info
        await pilot.press("enter")
        await pilot.pause()
        body = detail_text(app.screen)
        assert "[red]not red[/red]" in body
        assert "accuracy [bold]dropped[/bold] 5 pt" in body


@pytest.mark.both_backends
async def test_an_empty_workspace_shows_how_to_add_a_release(empty: Path, make_app) -> None:
    app = make_app(empty)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        guide = screen.query_one(EmptyState)
        assert guide.display
        assert "devtrack register" in plain(guide.content)
        assert not screen.query_one("#releases").display
        shown = {b.binding.key for b in screen.active_bindings.values()}
        assert "a" not in shown and "slash" not in shown  # no actions on nothing
        await pilot.press("a", "slash", "enter")  # ignored, no crash
        assert isinstance(app.screen, ReleasesScreen)
        await pilot.press("q")
    assert not app.is_running
