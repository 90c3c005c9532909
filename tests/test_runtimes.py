"""Runtimes on tiny real models: onnxruntime and LiteRT (Interpreter and CompiledModel)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from devtrack.builders import mlp_reference, mlp_weights
from devtrack.builders.onnx_models import build_custom_op, build_matmul_chain
from devtrack.builders.tflite_models import build_tflite_custom_op, build_tflite_mlp
from devtrack.errors import InvalidModelError, RuntimeUnavailableError, UsageError
from devtrack.runtimes import RuntimeOptions, load_runtime, open_session
from devtrack.runtimes.onnxruntime_rt import missing_op, summarize_profile

X = np.random.default_rng(7).standard_normal((1, 16)).astype(np.float32)
EXPECTED = mlp_reference(mlp_weights(16, (8,), 4, seed=0), X)
LITERT_VARIANTS = [
    pytest.param("interpreter", True, id="interpreter-xnnpack"),
    pytest.param("interpreter", False, id="interpreter-builtin"),
    pytest.param("compiled_model", True, id="compiled_model-xnnpack"),
    pytest.param("compiled_model", False, id="compiled_model-builtin"),
]


@pytest.fixture(scope="module")
def custom_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_custom_op(tmp_path_factory.mktemp("rt") / "custom.onnx")


@pytest.fixture(scope="module")
def custom_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tflite_custom_op(tmp_path_factory.mktemp("rt") / "custom.tflite")


@pytest.fixture(scope="module")
def dynamic_tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rt") / "dyn.tflite"
    return build_tflite_mlp(path, in_features=16, hidden=(8,), classes=4, dynamic_batch=True)


@pytest.mark.parametrize("level", ["disable", "basic", "extended", "all"])
def test_onnxruntime_runs_the_mlp_at_every_optimization_level(mlp_onnx: Path, level: str) -> None:
    session = open_session(mlp_onnx, "onnx", RuntimeOptions(ort_graph_optimization_level=level))
    assert session.runtime_name == "onnxruntime"
    assert session.runtime_version == load_runtime("onnx", RuntimeOptions())[1]
    assert [(t.name, t.shape, t.dtype) for t in session.inputs] == [("input", [1, 16], "float32")]
    assert [t.name for t in session.outputs] == ["output"]
    (out,) = session.run({"input": X})
    np.testing.assert_allclose(out, EXPECTED, rtol=1e-5, atol=1e-6)


def test_onnxruntime_parallel_mode_and_threads_give_the_same_answer(mlp_onnx: Path) -> None:
    options = RuntimeOptions(threads=2, ort_execution_mode="parallel")
    (out,) = open_session(mlp_onnx, "onnx", options).run({"input": X})
    np.testing.assert_allclose(out, EXPECTED, rtol=1e-5, atol=1e-6)


def test_onnxruntime_reports_symbolic_dims(dynamic_onnx: Path) -> None:
    session = open_session(dynamic_onnx, "onnx", RuntimeOptions())
    shapes = {t.name: (t.shape, t.dtype) for t in session.inputs}
    assert shapes == {"input": (["batch", "samples"], "float32"), "sr": ([], "int64")}


def test_onnxruntime_op_profile_ranks_ops_by_time(tmp_path: Path) -> None:
    path = build_matmul_chain(tmp_path / "chain.onnx", size=64, layers=3)
    session = open_session(path, "onnx", RuntimeOptions())
    feeds = {"input": np.ones((64, 64), np.float32)}
    assert session.start_op_profile()
    for _ in range(4):
        session.run(feeds)
    ops = session.end_op_profile()
    assert ops is not None
    by_op = {o["op"]: o for o in ops}
    assert by_op["MatMul"]["calls"] == 12 and by_op["Relu"]["calls"] == 12
    assert ops[0]["total_ms"] >= ops[-1]["total_ms"]
    assert sum(o["pct"] for o in ops) == pytest.approx(100, abs=0.1)
    # Afterwards the measured (unprofiled) session is back in use.
    assert session.end_op_profile() is None
    assert session.run(feeds)[0].shape == (64, 64)


def test_profile_summary_ignores_session_events() -> None:
    events = [
        {"cat": "Session", "name": "model_run", "dur": 500},
        {"cat": "Node", "name": "a_kernel_time", "dur": 300, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "a_fence_before", "dur": 0, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "b_kernel_time", "dur": 100, "args": {"op_name": "Relu"}},
    ]
    assert summarize_profile(events) == [
        {"op": "Conv", "calls": 1, "total_ms": 0.3, "pct": 75.0},
        {"op": "Relu", "calls": 1, "total_ms": 0.1, "pct": 25.0},
    ]


def test_onnx_custom_op_error_names_the_op(custom_onnx: Path) -> None:
    with pytest.raises(RuntimeUnavailableError) as info:
        open_session(custom_onnx, "onnx", RuntimeOptions())
    message = str(info.value)
    assert "com.example.custom:FancyGelu" in message
    assert "\n" not in message


@pytest.mark.parametrize("text, op", [
    ("Fatal error: com.example.custom:FancyGelu(-1) is not a registered function/op",
     "com.example.custom:FancyGelu"),
    ("Error No Op registered for FancyGelu with domain_version of 1", "FancyGelu"),
    ("Could not find an implementation for FancyGelu(1) node with name 'x'", "FancyGelu"),
    ("Protobuf parsing failed.", None),
])
def test_missing_op_is_parsed_from_each_onnxruntime_wording(text: str, op: str | None) -> None:
    assert missing_op(text) == op


def test_a_file_that_is_not_onnx_is_an_invalid_model(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(InvalidModelError, match=r"bogus\.onnx"):
        open_session(bogus, "onnx", RuntimeOptions())


@pytest.mark.parametrize("api, xnnpack", LITERT_VARIANTS)
def test_litert_runs_the_mlp(mlp_tflite: Path, api: str, xnnpack: bool) -> None:
    options = RuntimeOptions(litert_api=api, litert_xnnpack=xnnpack)
    session = open_session(mlp_tflite, "tflite", options)
    assert session.runtime_name == "ai-edge-litert"
    assert session.runtime_version
    assert [(t.name, t.shape, t.dtype) for t in session.inputs] == [("input", [1, 16], "float32")]
    (out,) = session.run({"input": X})
    assert out.shape == (1, 4)
    np.testing.assert_allclose(out, EXPECTED, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("api", ["interpreter", "compiled_model"])
def test_litert_dynamic_batch_is_reported_and_resized(dynamic_tflite: Path, api: str) -> None:
    session = open_session(dynamic_tflite, "tflite", RuntimeOptions(litert_api=api))
    assert session.inputs[0].shape == [None, 16]
    batch = np.repeat(X, 3, axis=0)
    (out,) = session.run({"input": batch})
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out, np.repeat(EXPECTED, 3, axis=0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("api", ["interpreter", "compiled_model"])
def test_litert_custom_op_error_names_the_op(custom_tflite: Path, api: str) -> None:
    with pytest.raises(RuntimeUnavailableError) as info:
        session = open_session(custom_tflite, "tflite", RuntimeOptions(litert_api=api))
        session.run({"input": np.ones((1, 8), np.float32)})
    message = str(info.value)
    assert "FancyGelu" in message and "custom op" in message
    assert "\n" not in message


def test_litert_has_no_op_profile(mlp_tflite: Path) -> None:
    session = open_session(mlp_tflite, "tflite", RuntimeOptions())
    assert session.start_op_profile() is False
    assert session.end_op_profile() is None


@pytest.mark.parametrize("kwargs, word", [
    ({"threads": 0}, "threads"),
    ({"ort_graph_optimization_level": "max"}, "ort_graph_optimization_level"),
    ({"ort_execution_mode": "async"}, "ort_execution_mode"),
    ({"litert_api": "gpu"}, "litert_api"),
])
def test_bad_runtime_options_are_usage_errors(kwargs: dict[str, object], word: str) -> None:
    with pytest.raises(UsageError, match=word):
        RuntimeOptions(**kwargs)  # type: ignore[arg-type]


def test_runtime_options_round_trip_and_reject_unknown_keys() -> None:
    options = RuntimeOptions(threads=2, litert_api="compiled_model")
    assert RuntimeOptions.from_dict(options.to_dict()) == options
    with pytest.raises(UsageError, match="xnnpak"):
        RuntimeOptions.from_dict({"xnnpak": True})


def test_unknown_format_is_a_usage_error(mlp_onnx: Path) -> None:
    with pytest.raises(UsageError, match="pt"):
        open_session(mlp_onnx, "pt", RuntimeOptions())


def test_importing_the_runtimes_package_does_not_import_any_runtime() -> None:
    code = ("import sys, devtrack.runtimes; "
            "print(sorted(m for m in ('onnxruntime', 'ai_edge_litert', 'tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
