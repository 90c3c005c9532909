"""Compare, trends and audit screens: what the user reads there comes from the library."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Select, Static, TabbedContent
from tui_seed import empty_workspace, plain

from devtrack.comparison import compare_releases
from devtrack.tui.screens.audit import AuditScreen
from devtrack.tui.screens.compare import CompareScreen
from devtrack.tui.screens.releases import ReleasesScreen
from devtrack.tui.screens.trends import TrendsScreen
from devtrack.tui.widgets.nav_table import NavTable
from devtrack.tui.widgets.trend_chart import TrendChart, tick_positions
from devtrack.workspace import open_workspace

SIZE = (120, 35)


async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_compare_shows_the_diff_and_the_cli_verdicts(seeded: Path, make_app) -> None:
    app = make_app(seeded, profile="big-core-1t")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "j", "j", "c")  # 1.3.0 against its parent 1.1.0
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert (screen.baseline, screen.candidate) == ("1.1.0", "1.3.0")
        body = plain(screen.query_one("#compare-body", Static).content)
        with open_workspace(seeded) as ws:
            expected = compare_releases(ws, "hand-landmark@1.1.0", "hand-landmark@1.3.0")
        verdicts = {p.profile: p.latency.verdict for p in expected.profiles}
        assert verdicts == {"big-core-1t": "slower", "ci-host": "unchanged"}
        for line in body.splitlines():
            if line.lstrip().startswith("p50 latency ms"):
                assert line.split()[-1] in ("slower", "unchanged")
        assert body.count("slower") >= 1 and "unchanged" in body
        assert "~ epochs" in body and "40" in body and "dirty tree" in body
        assert "indicative" in body
        await pilot.press("w")  # swap: 1.1.0 against 1.3.0 is faster on big-core-1t
        await settle(pilot)
        assert (screen.baseline, screen.candidate) == ("1.3.0", "1.1.0")
        assert "faster" in plain(screen.query_one("#compare-body", Static).content)
        screen.query_one("#compare-a", Select).value = "1.1.0"
        await settle(pilot)
        assert "same release" in plain(screen.query_one("#compare-status", Static).content)
        await pilot.press("escape")
        assert isinstance(app.screen, ReleasesScreen)


@pytest.mark.both_backends
async def test_trends_chart_every_metric_and_mark_the_deployed_release(seeded: Path,
                                                                       make_app) -> None:
    app = make_app(seeded, profile="big-core-1t")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TrendsScreen)
        latency = screen.trends["p50_ms"]
        assert [p.version for p in latency.points if p.deployed] == ["1.1.0"]
        assert [p.version for p in latency.regressions] == ["1.3.0"]
        assert [p.version for p in screen.trends["accuracy"].regressions] == ["1.2.0"]
        summary = plain(screen.query_one("#trends-summary", Static).content)
        assert "1.3.0 (p50)" in summary and "1.2.0 (accuracy)" in summary
        legend = plain(screen.query_one("#trends-legend", Static).content)
        assert legend.startswith("marks: devtrack trend")
        title = screen.query_one("#chart-p50_ms", TrendChart).plt._active.monitor.title
        assert "deployed: 1.1.0" in title
        await pilot.press("3")
        assert screen.query_one(TabbedContent).active == "accuracy"
        screen.query_one(Select).value = "iot-256mb"  # nothing measured there
        await settle(pilot)
        assert isinstance(screen.trends["p50_ms"], str)
        assert "no release of hand-landmark" in screen.trends["p50_ms"]


def test_the_quick_marks_agree_with_devtrack_trend_on_the_seeded_line(seeded: Path) -> None:
    from devtrack.overview import release_overview
    from devtrack.trends import trend
    from devtrack.tui.screens.trends import quick_series

    with open_workspace(seeded) as ws:
        table = release_overview(ws, "hand-landmark", "big-core-1t")
        for metric in ("p50_ms", "peak_rss_mb", "accuracy"):
            points, quick = quick_series(table, metric)
            exact = trend(ws, "hand-landmark", "big-core-1t", metric)
            assert quick == {p.version for p in exact.regressions}, metric
            assert [p.value for p in points] == pytest.approx([p.value for p in exact.points])


def test_tick_positions_keep_first_and_last() -> None:
    assert tick_positions(3) == [1, 2, 3]
    ticks = tick_positions(1000)
    assert ticks[0] == 1 and ticks[-1] == 1000 and len(ticks) <= 8


@pytest.mark.both_backends
async def test_audit_log_filters_by_model_kind_and_text(seeded: Path, make_app) -> None:
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        table = screen.query_one(NavTable)
        assert screen.model == "hand-landmark" and table.row_count == 18
        screen.query_one("#audit-model", Select).value = "*"
        await pilot.pause()
        assert table.row_count == 23
        screen.query_one("#audit-kind", Select).value = "deploy"
        await pilot.pause()
        kinds = {str(table.get_row(key)[2]) for key in table.row_keys()}
        assert kinds == {"deploy"} and table.row_count == 4
        screen.query_one("#audit-kind", Select).value = "*"
        await pilot.pause()
        await pilot.press("slash")
        screen.query_one("#audit-filter").value = "bob"
        await pilot.pause()
        assert table.row_count == 1
        detail = plain(screen.query_one("#audit-detail", Static).content)
        assert "reason: accuracy [bold]dropped[/bold] 5 pt" in detail
        await pilot.press("escape")  # clears the filter first
        assert table.row_count == 23
        await pilot.press("escape")
        assert isinstance(app.screen, ReleasesScreen)


async def _verify_from_the_audit_screen(app, pilot) -> str:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await pilot.press("e")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, AuditScreen)
    await pilot.press("v")
    await app.workers.wait_for_complete()
    await pilot.pause()
    return plain(screen.query_one("#audit-count", Static).content)


async def test_v_verifies_the_trail_and_names_a_broken_one(seeded: Path, tmp_path: Path,
                                                           make_app) -> None:
    # The seed writes its tables directly, not through devtrack's actions: its statuses and
    # run figures do not match its events, as a hand-edited workspace's would not; its
    # dataset has no event and no file in the store (2 more).
    app = make_app(seeded)
    async with app.run_test(size=SIZE) as pilot:
        line = await _verify_from_the_audit_screen(app, pilot)
        assert "✗ 19 problems" in line, line
    clean = make_app(empty_workspace(tmp_path / "clean"))
    async with clean.run_test(size=SIZE) as pilot:
        line = await _verify_from_the_audit_screen(clean, pilot)
        assert "✓ verified" in line, line


@pytest.mark.parametrize(("limit", "style"), [(5.0, "red"), (20.0, "")])
def test_compare_colours_memory_changes_by_the_profiles_limit(limit: float, style: str) -> None:
    """+10% peak memory is red under a 5% limit and plain under a 20% one."""
    from rich.table import Table

    from devtrack.comparison import ProfileComparison
    from devtrack.metric_changes import MetricDelta
    from devtrack.tui.screens.compare import profile_table

    comparison = ProfileComparison("p", "h", "c", limit,
                                   memory=[MetricDelta("peak_rss_mb", 100.0, 110.0)])
    group = profile_table(comparison)
    table = next(r for r in group.renderables if isinstance(r, Table))
    change = next(iter(table.columns[3].cells))
    assert str(change) == "+10.0%" and str(change.style) == style
    assert f"±{limit:g}%" in plain(group)
