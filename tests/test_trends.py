"""trend: one metric across a model's releases in order, regressions and deployment marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import WorkspaceFactory, snapshot_workspace
from tests.test_cli_errors import assert_clean_error
from tests.test_comparison import review_copy
from tests.test_gate import deploy

pytestmark = pytest.mark.both_backends


@pytest.fixture
def review_ws(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch, workspaces: WorkspaceFactory) -> Path:
    """A copy of mm@1.0, mm@1.1 (same bytes) and mm@2.0 (2x slower), measured on tiny."""
    return review_copy(tmp_path_factory, tmp_path / "ws", monkeypatch, workspaces)


def test_p50_trend_marks_the_twice_as_slow_release(review_ws: Path, run_cli) -> None:
    deploy(review_ws, "1.1", "tiny")
    result = run_cli("trend", "mm", "--profile", "tiny", "--metric", "p50_ms", "--json")
    assert result.exit_code == 0, result.err
    data = json.loads(result.out)
    points = {p["version"]: p for p in data["points"]}
    assert list(points) == ["1.0", "1.1", "2.0"]
    assert points["2.0"]["mark"] == "regression" and points["2.0"]["change"] > 0.5
    assert "2.0" in data["regressions"]
    assert points["1.0"]["change"] is None
    assert [v for v, p in points.items() if p["deployed"]] == ["1.1"]
    assert data["threshold"] == 5.0

    text = run_cli("trend", "mm", "-p", "tiny")
    assert text.exit_code == 0
    assert "▲ regression" in text.out and "★ deployed" in text.out
    # the column is in the unit the figures need: µs only when all are below 1 ms
    unit = "µs" if max(p["value"] for p in points.values()) < 1.0 else "ms"
    assert f"p50 {unit}" in text.out


@pytest.mark.parametrize("metric", ["p90_ms", "peak_rss_mb"])
def test_other_metrics_trend_in_release_order(review_ws: Path, run_cli, metric: str) -> None:
    result = run_cli("trend", "mm", "-p", "tiny", "-m", metric, "--json")
    assert result.exit_code == 0, result.err
    points = json.loads(result.out)["points"]
    assert [p["version"] for p in points] == ["1.0", "1.1", "2.0"]
    assert all(p["value"] > 0 for p in points)
    if metric == "p90_ms":
        assert points[2]["mark"] == "regression"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("mm", "-p", "tiny", "-m", "p42"), ("unknown metric", "p50_ms")),
        (("mm", "-p", "nope"), ("unknown device profile", "nope")),
        (("nope", "-p", "tiny"), ("unknown model", "nope")),
        (("mm", "-p", "tiny", "-m", "accuracy"), ("no release of mm has accuracy",)),
    ],
)
def test_bad_input_is_one_line_exit_2(review_ws: Path, run_cli, args: tuple[str, ...],
                                      needles: tuple[str, ...]) -> None:
    before = snapshot_workspace(review_ws)
    assert_clean_error(run_cli("trend", *args), *needles)
    assert snapshot_workspace(review_ws) == before


def test_releases_on_a_profile_show_the_figures_and_mark_regressions(
        review_ws: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy(review_ws, "1.1", "tiny")
    rows = json.loads(run_cli("releases", "mm", "--profile", "tiny", "--json").out)
    by_version = {r["version"]: r for r in rows}
    assert set(by_version) == {"1.0", "1.1", "2.0"}
    assert all(r["profile"] == "tiny" and r["p50_ms"] > 0 for r in rows)
    assert by_version["2.0"]["regressed_metrics"][:1] == ["p50_ms"]
    assert by_version["2.0"]["p50_change_pct"] > 50
    assert by_version["1.1"]["deployed_on"] == ["tiny"]
    monkeypatch.setenv("COLUMNS", "80")
    text = run_cli("releases", "--profile", "tiny")
    assert text.exit_code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0] == "Releases of mm on tiny"
    assert max(len(line) for line in lines) <= 80, text.out
    assert any(line.startswith("│  ! 2.0") for line in lines), text.out
    # 1.1 is 1.0's bytes: whether stored-run noise flags it too does not matter here
    assert any(line.startswith(("│ ▲  1.1", "│ ▲! 1.1")) for line in lines), text.out
    assert "▲ live on tiny" in lines and any(line.startswith("! a regression") for line in lines)


def test_releases_on_an_unknown_profile_is_a_clean_error(review_ws: Path, run_cli) -> None:
    before = snapshot_workspace(review_ws)
    assert_clean_error(run_cli("releases", "--profile", "tinny"), "did you mean 'tiny'")
    assert_clean_error(run_cli("releases", "nope", "--profile", "tiny"), "unknown model 'nope'")
    assert snapshot_workspace(review_ws) == before


def test_accuracy_on_another_dataset_is_not_compared(review_ws: Path, run_cli) -> None:
    """Three releases evaluated; the last on a different (random) dataset: its big drop is
    not a regression, it says why, in trend and in the app's release table alike."""
    from devtrack.overview import release_overview
    from devtrack.workspace import open_workspace

    with open_workspace(review_ws) as ws, ws.store.transaction():
        datasets = [ws.store.insert("datasets", {
            "name": name, "sha256": name * 8, "task": "classification", "samples": 100,
            "arrays": "{}", "has_labels": 1, "created_at": "t", "created_by": "tester"})
            for name in ("digits", "noise")]
        for version, dataset, accuracy in (("1.0", 0, 0.96), ("1.1", 0, 0.96),
                                           ("2.0", 1, 0.10)):
            run = ws.store.one("SELECT runs.id FROM runs JOIN releases r ON "
                               "r.id = runs.release_id WHERE r.version = ? AND "
                               "runs.profile = 'tiny'", (version,))
            assert run is not None
            ws.store.insert("evaluations", {
                "run_id": run["id"], "dataset_id": datasets[dataset],
                "task": "classification", "metrics": "{}", "accuracy": accuracy,
                "created_at": "t"})
    points = {p["version"]: p for p in json.loads(
        run_cli("trend", "mm", "-p", "tiny", "-m", "accuracy", "--json").out)["points"]}
    assert points["1.1"]["change"] == pytest.approx(0.0)
    assert points["2.0"]["mark"] == "" and points["2.0"]["change"] is None
    assert "another dataset" in points["2.0"]["note"]
    with open_workspace(review_ws) as ws:
        row = {r.version: r for r in release_overview(ws, "mm", "tiny").rows}["2.0"]
    assert "accuracy" not in row.regressed_metrics and row.accuracy_change is None


def test_the_line_about_the_last_run_follows_the_newest_run_of_any_settings(
        review_ws: Path) -> None:
    """The figures prefer a run under the profile's current settings; what the last run did
    is the newest run's status, whatever its settings (an abort, then an ok under other
    settings, must not read 'last run aborted')."""
    from devtrack.overview import release_overview
    from devtrack.workspace import open_workspace

    with open_workspace(review_ws) as ws, ws.store.transaction():
        base = ws.store.one("SELECT * FROM runs JOIN releases r ON r.id = runs.release_id "
                            "WHERE r.version = '1.0' AND runs.profile = 'tiny'")
        assert base is not None
        for status, error in (("aborted", "interrupted by the user (Ctrl-C)"), ("ok", None)):
            ws.store.insert("runs", {
                "release_id": base["release_id"], "profile": "tiny",
                "profile_hash": "other-settings", "profile_snapshot": "{}", "status": status,
                "error": error, "started_at": "t", "finished_at": "t", "actor": "tester",
                "host": "lab", "p50_ms": 1.0, "warnings": "[]"})
    with open_workspace(review_ws) as ws:
        row = {r.version: r for r in release_overview(ws, "mm", "tiny").rows}["1.0"]
    assert row.run_status == "ok" and row.run_error is None
    assert row.p50_ms == pytest.approx(base["p50_ms"])  # figures: the current settings' run
    assert row.newer_runs  # ... and the app and releases --profile say newer runs exist


def test_releases_on_a_profile_nothing_was_measured_on_says_how_to_measure(
        review_ws: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    (review_ws / "device_profiles" / "other.toml").write_text(
        'name = "other"\nformats = ["onnx"]\n', encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "60")
    out = run_cli("releases", "mm", "--profile", "other").out
    assert "nothing of mm measured on other yet; measure with" in out
    assert "  devtrack bench mm@VERSION --profile other" in out.splitlines()
    assert max(len(line) for line in out.splitlines()) <= 60


def test_releases_on_a_profile_that_cannot_run_their_format_say_so(
        review_ws: Path, run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    (review_ws / "device_profiles" / "mcu.toml").write_text(
        'name = "mcu"\nformats = ["tflite"]\n', encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "80")
    out = run_cli("releases", "mm", "--profile", "mcu").out
    rows = [line for line in out.splitlines() if line.startswith("│")]
    assert rows and all("│ n/a " in line for line in rows), out
    assert "n/a: mcu runs tflite models only" in out.splitlines()
