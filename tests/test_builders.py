"""The model builders make real models that onnxruntime and LiteRT load and run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter

from devtrack.builders import mlp_reference, mlp_weights
from devtrack.builders.onnx_models import (
    build_custom_op,
    build_dynamic_with_scalar,
    build_fp16,
    build_matmul_chain,
    build_mlp,
    build_nan_output,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from devtrack.builders.tflite_models import build_tflite_custom_op, build_tflite_mlp


def run_onnx(path: Path, **feeds: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, feeds)]


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    interp = Interpreter(model_path=str(path))
    inp = interp.get_input_details()[0]
    if tuple(inp["shape"]) != x.shape:
        interp.resize_tensor_input(inp["index"], list(x.shape))
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return np.asarray(interp.get_tensor(interp.get_output_details()[0]["index"]))


def sample(rows: int, cols: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)


@pytest.mark.parametrize(("in_features", "hidden", "classes"),
                         [(64, (32,), 10), (16, (8, 8), 4), (5, (), 3)])
def test_onnx_mlp_computes_the_numpy_reference(tmp_path: Path, in_features: int,
                                               hidden: tuple[int, ...], classes: int) -> None:
    path = build_mlp(tmp_path / "m.onnx", in_features, hidden, classes, seed=3)
    x = sample(1, in_features)
    (y,) = run_onnx(path, input=x)
    expected = mlp_reference(mlp_weights(in_features, hidden, classes, seed=3), x)
    assert y.shape == (1, classes)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert y.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("weight_dtype", "atol"),
                         [("float32", 1e-6), ("float16", 1e-3), ("int8", 2e-2)])
def test_tflite_mlp_matches_onnx_mlp_from_the_same_seed(tmp_path: Path, weight_dtype: str,
                                                        atol: float) -> None:
    onnx_path = build_mlp(tmp_path / "m.onnx", 16, (8,), 4, seed=5)
    tfl_path = build_tflite_mlp(tmp_path / "m.tflite", 16, (8,), 4, seed=5,
                                weight_dtype=weight_dtype)
    x = sample(1, 16)
    np.testing.assert_allclose(run_tflite(tfl_path, x), run_onnx(onnx_path, input=x)[0],
                               atol=atol)


def test_trained_weights_give_the_same_outputs_in_both_formats(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    weights = [(rng.standard_normal((6, 5)).astype(np.float32), rng.standard_normal(5)),
               (rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(3))]
    onnx_path = build_mlp(tmp_path / "w.onnx", weights=weights)
    tfl_path = build_tflite_mlp(tmp_path / "w.tflite", weights=weights)
    x = sample(1, 6)
    expected = mlp_reference(weights, x)
    np.testing.assert_allclose(run_onnx(onnx_path, input=x)[0], expected, atol=1e-6)
    np.testing.assert_allclose(run_tflite(tfl_path, x), expected, atol=1e-6)


@pytest.mark.parametrize("build", [build_mlp, build_tflite_mlp])
def test_weights_that_do_not_chain_are_refused(tmp_path: Path, build: object) -> None:
    bad = [(np.zeros((4, 3), np.float32), np.zeros(3, np.float32)),
           (np.zeros((5, 2), np.float32), np.zeros(2, np.float32))]
    with pytest.raises(ValueError, match="layer 1: expects 5 inputs but layer 0 gives 3"):
        build(tmp_path / "bad", weights=bad)  # type: ignore[operator]


@pytest.mark.parametrize("build", [build_mlp, build_tflite_mlp])
def test_dynamic_batch_mlp_runs_any_batch_size(tmp_path: Path, build: object) -> None:
    path = build(tmp_path / "d", 16, (8,), 4, dynamic_batch=True)  # type: ignore[operator]
    x = sample(5, 16)
    y = run_onnx(path, input=x)[0] if build is build_mlp else run_tflite(path, x)
    np.testing.assert_allclose(y, mlp_reference(mlp_weights(16, (8,), 4), x), atol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "tflite_mlp", "tflite_int8", "chain", "dynamic",
                                  "custom", "nan", "tflite_custom"])
def test_builders_are_deterministic(tmp_path: Path, name: str) -> None:
    builds = {
        "mlp": lambda p: build_mlp(p, seed=4),
        "tflite_mlp": lambda p: build_tflite_mlp(p, seed=4),
        "tflite_int8": lambda p: build_tflite_mlp(p, seed=4, weight_dtype="int8"),
        "chain": lambda p: build_matmul_chain(p, size=16, layers=3, seed=4),
        "dynamic": build_dynamic_with_scalar,
        "custom": build_custom_op,
        "nan": build_nan_output,
        "tflite_custom": build_tflite_custom_op,
    }
    first = builds[name](tmp_path / "a").read_bytes()
    assert builds[name](tmp_path / "b").read_bytes() == first


@pytest.mark.parametrize("build", [build_mlp, build_tflite_mlp])
def test_a_different_seed_gives_different_weights(tmp_path: Path, build: object) -> None:
    a = build(tmp_path / "a", seed=0).read_bytes()  # type: ignore[operator]
    b = build(tmp_path / "b", seed=1).read_bytes()  # type: ignore[operator]
    assert a != b and len(a) == len(b)


def test_matmul_chain_work_and_size_grow_with_layers(tmp_path: Path) -> None:
    small = build_matmul_chain(tmp_path / "s.onnx", size=32, layers=2)
    large = build_matmul_chain(tmp_path / "l.onnx", size=32, layers=4)
    x = np.abs(sample(32, 32))
    (y,) = run_onnx(large, input=x)
    assert y.shape == (32, 32) and np.isfinite(y).all() and (y >= 0).all()
    weight_bytes = 32 * 32 * 4
    assert large.stat().st_size - small.stat().st_size == pytest.approx(2 * weight_bytes,
                                                                        rel=0.05)


def test_dynamic_with_scalar_uses_both_inputs(tmp_path: Path) -> None:
    path = build_dynamic_with_scalar(tmp_path / "vad.onnx")
    x = np.full((3, 100), 2.0, dtype=np.float32)
    (y,) = run_onnx(path, input=x, sr=np.array(8000, dtype=np.int64))
    np.testing.assert_allclose(y, np.full((3, 1), 1.0, dtype=np.float32))
    (y16,) = run_onnx(path, input=x[:1, :7], sr=np.array(16000, dtype=np.int64))
    np.testing.assert_allclose(y16, [[2.0]])


def test_nan_model_outputs_nan_for_any_input(tmp_path: Path) -> None:
    path = build_nan_output(tmp_path / "nan.onnx")
    (y,) = run_onnx(path, input=sample(1, 4))
    assert y.shape == (1, 4) and np.isnan(y).all()


def test_onnxruntime_refuses_the_custom_op_by_name(tmp_path: Path) -> None:
    path = build_custom_op(tmp_path / "custom.onnx")
    with pytest.raises(Exception, match="FancyGelu"):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_litert_refuses_the_custom_op_by_name(tmp_path: Path) -> None:
    path = build_tflite_custom_op(tmp_path / "custom.tflite")
    with pytest.raises(RuntimeError, match="FancyGelu"):
        interp = Interpreter(model_path=str(path))
        interp.allocate_tensors()


@pytest.mark.parametrize("variant", ["int8_dynamic", "int8_static", "fp16"])
def test_onnx_variants_run_close_to_the_float_model(tmp_path: Path, variant: str) -> None:
    src = build_mlp(tmp_path / "f.onnx", 64, (32,), 10, seed=2)
    dst = tmp_path / f"{variant}.onnx"
    calibration = [sample(1, 64, seed=s) for s in range(16)]
    if variant == "int8_dynamic":
        quantize_int8_dynamic(src, dst)
    elif variant == "int8_static":
        quantize_int8_static(src, dst, calibration)
    else:
        build_fp16(src, dst)
    x = sample(1, 64, seed=3)
    (ref,) = run_onnx(src, input=x)
    (y,) = run_onnx(dst, input=x)
    assert y.dtype == np.float32 and y.shape == (1, 10)
    np.testing.assert_allclose(y, ref, atol=0.05)
    assert dst.stat().st_size < 0.7 * src.stat().st_size  # smaller weights, smaller file
