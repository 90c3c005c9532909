"""Accuracy and fidelity as a user gets them: dataset commands and bench --eval, real runtimes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from devtrack.builders import Layer, mlp_reference, mlp_weights
from devtrack.core.significance import wilson_interval
from tests.conftest import snapshot_workspace
from tests.test_cli_errors import assert_clean_error

FAST_PROFILE = """
name = "fast"
formats = ["onnx", "tflite"]
[execution]
threads = 1
timeout_s = 60
[measurement]
warmup_runs = 2
min_runs = 5
min_time_s = 0.02
max_time_s = 0.2
target_rel_ci = 0.5
"""
SAMPLES = 300
CLASSES = 10


@dataclass(frozen=True)
class EvalFiles:
    weights: list[Layer]
    float_onnx: Path
    int8_onnx: Path
    float_tflite: Path
    five_class_onnx: Path
    nan_onnx: Path
    digits: Path  # input (300, 16) float32, labels: the model's own top-1 with 25% noise
    x: np.ndarray
    labels: np.ndarray


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> EvalFiles:
    from devtrack.builders.onnx_models import build_mlp, build_nan_output, quantize_int8_dynamic
    from devtrack.builders.tflite_models import build_tflite_mlp

    root = tmp_path_factory.mktemp("eval")
    weights = mlp_weights(16, (12,), CLASSES, seed=3)
    float_onnx = build_mlp(root / "float.onnx", weights=weights)
    int8_onnx = quantize_int8_dynamic(float_onnx, root / "int8.onnx")
    float_tflite = build_tflite_mlp(root / "float.tflite", weights=weights)
    five = build_mlp(root / "five.onnx", in_features=16, hidden=(12,), classes=5)
    nan_onnx = build_nan_output(root / "nan.onnx")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((SAMPLES, 16)).astype(np.float32)
    labels = mlp_reference(weights, x).argmax(axis=1)
    noisy = rng.random(SAMPLES) < 0.25
    labels[noisy] = rng.integers(0, CLASSES, int(noisy.sum()))
    digits = root / "digits.npz"
    np.savez(digits, input=x, labels=labels)
    return EvalFiles(weights, float_onnx, int8_onnx, float_tflite, five, nan_onnx, digits, x,
                     labels)


@pytest.fixture
def ws(in_ws: Path, files: EvalFiles, run_cli) -> Path:
    """kws 1.0 float ONNX → 1.1 int8 ONNX → 1.2 float TFLite, and the labelled digits set."""
    (in_ws / "device_profiles" / "fast.toml").write_text(FAST_PROFILE)
    for path, version, parent in ((files.float_onnx, "1.0", None),
                                  (files.int8_onnx, "1.1", "1.0"),
                                  (files.float_tflite, "1.2", "1.1")):
        args = ["register", path, "-m", "kws", "-v", version]
        result = run_cli(*args, *(["--parent", parent] if parent else []))
        assert result.exit_code == 0, result.err
    assert run_cli("dataset", "add", files.digits, "--name", "digits").exit_code == 0
    return in_ws


def _bench(run_cli, *args: str) -> list[dict]:
    result = run_cli("bench", *args, "--profile", "fast", "--json")
    assert result.exit_code == 0, result.err
    return json.loads(result.out)


def test_reported_accuracy_equals_numpy_on_the_same_model(ws: Path, files: EvalFiles,
                                                          run_cli) -> None:
    import onnxruntime as ort

    scores = mlp_reference(files.weights, files.x)
    correct = int((scores.argmax(axis=1) == files.labels).sum())
    top5 = np.argsort(-scores, axis=1)[:, :5]
    expected_top5 = float((top5 == files.labels[:, None]).any(axis=1).mean())
    session = ort.InferenceSession(str(files.float_onnx), providers=["CPUExecutionProvider"])
    ort_top1 = np.array([session.run(None, {"input": files.x[i:i + 1]})[0].argmax()
                         for i in range(SAMPLES)])

    runs = _bench(run_cli, "kws@1.0", "kws@1.2", "--eval", "digits")
    for run in runs:
        assert run["status"] == "ok" and run["dataset"] == "digits"
        assert run["samples_evaluated"] == SAMPLES
        assert run["accuracy"] == correct / SAMPLES
        assert tuple(run["accuracy_ci"]) == wilson_interval(correct, SAMPLES)
        assert run["top5"] == pytest.approx(expected_top5)
        assert run["nonfinite"] == 0
    assert 0.6 < correct / SAMPLES < 0.9  # the labels are noisy on purpose

    from devtrack.evaluation import predictions_of
    from devtrack.workspace import open_workspace

    with open_workspace(ws) as workspace:
        assert predictions_of(workspace, runs[0]["run_id"]) == ort_top1.tolist()
    stored = json.loads(run_cli("results", "kws@1.0", "--json").out)
    assert stored[0]["accuracy"] == correct / SAMPLES
    table = run_cli("results", "kws@1.0").out
    assert f"accuracy {correct / SAMPLES:.4f}" in table and "on digits" in table


def test_fidelity_against_itself_is_exact_and_against_int8_close_but_not(
        ws: Path, run_cli) -> None:
    [itself] = _bench(run_cli, "kws@1.0", "--eval", "digits", "--reference", "kws@1.0")
    fid = itself["fidelity"]
    assert fid["reference"] == "kws@1.0"
    assert fid["max_abs_err"] == 0.0 and fid["mean_abs_err"] == 0.0
    assert fid["cosine"] == 1.0 and fid["top1_agreement"] == 1.0

    int8, tflite = _bench(run_cli, "kws@1.1", "kws@1.2", "--eval", "digits")
    fid = int8["fidelity"]  # default reference: the parent, 1.0
    assert fid["reference"] == "kws@1.0"
    assert 0.0 < fid["max_abs_err"] < 0.05 and 0.0 < fid["mean_abs_err"] < fid["max_abs_err"]
    assert 0.999 < fid["cosine"] < 1.0
    assert fid["top1_agreement"] > 0.9
    assert tflite["fidelity"]["reference"] == "kws@1.1"  # TFLite vs its int8 parent
    assert tflite["fidelity"]["max_abs_err"] > 0.0


def test_a_model_that_outputs_nan_is_flagged_and_does_not_crash(ws: Path, tmp_path: Path,
                                                                files: EvalFiles,
                                                                run_cli) -> None:
    run_cli("register", files.nan_onnx, "-m", "broken", "-v", "1")
    four = tmp_path / "four.npz"
    np.savez(four, input=np.ones((6, 4), np.float32), labels=np.arange(6) % 4)
    run_cli("dataset", "add", four, "--name", "four")
    [run] = _bench(run_cli, "broken@1", "--eval", "four")
    assert run["status"] == "ok"
    assert run["nonfinite"] == 24 and run["accuracy"] == 0.0
    assert any("outputs contain NaN: 24 non-finite value(s) in 6 of 6 sample(s)" in w
               for w in run["warnings"])
    [plain] = _bench(run_cli, "broken@1")
    assert "dataset" not in plain
    assert any("NaN" in w and "benchmark inputs" in w for w in plain["warnings"])


def test_bench_evaluates_the_default_dataset_unless_told_not_to(ws: Path, run_cli) -> None:
    result = run_cli("dataset", "default", "kws", "digits")
    assert result.exit_code == 0, result.err
    listed = json.loads(run_cli("dataset", "list", "--json").out)
    assert listed[0]["default_for"] == ["kws"] and listed[0]["samples"] == SAMPLES
    [with_default] = _bench(run_cli, "kws@1.0")
    assert with_default["dataset"] == "digits" and with_default["accuracy"] is not None
    [timing_only] = _bench(run_cli, "kws@1.0", "--no-eval")
    assert "accuracy" not in timing_only
    # The evaluation's time comes on top of timeout_s, explicitly, and is recorded.
    from devtrack.evaluation import EVAL_TIMEOUT_BASE_S, SECONDS_PER_SAMPLE
    from devtrack.workspace import open_workspace as _open

    with _open(ws) as workspace:
        isolation = [json.loads(workspace.store.one("SELECT details FROM runs WHERE id = ?",
                                                    (run["run_id"],))["details"])["isolation"]
                     for run in (with_default, timing_only)]
    allowance = EVAL_TIMEOUT_BASE_S + SAMPLES * SECONDS_PER_SAMPLE  # no parent: one model
    assert isolation[0]["evaluation_allowance_s"] == pytest.approx(allowance)
    assert isolation[0]["timeout_s"] == pytest.approx(60 + allowance)
    assert "evaluation_allowance_s" not in isolation[1] and isolation[1]["timeout_s"] == 60

    # The TUI and the gate call plan() without a workspace: the default still applies.
    from devtrack.benchmarking import BenchOverrides, plan, run_measurement
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release
    from devtrack.workspace import open_workspace

    with open_workspace(ws) as workspace:
        [m], _ = plan([get_release(workspace, "kws@1.1")], [load_profile("fast", ws)],
                      BenchOverrides())
        run = run_measurement(workspace, m, BenchOverrides())
    assert run["dataset"] == "digits" and run["fidelity"]["reference"] == "kws@1.0"
    events = json.loads(run_cli("log", "kws", "--kind", "bench", "--json").out)
    assert events[-1]["payload"]["dataset"] == "digits"


def test_regression_dataset_gives_mae_and_rmse_through_a_fill_input(
        ws: Path, tmp_path: Path, dynamic_onnx: Path, run_cli) -> None:
    run_cli("register", dynamic_onnx, "-m", "vad", "-v", "5", "--fill", "sr=16000")
    rng = np.random.default_rng(1)
    audio = rng.standard_normal((40, 512)).astype(np.float32)
    targets = audio.mean(axis=1, keepdims=True) + rng.normal(0, 0.1, (40, 1))
    path = tmp_path / "vad.npz"
    np.savez(path, input=audio, labels=targets)
    added = json.loads(run_cli("dataset", "add", path, "--name", "vad-set", "--json").out)
    assert added["task"] == "regression"
    [run] = _bench(run_cli, "vad@5", "--eval", "vad-set", "--input", "input=1x512")
    err = audio.astype(np.float64).mean(axis=1, keepdims=True) - targets
    assert run["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-4)
    assert run["rmse"] == pytest.approx(np.sqrt((err ** 2).mean()), rel=1e-4)
    assert "accuracy" not in run and run["fidelity"] is None


@pytest.fixture
def bad_files(tmp_path: Path, files: EvalFiles) -> dict[str, Path]:
    x = files.x[:10]
    made = {
        "text": tmp_path / "text.npz",
        "npy": tmp_path / "one.npy",
        "truncated": tmp_path / "truncated.npz",
        "short_labels": tmp_path / "short_labels.npz",
        "no_input": tmp_path / "no_input.npz",
        "wrong_shape": tmp_path / "wrong_shape.npz",
        "wrong_dtype": tmp_path / "wrong_dtype.npz",
    }
    made["text"].write_text("input,label\n1,2\n")
    np.save(made["npy"], x)
    made["truncated"].write_bytes(files.digits.read_bytes()[:400])
    np.savez(made["short_labels"], input=x, labels=np.zeros(9, np.int64))
    np.savez(made["no_input"], features=x)
    np.savez(made["wrong_shape"], input=x[:, :15])
    np.savez(made["wrong_dtype"], input=x.astype(np.float64))
    return made


@pytest.mark.parametrize(("file", "needles"), [
    ("text", ["text.npz is not a readable .npz", "not a zip archive"]),
    ("npy", ["one.npy is not a readable .npz", ".npy file holds a single array"]),
    ("truncated", ["truncated.npz is not a readable .npz"]),
    ("short_labels", ["labels has 9 entries but the arrays have 10 samples"]),
])
def test_dataset_add_refuses_a_bad_file(ws: Path, bad_files: dict[str, Path], run_cli,
                                        file: str, needles: list[str]) -> None:
    before = snapshot_workspace(ws)
    assert_clean_error(run_cli("dataset", "add", bad_files[file], "--name", "x"), *needles)
    assert snapshot_workspace(ws) == before


@pytest.mark.parametrize(("file", "extra", "needles"), [
    ("no_input", [], ["dataset 'x' has no array for input 'input' of kws@1.0",
                      "(N, 16) float32", "the dataset has: features"]),
    ("wrong_shape", [], ["array 'input' has shape (10, 15)", "expected shape (N, 16)"]),
    ("wrong_dtype", [], ["array 'input' is float64 but input 'input' of kws@1.0 is float32"]),
    ("wrong_shape", ["--no-eval"], ["--no-eval cannot be combined with --eval"]),
])
def test_bench_refuses_a_dataset_that_does_not_fit(ws: Path, bad_files: dict[str, Path],
                                                   run_cli, file: str, extra: list[str],
                                                   needles: list[str]) -> None:
    assert run_cli("dataset", "add", bad_files[file], "--name", "x").exit_code == 0
    before = snapshot_workspace(ws)
    result = run_cli("bench", "kws@1.0", "--profile", "fast", "--eval", "x", *extra)
    assert_clean_error(result, *needles)
    assert snapshot_workspace(ws) == before


@pytest.mark.parametrize(("args", "needles"), [
    (["dataset", "add", "{digits}", "--name", "digits"], ["dataset 'digits' already exists"]),
    (["bench", "kws@1.0", "-p", "fast", "--eval", "digts"],
     ["unknown dataset 'digts'", "datasets: digits"]),
    (["bench", "kws@1.0", "-p", "fast", "--eval", "digits", "--reference", "other@1"],
     ["reference other@1 cannot be compared with kws@1.0",
      "its output 'output' is (1, 5), not (1, 10)"]),
    (["bench", "kws@1.0", "-p", "fast", "--reference", "kws@1.1"],
     ["--reference needs an evaluation dataset"]),
    (["dataset", "default", "kws", "digts"], ["unknown dataset 'digts'"]),
    (["dataset", "default", "other", "digits"],
     ["dataset 'digits' has labels up to", "other@1 has 5 class score(s)"]),
])
def test_unknown_names_and_mismatched_references_are_clean_errors(
        ws: Path, files: EvalFiles, run_cli, args: list[str], needles: list[str]) -> None:
    run_cli("register", files.five_class_onnx, "-m", "other", "-v", "1")
    before = snapshot_workspace(ws)
    result = run_cli(*[a.replace("{digits}", str(files.digits)) for a in args])
    assert_clean_error(result, *needles)
    assert snapshot_workspace(ws) == before
