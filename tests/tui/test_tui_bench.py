"""Benchmarking from the app: a real tiny ONNX model, measured in the background."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual import events
from textual.widgets import SelectionList
from tui_seed import plain

from devtrack.builders.onnx_models import build_mlp
from devtrack.registry import RegisterRequest, register_release
from devtrack.tui.app import DevtrackApp
from devtrack.tui.screens.bench_dialog import BenchDialog
from devtrack.tui.screens.help import HelpScreen
from devtrack.tui.widgets.bench_bar import BenchBar
from devtrack.workspace import open_workspace

SIZE = (120, 35)
TINY = """name = "tiny"
description = "Short windows for tests"
formats = ["onnx"]
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = {min_time}
max_time_s = {max_time}
"""


@pytest.fixture
def mlp_ws(empty: Path, tmp_path: Path) -> Path:
    """An otherwise empty workspace with one real ONNX release and a fast profile."""
    model = build_mlp(tmp_path / "mlp.onnx", in_features=16, hidden=(8,), classes=4, seed=0)
    (empty / "device_profiles" / "tiny.toml").write_text(
        TINY.format(min_time=0.1, max_time=0.3), encoding="utf-8")
    (empty / "device_profiles" / "slow.toml").write_text(
        TINY.format(min_time=5.0, max_time=6.0).replace('"tiny"', '"slow"'), encoding="utf-8")
    with open_workspace(empty) as ws:
        register_release(ws, RegisterRequest(file=model, model="mlp", version="1.0.0",
                                             notes="tiny"), cwd=tmp_path)
    return empty


async def wait_until(pilot, condition, timeout: float = 60.0,  # type: ignore[no-untyped-def]
                     idle: bool = True) -> None:
    """Poll ``condition``; ``idle=False`` polls without waiting for the app to go idle."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if idle:
            await pilot.pause(0.05)
        else:
            await asyncio.sleep(0.01)


@pytest.mark.both_backends
async def test_bench_runs_in_the_background_with_progress(mlp_ws: Path, make_app) -> None:
    app: DevtrackApp = make_app(mlp_ws, profile="tiny")
    updates = []
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.bench_signal.subscribe(app.screen, updates.append, immediate=True)
        assert app.screen.current_row.run_status is None  # not measured yet
        await pilot.press("b")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, BenchDialog)
        assert dialog.query_one(SelectionList).selected == ["tiny"]
        # no pilot.press here: it waits for the app to go idle, and progress keeps coming
        app.post_message(events.Key("enter", None))
        # a worker process is being started: it has onnxruntime to import, the model to
        # load and at least 0.1 s to measure, so the bench is far from done
        await wait_until(pilot, lambda: any(u.phase == "starting" for u in updates),
                         idle=False)
        assert app.screen.query_one(BenchBar).has_class("-active")
        # the UI answers keys while the worker process measures
        app.post_message(events.Key("question_mark", "?"))
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), idle=False)
        assert app.bench_running
        await wait_until(pilot, lambda: not app.bench_running)
        await pilot.press("escape")
        await pilot.pause()
        assert not app.screen.query_one(BenchBar).has_class("-active")
        row = app.screen.current_row
        assert row.run_status == "ok" and row.p50_ms is not None and row.p50_ms > 0
        assert row.peak_rss_mb is not None
    phases = [u.phase for u in updates]
    assert phases[0] == "planning" and "starting" in phases and len(set(phases)) >= 3
    final = updates[-1]
    assert final.done and final.error is None and len(final.results) == 1
    assert final.results[0]["profile"] == "tiny" and final.results[0]["status"] == "ok"


async def test_bench_needs_a_profile_and_can_be_cancelled(mlp_ws: Path, make_app) -> None:
    app: DevtrackApp = make_app(mlp_ws, profile="slow")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
        dialog = app.screen
        await pilot.press("space")  # un-tick the preselected profile
        await pilot.press("enter")
        assert app.screen is dialog and not app.bench_running
        assert "at least one profile" in str(dialog.query_one("#dialog-error").content)
        await pilot.press("space", "enter")
        await pilot.pause()
        assert app.bench_running
        await wait_until(pilot, lambda: app.bench_state is not None
                         and app.bench_state.phase == "measure")
        await pilot.press("ctrl+x")
        await wait_until(pilot, lambda: not app.bench_running, timeout=20)
        assert app.bench_state.error == "cancelled"
    with open_workspace(mlp_ws) as ws:
        runs = ws.store.query("SELECT status, profile FROM runs")
    assert runs == [{"status": "aborted", "profile": "slow"}]


async def test_deploy_dialog_runs_the_gate_then_deploys_without_force(mlp_ws: Path,
                                                                      tmp_path: Path,
                                                                      make_app) -> None:
    from textual.widgets import Input

    from devtrack.lifecycle import current_deployment, deploy
    from devtrack.tui.screens.deploy_dialog import DeployDialog

    profile = mlp_ws / "device_profiles" / "tiny.toml"
    profile.write_text(profile.read_text() + "[budgets]\nmax_latency_regression_pct = 50\n",
                       encoding="utf-8")
    with open_workspace(mlp_ws) as ws:
        register_release(ws, RegisterRequest(file=tmp_path / "mlp.onnx", model="mlp",
                                             version="1.0.1", parent="1.0.0",
                                             notes="same weights"), cwd=tmp_path)
        deploy(ws, "mlp@1.0.0", "tiny", "first", force=True)
    app: DevtrackApp = make_app(mlp_ws, profile="tiny")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "d")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, DeployDialog) and dialog.ref == "mlp@1.0.1"
        await pilot.click("#check")
        await wait_until(pilot, lambda: "check on tiny" in str(
            dialog.query_one("#check-note").content))
        note = str(dialog.query_one("#check-note").content)
        assert "check on tiny passed (against mlp@1.0.0)" in note
        dialog.query_one(Input).value = "same weights, gate passed"
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, DeployDialog)
    with open_workspace(mlp_ws) as ws:
        live = current_deployment(ws, "mlp", "tiny")
        assert live is not None and live.version == "1.0.1" and not live.forced
        assert live.check_id is not None


async def test_compare_re_measures_both_side_by_side(mlp_ws: Path, tmp_path: Path,
                                                     make_app) -> None:
    from devtrack.tui.screens.compare import CompareScreen

    profile = mlp_ws / "device_profiles" / "tiny.toml"
    profile.write_text(profile.read_text() + "[budgets]\nmax_latency_regression_pct = 50\n",
                       encoding="utf-8")
    with open_workspace(mlp_ws) as ws:
        register_release(ws, RegisterRequest(file=tmp_path / "mlp.onnx", model="mlp",
                                             version="1.0.1", parent="1.0.0"), cwd=tmp_path)
    app: DevtrackApp = make_app(mlp_ws, profile="tiny")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("j", "c")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen)
                         and app.screen.comparison is not None)
        screen = app.screen
        assert "Neither release was measured" in plain(screen.query_one("#compare-body").content)
        screen.query_one("#compare-profile").value = "tiny"
        await pilot.pause()
        await pilot.press("R")
        await wait_until(pilot, lambda: screen.comparison is not None and screen.comparison.rerun)
        await pilot.pause()
        latency = screen.comparison.profiles[0].latency
        assert latency is not None and latency.method == "interleaved"
        assert latency.verdict == "unchanged"  # the same file twice
        body = plain(screen.query_one("#compare-body").content)
        assert "unchanged" in body and "interleaved re-run" in body


def test_the_bench_bar_shows_every_device_measuring_at_once() -> None:
    from devtrack.tui.messages import BenchLane, BenchUpdate
    from devtrack.tui.widgets.bench_bar import bar_text

    one = BenchUpdate("kws@1.0", 1, 2, "kws@1.0 on tiny", phase="measure", elapsed_s=1.25)
    assert bar_text(one).plain == "⏵ bench kws@1.0 on tiny: measure 1.2s  0/2 done  ctrl+x cancels"
    both = BenchUpdate("kws@1.0", 2, 3, "kws@1.0 on board", completed=1, lanes=(
        BenchLane("local", "kws@1.0 on tiny", "measure", 1.25),
        BenchLane("labtest://a", "kws@1.0 on board", "load", 0.5)))
    assert bar_text(both).plain == ("⏵ bench kws@1.0 on tiny: measure 1.2s · kws@1.0 on board: "
                                    "load 0.5s  1/3 done  ctrl+x cancels")
    assert both.fraction == 1 / 3
