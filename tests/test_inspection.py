"""Model inspection: signatures, op histograms, weights, quantization labels, bad files."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from devtrack.builders.onnx_models import (
    build_custom_op,
    build_dynamic_with_scalar,
    build_fp16,
    build_mlp,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from devtrack.builders.tflite_models import build_tflite_custom_op, build_tflite_mlp
from devtrack.core.summary import ModelSummary, TensorInfo
from devtrack.errors import InvalidModelError
from devtrack.inspection import detect_format, inspect_model
from devtrack.inspection.onnx_inspect import quantization_label


def mlp_params(sizes: list[int]) -> int:
    return sum(a * b + b for a, b in pairwise(sizes))


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of each model variant, built once for the module."""
    d = tmp_path_factory.mktemp("inspect")
    mlp = build_mlp(d / "mlp.onnx")  # 64 -> 32 -> 10
    calibration = [np.random.default_rng(s).random((1, 64), np.float32) for s in range(8)]
    return {
        "onnx": mlp,
        "onnx_int8_dynamic": quantize_int8_dynamic(mlp, d / "dyn.onnx"),
        "onnx_int8_full": quantize_int8_static(mlp, d / "static.onnx", calibration),
        "onnx_fp16": build_fp16(mlp, d / "fp16.onnx"),
        "tflite": build_tflite_mlp(d / "mlp.tflite"),
        "tflite_fp16": build_tflite_mlp(d / "fp16.tflite", weight_dtype="float16"),
        "tflite_int8_dynamic": build_tflite_mlp(d / "int8.tflite", weight_dtype="int8"),
    }


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.parametrize(("in_features", "hidden", "classes"),
                         [(64, (32,), 10), (16, (8, 8), 4), (3, (), 2)])
def test_mlp_signature_ops_and_params(tmp_path: Path, fmt: str, in_features: int,
                                      hidden: tuple[int, ...], classes: int) -> None:
    build = build_mlp if fmt == "onnx" else build_tflite_mlp
    path = build(tmp_path / f"m.{fmt}", in_features, hidden, classes)
    s = inspect_model(path)
    layers = len(hidden) + 1
    assert s.format == fmt
    assert s.inputs == [TensorInfo("input", [1, in_features], "float32")]
    assert s.outputs == [TensorInfo("output", [1, classes], "float32")]
    if fmt == "onnx":
        expected_ops = {"MatMul": layers, "Add": layers, "Relu": len(hidden), "Softmax": 1}
        assert s.opset == "ai.onnx:17"
        assert s.producer == "devtrack-builders 1"
    else:
        expected_ops = {"FULLY_CONNECTED": layers, "SOFTMAX": 1}
        assert s.opset == "tflite schema v3"
        assert s.producer == "devtrack-builders"
    assert s.ops == {k: v for k, v in expected_ops.items() if v}
    params = mlp_params([in_features, *hidden, classes])
    assert s.params == params
    assert s.weight_dtypes == {"float32": params}
    assert s.quantization == "none"


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_dynamic_batch_shows_as_symbol_or_none(tmp_path: Path, fmt: str) -> None:
    build = build_mlp if fmt == "onnx" else build_tflite_mlp
    s = inspect_model(build(tmp_path / f"d.{fmt}", 16, (8,), 4, dynamic_batch=True))
    batch = "batch" if fmt == "onnx" else None
    assert s.inputs[0].shape == [batch, 16]
    assert s.outputs[0].shape == [batch, 4]
    assert s.inputs[0].is_dynamic


def test_dynamic_dims_and_scalar_input(tmp_path: Path) -> None:
    s = inspect_model(build_dynamic_with_scalar(tmp_path / "vad.onnx"))
    assert s.inputs == [TensorInfo("input", ["batch", "samples"], "float32"),
                        TensorInfo("sr", [], "int64")]
    assert s.outputs == [TensorInfo("output", ["batch", 1], "float32")]
    assert s.ops == {"Cast": 1, "Div": 1, "Mul": 1, "ReduceMean": 1}


@pytest.mark.parametrize(("name", "label", "weight_dtypes"), [
    ("onnx", "none", {"float32": 2410}),
    # quantize_dynamic: int8 weights plus one int8 zero point per weight; float biases+scales
    ("onnx_int8_dynamic", "int8 dynamic", {"int8": 2370, "float32": 44}),
    # QDQ: weights, biases and every zero point int8; only the scales stay float
    ("onnx_int8_full", "int8 full", {"int8": 2420, "float32": 10}),
    ("onnx_fp16", "fp16", {"float16": 2410}),
    ("tflite", "none", {"float32": 2410}),
    ("tflite_fp16", "fp16", {"float16": 2410}),
    ("tflite_int8_dynamic", "int8 dynamic", {"int8": 2368, "float32": 42}),
])
def test_quantization_label_and_weight_dtypes(models: dict[str, Path], name: str, label: str,
                                              weight_dtypes: dict[str, int]) -> None:
    s = inspect_model(models[name])
    assert s.quantization == label
    assert s.weight_dtypes == weight_dtypes
    assert s.params == sum(weight_dtypes.values())
    assert s.inputs[0].dtype == "float32"


def test_quantized_onnx_ops_are_counted(models: dict[str, Path]) -> None:
    dyn = inspect_model(models["onnx_int8_dynamic"])
    assert dyn.ops["DynamicQuantizeLinear"] == 2 and dyn.ops["MatMulInteger"] == 2
    assert dyn.producer.startswith("onnx.quantize")
    static = inspect_model(models["onnx_int8_full"])
    assert static.ops["QuantizeLinear"] > 0 and static.ops["DequantizeLinear"] > 0
    assert inspect_model(models["tflite_fp16"]).ops["DEQUANTIZE"] == 4  # 2 weights, 2 biases


@pytest.mark.parametrize(("ops", "weights", "label"), [
    ({"MatMul": 1}, {"float32": 100}, "none"),
    ({"DynamicQuantizeLinear": 1, "MatMulInteger": 1}, {"int8": 90, "float32": 10},
     "int8 dynamic"),
    ({"com.microsoft:DynamicQuantizeMatMul": 1}, {"int8": 90}, "int8 dynamic"),
    ({"DequantizeLinear": 1, "MatMul": 1}, {"int8": 90, "float32": 10}, "int8 dynamic"),
    ({"QLinearConv": 1}, {"uint8": 90}, "int8 full"),
    ({"MatMulInteger": 1}, {"int8": 90}, "int8 full"),
    ({"Cast": 2, "MatMul": 1}, {"float16": 90, "float32": 10}, "fp16"),
    ({"DynamicQuantizeLinear": 1}, {"int8": 10, "float16": 90}, "mixed"),
    ({"DynamicQuantizeLinear": 1, "QLinearMatMul": 1}, {"int8": 10}, "mixed"),
])
def test_onnx_quantization_rules(ops: dict[str, int], weights: dict[str, int],
                                 label: str) -> None:
    assert quantization_label(Counter(ops), Counter(weights))[0] == label


def test_custom_ops_are_named_with_their_domain(tmp_path: Path) -> None:
    s = inspect_model(build_custom_op(tmp_path / "c.onnx"))
    assert s.ops == {"com.example.custom:FancyGelu": 1}
    assert s.opset == "ai.onnx:17, com.example.custom:1"
    t = inspect_model(build_tflite_custom_op(tmp_path / "c.tflite"))
    assert t.ops == {"CUSTOM:FancyGelu": 1}


def build_if_model(path: Path) -> Path:
    """An If whose branches each hold a Constant weight: ops and params live in subgraphs."""
    def branch(name: str, value: float) -> onnx.GraphProto:
        const = helper.make_node("Constant", [], [f"{name}_w"], value=numpy_helper.from_array(
            np.full((2, 3), value, np.float32)))
        add = helper.make_node("Add", ["x", f"{name}_w"], [f"{name}_y"])
        return helper.make_graph([const, add], name, [], [
            helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [2, 3])])

    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", 1.0),
                          else_branch=branch("else", -1.0))],
        "if_model",
        [helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def test_ops_and_params_inside_if_branches_are_counted(tmp_path: Path) -> None:
    s = inspect_model(build_if_model(tmp_path / "if.onnx"))
    assert s.ops == {"Add": 2, "Constant": 2, "If": 1}
    assert s.params == 12 and s.weight_dtypes == {"float32": 12}
    assert s.extra["subgraphs"] == 2
    assert s.inputs[0] == TensorInfo("cond", [], "bool")


def test_summary_survives_a_dict_round_trip(models: dict[str, Path]) -> None:
    for path in models.values():
        s = inspect_model(path)
        assert ModelSummary.from_dict(s.to_dict()) == s


@pytest.mark.parametrize(("model", "disguise", "fmt"), [
    ("tflite", "model.onnx", "tflite"), ("onnx", "model.tflite", "onnx"),
    ("onnx", "model.bin", "onnx"), ("tflite", "noext", "tflite"),
])
def test_format_comes_from_content_not_extension(models: dict[str, Path], tmp_path: Path,
                                                 model: str, disguise: str, fmt: str) -> None:
    path = tmp_path / disguise
    path.write_bytes(models[model].read_bytes())
    assert detect_format(path) == fmt
    assert inspect_model(path).format == fmt


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


@pytest.mark.parametrize(("case", "expected"), [
    ("missing", "no such file; check the path"),
    ("empty", "empty file (0 bytes); re-download or re-export the model"),
    ("random", "not an ONNX or TFLite model (unrecognised content, starts with bytes"),
    ("png", "not an ONNX or TFLite model (file starts with PNG image bytes); "
            "pass a .onnx or .tflite file"),
    ("text", "not an ONNX or TFLite model (file is plain text: 'hello'); pass a .onnx"),
    ("lfs", "(file is a Git LFS pointer, not the model itself); run `git lfs pull`"),
    ("zip", "(file is a ZIP archive, e.g. a PyTorch .pt or a Keras .keras); export it to ONNX"),
    ("directory", "is a directory, not a model file"),
    ("truncated_onnx", "truncated ONNX file (a field runs to byte"),
    ("truncated_tflite", "truncated or corrupt TFLite file"),
    ("tflite_header_only", "truncated TFLite file (root table at byte"),
])
def test_bad_files_raise_one_line_naming_the_file(models: dict[str, Path], tmp_path: Path,
                                                  case: str, expected: str) -> None:
    path = tmp_path / "model.onnx"
    onnx_bytes = models["onnx"].read_bytes()
    tfl_bytes = models["tflite"].read_bytes()
    content = {
        "empty": b"",
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "png": PNG,
        "text": b"hello\nworld\n",
        "lfs": b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 10\n",
        "zip": b"PK\x03\x04" + bytes(100),
        "truncated_onnx": onnx_bytes[: len(onnx_bytes) // 2],
        "truncated_tflite": tfl_bytes[: len(tfl_bytes) // 2],
        "tflite_header_only": tfl_bytes[:16],
    }
    if case == "directory":
        path.mkdir()
    elif case != "missing":
        path.write_bytes(content[case])
    with pytest.raises(InvalidModelError) as info:
        inspect_model(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("model", ["onnx", "onnx_int8_full", "tflite", "tflite_fp16"])
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 0.95, 0.999])
def test_every_truncation_is_an_invalid_model_error(models: dict[str, Path], tmp_path: Path,
                                                     model: str, fraction: float) -> None:
    data = models[model].read_bytes()
    path = tmp_path / models[model].name
    path.write_bytes(data[: max(1, int(len(data) * fraction))])
    with pytest.raises(InvalidModelError, match=r"truncated|corrupt|not an ONNX or TFLite"):
        inspect_model(path)


def test_a_model_failing_the_onnx_checker_is_refused(tmp_path: Path) -> None:
    graph = helper.make_graph([helper.make_node("Relu", ["missing"], ["y"])], "broken",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "broken.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InvalidModelError, match=r"broken\.onnx: invalid ONNX model \(.*missing"):
        inspect_model(path)


def test_an_ir_version_newer_than_onnx_knows_says_to_upgrade(models: dict[str, Path],
                                                             tmp_path: Path) -> None:
    model = onnx.load(str(models["onnx"]))
    model.ir_version = 99
    path = tmp_path / "future.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(InvalidModelError, match=r"ir_version 99 is higher.*upgrade the onnx"):
        inspect_model(path)


def test_missing_external_data_says_where_it_should_be(models: dict[str, Path],
                                                      tmp_path: Path) -> None:
    model = onnx.load(str(models["onnx"]))
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.data",
                    size_threshold=0)
    assert inspect_model(path).params == 2410  # counted from dims, data not loaded
    (tmp_path / "ext.data").unlink()
    with pytest.raises(InvalidModelError, match=r"ext\.data.*keep the external data file"):
        inspect_model(path)
