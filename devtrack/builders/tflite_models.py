"""Build tiny real TFLite models with the flatbuffer object API that LiteRT ships."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from devtrack.builders import Layer, check_layers, mlp_weights

SCHEMA_VERSION = 3
DESCRIPTION = "devtrack-builders"
CUSTOM_OP = "FancyGelu"
WEIGHT_DTYPES = ("float32", "float16", "int8")
_TENSOR_TYPES = {"float32": tfl.TensorType.FLOAT32, "float16": tfl.TensorType.FLOAT16,
                 "int8": tfl.TensorType.INT8}
_DEPRECATED_CODE_LIMIT = 127  # builtin codes above this live only in OperatorCode.builtin_code


class _AlignedBufferT(tfl.BufferT):
    """A buffer whose bytes start on a 16-byte boundary, as the TFLite converter writes them."""

    def Pack(self, builder: flatbuffers.Builder) -> int:
        data = None
        if self.data is not None:
            payload = bytes(self.data)
            builder.StartVector(1, len(payload), 16)
            builder.head = builder.head - len(payload)
            builder.Bytes[builder.head:builder.head + len(payload)] = payload
            builder.vectorNumElems = len(payload)
            data = builder.EndVector()
        tfl.BufferStart(builder)
        if data is not None:
            tfl.BufferAddData(builder, data)
        return int(tfl.BufferEnd(builder))


class _Graph:
    """Accumulates tensors, buffers, op codes and operators of one-subgraph model."""

    def __init__(self) -> None:
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [_AlignedBufferT()]  # buffer 0 is the empty sentinel
        self.opcodes: list[Any] = []
        self.operators: list[Any] = []

    def tensor(self, name: str, shape: Sequence[int], dtype: int = tfl.TensorType.FLOAT32,
               data: np.ndarray | None = None, signature: Sequence[int] | None = None,
               quantization: Any = None) -> int:
        t = tfl.TensorT()
        t.name, t.shape, t.type = name, list(shape), dtype
        t.shapeSignature = list(signature) if signature is not None else None
        t.quantization = quantization
        if data is not None:
            buf = _AlignedBufferT()
            buf.data = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).view(
                np.uint8).ravel()
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, builtin: int, inputs: Sequence[int], outputs: Sequence[int],
           options_type: int = 0, options: Any = None, custom_code: str | None = None) -> None:
        key = (builtin, custom_code)
        codes = [(c.builtinCode, c.customCode) for c in self.opcodes]
        if key not in codes:
            code = tfl.OperatorCodeT()
            code.builtinCode = builtin
            code.deprecatedBuiltinCode = min(builtin, _DEPRECATED_CODE_LIMIT)
            code.customCode = custom_code
            code.version = 1
            self.opcodes.append(code)
            codes.append(key)
        o = tfl.OperatorT()
        o.opcodeIndex = codes.index(key)
        o.inputs, o.outputs = list(inputs), list(outputs)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        self.operators.append(o)

    def save(self, path: Path | str, inputs: Sequence[int], outputs: Sequence[int]) -> Path:
        sub = tfl.SubGraphT()
        sub.tensors, sub.operators, sub.name = self.tensors, self.operators, "main"
        sub.inputs, sub.outputs = list(inputs), list(outputs)
        sig = tfl.SignatureDefT()
        sig.signatureKey, sig.subgraphIndex = "serving_default", 0
        sig.inputs = [_tensor_map(self.tensors[i].name, i) for i in inputs]
        sig.outputs = [_tensor_map(self.tensors[i].name, i) for i in outputs]
        model = tfl.ModelT()
        model.version, model.description = SCHEMA_VERSION, DESCRIPTION
        model.operatorCodes, model.subgraphs, model.buffers = self.opcodes, [sub], self.buffers
        model.signatureDefs = [sig]
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(bytes(builder.Output()))
        return out


def _tensor_map(name: str, index: int) -> Any:
    m = tfl.TensorMapT()
    m.name, m.tensorIndex = name, index
    return m


def _weight_tensor(g: _Graph, name: str, value: np.ndarray, weight_dtype: str) -> int:
    """A constant float32 operand, stored as ``weight_dtype`` (fp16 adds a DEQUANTIZE op)."""
    if weight_dtype == "float32":
        return g.tensor(name, value.shape, data=value.astype(np.float32))
    if weight_dtype == "float16":
        half = g.tensor(f"{name}_fp16", value.shape, tfl.TensorType.FLOAT16,
                        data=value.astype(np.float16))
        full = g.tensor(name, value.shape)
        g.op(tfl.BuiltinOperator.DEQUANTIZE, [half], [full])
        return full
    # Symmetric per-tensor int8: FULLY_CONNECTED then runs its hybrid (dynamic-range) kernel.
    scale = float(np.abs(value).max()) / 127.0 or 1.0
    q = tfl.QuantizationParametersT()
    q.scale, q.zeroPoint = [scale], [0]
    data = np.clip(np.round(value / scale), -127, 127).astype(np.int8)
    return g.tensor(f"{name}_int8", value.shape, tfl.TensorType.INT8, data=data, quantization=q)


def build_tflite_mlp(path: Path | str, in_features: int = 64, hidden: Sequence[int] = (32,),
                     classes: int = 10, seed: int = 0, weights: Sequence[Layer] | None = None,
                     dynamic_batch: bool = False, weight_dtype: str = "float32") -> Path:
    """The MLP of ``onnx_models.build_mlp`` as FULLY_CONNECTED (+fused RELU) ops and SOFTMAX.

    Same seed or same ``weights`` (list of (W, b), W shaped (in, out)) → same outputs as
    the ONNX model. ``weight_dtype``: "float32"; "float16" (fp16 weights + DEQUANTIZE);
    "int8" (symmetric int8 weights, float biases and activations: dynamic-range quantised).
    Input "input" [1, in_features] (shape signature [-1, ..] with ``dynamic_batch``).
    """
    if weight_dtype not in WEIGHT_DTYPES:
        raise ValueError(f"weight_dtype must be one of {WEIGHT_DTYPES}, got {weight_dtype!r}")
    layers = check_layers(weights) if weights is not None else mlp_weights(
        in_features, hidden, classes, seed)
    sig_batch = -1 if dynamic_batch else 1
    g = _Graph()
    n_in = layers[0][0].shape[0]
    x = g.tensor("input", [1, n_in], signature=[sig_batch, n_in])
    first = x
    for i, (w, b) in enumerate(layers):
        n_out = w.shape[1]
        w_t = _weight_tensor(g, f"fc{i}.weight", np.ascontiguousarray(w.T), weight_dtype)
        b_dtype = "float32" if weight_dtype == "int8" else weight_dtype
        b_t = _weight_tensor(g, f"fc{i}.bias", b, b_dtype)
        y = g.tensor(f"fc{i}.out", [1, n_out], signature=[sig_batch, n_out])
        opts = tfl.FullyConnectedOptionsT()
        last = i == len(layers) - 1
        opts.fusedActivationFunction = (tfl.ActivationFunctionType.NONE if last
                                        else tfl.ActivationFunctionType.RELU)
        g.op(tfl.BuiltinOperator.FULLY_CONNECTED, [x, w_t, b_t], [y],
             tfl.BuiltinOptions.FullyConnectedOptions, opts)
        x = y
    n_cls = layers[-1][0].shape[1]
    out = g.tensor("output", [1, n_cls], signature=[sig_batch, n_cls])
    soft = tfl.SoftmaxOptionsT()
    soft.beta = 1.0
    g.op(tfl.BuiltinOperator.SOFTMAX, [x], [out], tfl.BuiltinOptions.SoftmaxOptions, soft)
    return g.save(path, [first], [out])


def build_tflite_custom_op(path: Path | str) -> Path:
    """A valid model whose one op is CUSTOM "FancyGelu", which no runtime registers."""
    g = _Graph()
    x = g.tensor("input", [1, 8])
    y = g.tensor("output", [1, 8])
    g.op(tfl.BuiltinOperator.CUSTOM, [x], [y], custom_code=CUSTOM_OP)
    return g.save(path, [x], [y])
