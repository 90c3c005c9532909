"""Quitting the app: at once when idle; asked first while a real measurement runs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Button, SelectionList, Static
from tui_seed import plain

from devtrack.builders.onnx_models import build_mlp
from devtrack.registry import RegisterRequest, register_release
from devtrack.tui.app import DevtrackApp
from devtrack.tui.bench_job import STOPPED_FROM_APP
from devtrack.tui.screens.bench_dialog import BenchDialog
from devtrack.tui.screens.quit_dialog import QuitDialog
from devtrack.tui.widgets.bench_bar import BenchBar
from devtrack.workspace import open_workspace

SIZE = (80, 24)
PROFILE = """name = "{name}"
description = "Test window of {min_time} s"
formats = ["onnx"]
[execution]
timeout_s = 300  # holds 6 side-by-side repeats of slow's 30 s (core/limits.py)
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = {min_time}
max_time_s = {max_time}
"""
# (min, max) measuring time: "steady" outlasts a few key presses, "slow" is never waited
# for. The Bench dialog runs its profiles in name order: "fast" before "slow".
WINDOWS = {"fast": (0.1, 0.3), "steady": (2.5, 3.0), "slow": (30.0, 40.0)}


@pytest.fixture
def mlp_ws(empty: Path, tmp_path: Path) -> Path:
    """A workspace with one real ONNX release (twice: 1.0.0 and 1.0.1) and three profiles."""
    model = build_mlp(tmp_path / "mlp.onnx", in_features=16, hidden=(8,), classes=4, seed=0)
    for name, (low, high) in WINDOWS.items():
        (empty / "device_profiles" / f"{name}.toml").write_text(
            PROFILE.format(name=name, min_time=low, max_time=high), encoding="utf-8")
    with open_workspace(empty) as ws:
        register_release(ws, RegisterRequest(file=model, model="mlp", version="1.0.0"),
                         cwd=tmp_path)
        register_release(ws, RegisterRequest(file=model, model="mlp", version="1.0.1",
                                             parent="1.0.0"), cwd=tmp_path)
    return empty


async def wait_until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``condition`` without waiting for the app to go idle (progress keeps coming)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def press(app: DevtrackApp, key: str, character: str | None = None) -> None:
    """A key press that, unlike ``pilot.press``, does not wait for the app to go idle."""
    app.post_message(events.Key(key, character))


async def start_bench(pilot, app: DevtrackApp, *profiles: str) -> None:  # type: ignore[no-untyped-def]
    """Bench the highlighted release from the Bench dialog on ``profiles``, then wait until
    the last one measures."""
    await pilot.press("b")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, BenchDialog)
    choices = dialog.query_one(SelectionList)
    choices.deselect_all()
    for name in profiles:
        choices.select(name)
    press(app, "enter")
    await wait_until(lambda: app.bench_state is not None
                     and app.bench_state.index == len(profiles)
                     and app.bench_state.phase == "measure")


async def ask_to_quit(pilot, app: DevtrackApp, key: str = "q") -> QuitDialog:  # type: ignore[no-untyped-def]
    """Press ``key`` and wait for the quit dialog to show, focused; return it."""
    press(app, key, key if len(key) == 1 else None)
    await wait_until(lambda: isinstance(app.screen, QuitDialog)
                     and app.focused is not None and app.focused.screen is app.screen)
    assert isinstance(app.screen, QuitDialog)
    return app.screen


def running_text(dialog: QuitDialog) -> str:
    return plain(dialog.query_one("#quit-running", Static).content)


def stored_runs(root: Path) -> list[tuple[str, str, str | None]]:
    with open_workspace(root) as ws:
        rows = ws.store.query("SELECT profile, status, error FROM runs ORDER BY id")
    return [(r["profile"], r["status"], r["error"]) for r in rows]


@pytest.mark.parametrize("key", ["q", "ctrl+q"])
async def test_quit_with_nothing_measuring_exits_at_once(mlp_ws: Path, make_app,
                                                         key: str) -> None:
    app: DevtrackApp = make_app(mlp_ws, profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(app.screen, QuitDialog)
    assert app.return_code == 0
    assert not app.is_running


async def test_quit_while_benchmarking_asks_and_keep_measuring_lets_the_run_finish(
        mlp_ws: Path, make_app) -> None:
    app: DevtrackApp = make_app(mlp_ws, profile="steady")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await start_bench(pilot, app, "steady")
        for key_to_keep in ("escape", "enter"):  # esc, and enter on the focused default
            dialog = await ask_to_quit(pilot, app)
            assert running_text(dialog) == "Benchmarking mlp@1.0.0 on steady (1 of 1)"
            assert app.focused is dialog.query_one("#cancel", Button)
            assert str(app.focused.label) == "Keep measuring"
            press(app, key_to_keep)
            await wait_until(lambda: not isinstance(app.screen, QuitDialog))
            assert app.is_running and app.bench_running
        assert app.screen.query_one(BenchBar).has_class("-active")
        dialog = await ask_to_quit(pilot, app)  # left open while the run finishes
        await wait_until(lambda: not app.bench_running)
        await wait_until(lambda: str(dialog.query_one("#ok", Button).label) == "Quit")
        assert str(dialog.query_one("#cancel", Button).label) == "Stay"
        assert not dialog.query_one("#quit-note", Static).display  # nothing is stopped now
        assert "nothing is running now" in running_text(dialog)
        press(app, "escape")
        await wait_until(lambda: not isinstance(app.screen, QuitDialog))
        assert app.is_running
        assert app.bench_state is not None and app.bench_state.error is None
    assert stored_runs(mlp_ws) == [("steady", "ok", None)]


async def test_stop_and_quit_stores_the_running_run_aborted_and_keeps_finished_ones(
        mlp_ws: Path, make_app) -> None:
    app: DevtrackApp = make_app(mlp_ws, profile="fast")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await start_bench(pilot, app, "fast", "slow")
        dialog = await ask_to_quit(pilot, app)
        assert running_text(dialog) == "Benchmarking mlp@1.0.0 on slow (2 of 2)"
        assert "stored as aborted" in plain(dialog.query_one("#quit-note", Static).content)
        stopped_at = time.monotonic()
        press(app, "shift+tab")
        await wait_until(lambda: app.focused is dialog.query_one("#ok", Button))
        press(app, "enter")  # "Stop and quit"
        await wait_until(lambda: not app.is_running)
        assert time.monotonic() - stopped_at < 10  # the slow profile measures for 30 s
    assert app.return_code == 0
    assert app.bench_state is not None and app.bench_state.error == "cancelled"
    assert stored_runs(mlp_ws) == [("fast", "ok", None), ("slow", "aborted", STOPPED_FROM_APP)]


async def test_stop_and_quit_during_a_side_by_side_re_measure_stops_its_worker(
        mlp_ws: Path, make_app) -> None:
    from devtrack.tui.screens.compare import CompareScreen

    app: DevtrackApp = make_app(mlp_ws, profile="slow")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "c")
        await wait_until(lambda: isinstance(app.screen, CompareScreen)
                         and app.screen.comparison is not None)
        app.screen.query_one("#compare-profile").value = "slow"  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press("R")
        await wait_until(lambda: app.measuring.locked())
        dialog = await ask_to_quit(pilot, app, "ctrl+q")  # q goes back from compare
        assert running_text(dialog) == ("Re-measuring mlp@1.0.1 against 1.0.0 side by side "
                                        "on slow")
        assert "nothing of it is stored" in plain(dialog.query_one("#quit-note", Static).content)
        stopped_at = time.monotonic()
        # The keyboard, not pilot.click: on a loaded machine a click can land before the
        # freshly shown dialog is laid out, and miss its button.
        press(app, "shift+tab")
        await wait_until(lambda: app.focused is dialog.query_one("#ok", Button))
        press(app, "enter")  # "Stop and quit"
        await wait_until(lambda: not app.is_running)
        assert time.monotonic() - stopped_at < 10  # 6 repeats of 30 s otherwise
    assert not app.measuring.locked()
    with open_workspace(mlp_ws) as ws:  # stopped like Ctrl-C: no comparison is stored
        assert ws.store.query("SELECT id FROM comparisons") == []
