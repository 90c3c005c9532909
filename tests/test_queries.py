"""The library modules whose SQL lives in queries.py work on both backends: the same calls on
SQLite and on a real PostgreSQL server give the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtrack.errors import DuplicateError, NotFoundError
from devtrack.registry import (
    RegisterRequest,
    get_release,
    list_models,
    list_releases,
    register_release,
    require_model,
)
from devtrack.workspace import Workspace, open_workspace

pytestmark = pytest.mark.both_backends


@pytest.fixture
def any_ws(ws_dir: Path) -> Iterator[Workspace]:
    """An open workspace on this test's backend."""
    ws = open_workspace(ws_dir)
    try:
        yield ws
    finally:
        ws.close()


def test_registry_registers_lists_and_resolves_on_both_backends(
        any_ws: Workspace, mlp_onnx: Path, mlp_onnx_b: Path) -> None:
    first = register_release(any_ws, RegisterRequest(mlp_onnx, "kws", "1.0", notes="a"))
    second = register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "1.1", parent="1.0"))
    same = register_release(any_ws, RegisterRequest(mlp_onnx, "other", "1", task="other"))
    assert (first.id, second.id, same.id) == (1, 2, 3)
    assert second.parent == "1.0"
    assert get_release(any_ws, "kws@1.0").same_artifact_as == ["other@1"]
    assert [(m["model"], m["releases"], m["latest"]) for m in list_models(any_ws)] == [
        ("kws", 2, "1.1"), ("other", 1, "1")]
    assert [r.ref for r in list_releases(any_ws)] == ["kws@1.0", "kws@1.1", "other@1"]
    assert get_release(any_ws, "kws@latest").version == "1.1"
    assert require_model(any_ws, "other") == 2
    with pytest.raises(DuplicateError):
        register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "1.0"))
    with pytest.raises(NotFoundError, match=r"has versions: 1\.0, 1\.1"):
        get_release(any_ws, "kws@9")
    with pytest.raises(NotFoundError, match=r"parent kws@0\.9 is not registered"):
        register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "2.0", parent="0.9"))
    assert any_ws.store.verify_events() is None
    assert [e["kind"] for e in any_ws.store.events()] == ["register"] * 3


def test_bench_evaluate_check_compare_and_trend_on_both_backends(
        any_ws: Workspace, mlp_onnx: Path, mlp_onnx_b: Path, tmp_path: Path) -> None:
    """Real measurements stored on each backend, then read back by the modules whose SQL
    moved to queries.py: counted_runs, gate, comparison, trends, evaluation."""
    import numpy as np

    from devtrack.benchmarking import BenchOverrides, plan, run_measurement
    from devtrack.comparison import compare_releases
    from devtrack.datasets import add_dataset
    from devtrack.evaluation import attach_evaluations, predictions_of
    from devtrack.gate import check_release, default_profiles
    from devtrack.profiles import load_profile
    from devtrack.trends import trend
    from tests.test_cli_bench import TINY_PROFILE

    (any_ws.root / "device_profiles").mkdir(exist_ok=True)
    (any_ws.root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", input=x, labels=np.arange(8) % 4)
    add_dataset(any_ws, tmp_path / "eval.npz", "digits")
    a = register_release(any_ws, RegisterRequest(mlp_onnx, "kws", "1.0"))
    b = register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "1.1", parent="1.0"))
    overrides = BenchOverrides(eval_dataset="digits")
    measurements, _ = plan([a, b], [load_profile("tiny", any_ws.root)], overrides)
    results = [run_measurement(any_ws, m, overrides) for m in measurements]
    assert [r["status"] for r in results] == ["ok", "ok"], results
    assert [p.name for p in default_profiles(any_ws, b)[0]] == ["tiny"]
    report = check_release(any_ws, b, profiles=["tiny"], rerun=False)
    (profile_check,) = report.profiles
    assert profile_check.run_id == results[1]["run_id"]
    assert profile_check.baseline == "kws@1.0"
    comparison = compare_releases(any_ws, a, b)
    (profile_comparison,) = comparison.profiles
    assert (profile_comparison.run_a, profile_comparison.run_b) == (
        results[0]["run_id"], results[1]["run_id"])
    assert profile_comparison.latency is not None and profile_comparison.accuracy is not None
    points = trend(any_ws, "kws", "tiny", "p50_ms").points
    assert [p.run_id for p in points] == [results[0]["run_id"], results[1]["run_id"]]
    runs = attach_evaluations(any_ws, [{"run_id": r["run_id"]} for r in results])
    assert all(run["dataset"] == "digits" for run in runs)
    predictions = predictions_of(any_ws, results[0]["run_id"])
    assert predictions is not None and len(predictions) == 8
    assert any_ws.store.verify_events() is None


def test_a_bundle_exports_and_imports_on_both_backends(
        any_ws: Workspace, mlp_onnx: Path, mlp_onnx_b: Path, tmp_path: Path) -> None:
    """A bundle of measured, evaluated releases exported from the workspace on each backend
    imports into a SQLite workspace once, then adds nothing (bundles' SQL is in queries.py)."""
    import numpy as np

    from devtrack.benchmarking import BenchOverrides, plan, run_measurement
    from devtrack.bundles import export_bundle, import_bundle
    from devtrack.datasets import add_dataset
    from devtrack.profiles import load_profile
    from devtrack.workspace import init_workspace
    from tests.test_cli_bench import TINY_PROFILE

    (any_ws.root / "device_profiles").mkdir(exist_ok=True)
    (any_ws.root / "device_profiles" / "tiny.toml").write_text(TINY_PROFILE)
    a = register_release(any_ws, RegisterRequest(mlp_onnx, "kws", "1.0"))
    b = register_release(any_ws, RegisterRequest(mlp_onnx_b, "kws", "1.1", parent="1.0"))
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    np.savez(tmp_path / "eval.npz", input=x, labels=np.arange(8) % 4)
    add_dataset(any_ws, tmp_path / "eval.npz", "digits")
    overrides = BenchOverrides(eval_dataset="digits")
    measurements, _ = plan([a, b], [load_profile("tiny", any_ws.root)], overrides)
    assert [run_measurement(any_ws, m, overrides)["status"] for m in measurements] == ["ok"] * 2
    exported = export_bundle(any_ws, ["kws"], tmp_path / "kws.zip")
    assert exported.releases == ["kws@1.0", "kws@1.1"] and exported.runs == 2
    assert exported.datasets == ["digits"]
    target, _ = init_workspace(tmp_path / "team")
    try:
        first = import_bundle(target, tmp_path / "kws.zip")
        again = import_bundle(target, tmp_path / "kws.zip")
        assert (first.releases_added, first.runs_added) == (["kws@1.0", "kws@1.1"], 2)
        assert first.datasets_added == ["digits"]
        assert (again.event_id, again.runs_present) == (None, 2)
        assert get_release(target, "kws@1.1").parent == "1.0"
        # and back: the SQLite workspace's bundle adds nothing new on this backend
        export_bundle(target, ["kws"], tmp_path / "b.zip")
    finally:
        target.close()
    back = import_bundle(any_ws, tmp_path / "b.zip")
    assert (back.event_id, back.runs_present, back.releases_present) == (
        None, 2, ["kws@1.0", "kws@1.1"])
