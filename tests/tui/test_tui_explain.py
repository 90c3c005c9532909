"""The compare screen's ``x``: the pair measured per operator, top contributors shown."""

from __future__ import annotations

import json
from pathlib import Path

from test_tui_bench import wait_until
from tui_seed import plain

from devtrack.registry import RegisterRequest, register_release
from devtrack.tui.app import DevtrackApp
from devtrack.workspace import open_workspace

PROFILE = """name = "tiny"
formats = ["onnx"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 2
min_runs = 10
min_time_s = 0.2
max_time_s = 0.3
"""


async def test_compare_explains_the_pair_per_operator(empty: Path, tmp_path: Path,
                                                      make_app) -> None:
    from devtrack.builders.onnx_models import build_matmul_chain
    from devtrack.tui.screens.compare import CompareScreen

    (empty / "device_profiles" / "tiny.toml").write_text(PROFILE, encoding="utf-8")
    with open_workspace(empty) as ws:
        for version, layers, parent in (("1.0", 3, None), ("1.1", 6, "1.0")):
            path = build_matmul_chain(tmp_path / f"c{layers}.onnx", size=128, layers=layers)
            register_release(ws, RegisterRequest(file=path, model="mm", version=version,
                                                 parent=parent), cwd=tmp_path)
    app: DevtrackApp = make_app(empty, profile="tiny")
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.pause()
        screen = CompareScreen("mm", "1.0", "1.1")
        app.push_screen(screen)
        await wait_until(pilot, lambda: screen.comparison is not None)
        await pilot.press("x")  # no profile picked and none measured: it asks for one
        await pilot.pause()
        assert screen.explanation is None
        screen.query_one("#compare-profile").value = "tiny"
        await pilot.pause()
        await pilot.press("x")
        await wait_until(pilot, lambda: screen.explanation is not None)
        await pilot.pause()
        body = plain(screen.query_one("#compare-body").content)
        assert "Why (per operator, side by side on tiny)" in body
        assert "added MatMul nodes mm3, mm4, mm5" in body
        assert screen.explanation is not None
        assert screen.explanation.nodes[0].status == "added"
    with open_workspace(empty) as ws:  # the measurement is recorded, as the CLI's is
        (event,) = ws.store.events(kind="explain")
    assert (event["version"], json.loads(event["payload"])["baseline"]) == ("1.1", "1.0")
