"""Build tiny real ONNX models with ``onnx.helper``; int8 and fp16 variants of them."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from devtrack.builders import Layer, check_layers, mlp_weights

OPSET = 17
IR_VERSION = 8  # the IR that came with opset 17; every onnxruntime >= 1.12 loads it
PRODUCER = "devtrack-builders"
CUSTOM_DOMAIN = "com.example.custom"
CUSTOM_OP = "FancyGelu"


def _save(graph: onnx.GraphProto, path: Path | str,
          extra_opsets: Mapping[str, int] | None = None) -> Path:
    opsets = [helper.make_opsetid("", OPSET)]
    opsets += [helper.make_opsetid(d, v) for d, v in sorted((extra_opsets or {}).items())]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=PRODUCER,
                              producer_version="1")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model.SerializeToString())
    return out


def _batch(dynamic_batch: bool) -> int | str:
    return "batch" if dynamic_batch else 1


def build_mlp(path: Path | str, in_features: int = 64, hidden: Sequence[int] = (32,),
              classes: int = 10, seed: int = 0, weights: Sequence[Layer] | None = None,
              dynamic_batch: bool = False) -> Path:
    """A dense classifier: (MatMul, Add, Relu) per hidden layer, then MatMul, Add, Softmax.

    Input "input" [1 or "batch", in_features] float32; output "output" [.., classes].
    ``weights`` (a list of (W, b), W shaped (in, out)) overrides the seeded weights and
    then decides in_features and classes.
    """
    layers = check_layers(weights) if weights is not None else mlp_weights(
        in_features, hidden, classes, seed)
    batch = _batch(dynamic_batch)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = "input"
    for i, (w, b) in enumerate(layers):
        inits += [numpy_helper.from_array(w, f"fc{i}.weight"),
                  numpy_helper.from_array(b, f"fc{i}.bias")]
        nodes += [helper.make_node("MatMul", [x, f"fc{i}.weight"], [f"fc{i}.mm"], f"fc{i}_mm"),
                  helper.make_node("Add", [f"fc{i}.mm", f"fc{i}.bias"], [f"fc{i}.out"],
                                   f"fc{i}_add")]
        x = f"fc{i}.out"
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"relu{i}"], f"relu{i}"))
            x = f"relu{i}"
    nodes.append(helper.make_node("Softmax", [x], ["output"], "softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                       [batch, layers[0][0].shape[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT,
                                       [batch, layers[-1][0].shape[1]])],
        inits)
    return _save(graph, path)


def build_matmul_chain(path: Path | str, size: int = 256, layers: int = 20, seed: int = 0,
                       ) -> Path:
    """``layers`` × (MatMul by a size×size weight, Relu) on a [size, size] float32 input.

    Work grows linearly with ``layers`` (size³ multiply-adds each), the knob for sizing a
    benchmark. On the 2-core dev VM, onnxruntime with 1 thread: size 256 costs ~0.14 ms a
    layer (7 layers ≈ 1 ms, 20 ≈ 2.9 ms, 70 ≈ 10 ms); size 128 ~0.02 ms a layer.
    """
    rng = np.random.default_rng(seed)
    scale = np.sqrt(2.0 / size)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = "input"
    for i in range(layers):
        w = (rng.standard_normal((size, size)) * scale).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        out = "output" if i == layers - 1 else f"relu{i}"
        nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"mm{i}"], f"mm{i}"),
                  helper.make_node("Relu", [f"mm{i}"], [out], f"relu{i}")]
        x = out
    graph = helper.make_graph(
        nodes, "matmul_chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [size, size])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [size, size])],
        inits)
    return _save(graph, path)


def build_dynamic_with_scalar(path: Path | str) -> Path:
    """Silero-VAD-like signature: "input" ["batch", "samples"] float32 and scalar int64 "sr".

    Output "output" ["batch", 1] = mean(input over samples) * sr / 16000.
    """
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["mean"], "mean", axes=[1], keepdims=1),
        helper.make_node("Cast", ["sr"], ["sr_f"], "sr_cast", to=TensorProto.FLOAT),
        helper.make_node("Div", ["sr_f", "sr_ref"], ["sr_scale"], "sr_scale"),
        helper.make_node("Mul", ["mean", "sr_scale"], ["output"], "scale"),
    ]
    graph = helper.make_graph(
        nodes, "dynamic_with_scalar",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", "samples"]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(np.array(16000.0, dtype=np.float32), "sr_ref")])
    return _save(graph, path)


def build_custom_op(path: Path | str) -> Path:
    """A valid model whose one op (com.example.custom:FancyGelu) no runtime implements."""
    graph = helper.make_graph(
        [helper.make_node(CUSTOM_OP, ["input"], ["output"], "fancy", domain=CUSTOM_DOMAIN)],
        "custom_op",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8])])
    return _save(graph, path, {CUSTOM_DOMAIN: 1})


def build_nan_output(path: Path | str) -> Path:
    """"input" [1, 4] float32 → "output" = Log(-(|x| + 1)): NaN for every input value."""
    nodes = [
        helper.make_node("Abs", ["input"], ["abs"], "abs"),
        helper.make_node("Add", ["abs", "one"], ["pos"], "add_one"),
        helper.make_node("Neg", ["pos"], ["neg"], "neg"),
        helper.make_node("Log", ["neg"], ["output"], "log"),
    ]
    graph = helper.make_graph(
        nodes, "nan_output",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")])
    return _save(graph, path)


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Mute onnxruntime.quantization's root-logger advice ("consider pre-processing")."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def quantize_int8_dynamic(src: Path | str, dst: Path | str) -> Path:
    """Dynamic int8 quantisation of ``src`` (int8 weights, activations quantised at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_quantizer():
        quantize_dynamic(Path(src), out, weight_type=QuantType.QInt8)
    return out


class _ArrayReader:
    """Feeds calibration arrays to ``quantize_static`` one sample at a time."""

    def __init__(self, input_name: str, arrays: Iterable[np.ndarray]) -> None:
        self._feeds = iter([{input_name: np.asarray(a, dtype=np.float32)} for a in arrays])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # not needed by MinMax calibration, but part of the protocol
        pass


def quantize_int8_static(src: Path | str, dst: Path | str,
                         calibration_arrays: Sequence[np.ndarray]) -> Path:
    """Full int8 QDQ quantisation of a single-input float model, calibrated (MinMax) on
    ``calibration_arrays`` (each shaped like the model input)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = onnx.load(str(src))
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"{src}: quantize_int8_static needs a single-input model, "
                         f"got {inputs}")
    if not calibration_arrays:
        raise ValueError("calibration_arrays is empty")

    class Reader(_ArrayReader, CalibrationDataReader):
        pass

    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_quantizer():
        quantize_static(Path(src), out, Reader(inputs[0], calibration_arrays),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8)
    return out


def build_fp16(src: Path | str, dst: Path | str) -> Path:
    """``src`` with every float32 weight stored as float16, inputs and outputs kept float32.

    Casts are inserted after each float32 input and before each float32 output; meant for
    the flat float graphs these builders make (no subgraphs, no Cast-to-float nodes).
    """
    model = onnx.load(str(src))
    graph = model.graph
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for n in graph.node for a in n.attribute):
        raise ValueError(f"{src}: build_fp16 does not handle subgraphs")
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT:
            half = numpy_helper.to_array(init).astype(np.float16)
            graph.initializer[i].CopyFrom(numpy_helper.from_array(half, init.name))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT:
                half = numpy_helper.to_array(attr.t).astype(np.float16)
                attr.t.CopyFrom(numpy_helper.from_array(half, attr.t.name))
    float_inputs = {i.name for i in graph.input
                    if i.type.tensor_type.elem_type == TensorProto.FLOAT}
    float_outputs = {o.name for o in graph.output
                     if o.type.tensor_type.elem_type == TensorProto.FLOAT}
    renamed = {name: f"{name}_fp16" for name in float_inputs | float_outputs}
    for node in graph.node:
        node.input[:] = [renamed.get(n, n) if n in float_inputs else n for n in node.input]
        node.output[:] = [renamed.get(n, n) if n in float_outputs else n for n in node.output]
    head = [helper.make_node("Cast", [n], [renamed[n]], f"{n}_to_fp16", to=TensorProto.FLOAT16)
            for n in sorted(float_inputs)]
    tail = [helper.make_node("Cast", [renamed[n]], [n], f"{n}_to_fp32", to=TensorProto.FLOAT)
            for n in sorted(float_outputs)]
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    out = Path(dst)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())
    return out
