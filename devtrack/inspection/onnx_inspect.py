"""Summarise an ONNX file: signature, op histogram, weights, quantization, opsets."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import onnx
from onnx import AttributeProto, TensorProto

from devtrack.core.summary import Dim, ModelSummary, TensorInfo
from devtrack.inspection import model_error, onnx_overrun

_DEFAULT_DOMAINS = ("", "ai.onnx")
_TWO_GB = 2**31
_DTYPE_NAMES = {"FLOAT": "float32", "DOUBLE": "float64", "STRING": "object"}
_INT8_DTYPES = ("int8", "uint8", "int4", "uint4")
_DYNAMIC_OPS = {"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "DynamicQuantizeLSTM",
                "MatMulIntegerToFloat"}
_INTEGER_OPS = {"MatMulInteger", "ConvInteger"}
_STATIC_OPS = {"QuantizeLinear", "QGemm", "QAttention", "QOrderedMatMul"}
_FIX_FILE = "re-download or re-export the model"


def dtype_name(elem_type: int) -> str:
    """numpy-style name of an ONNX ``TensorProto.DataType`` ("float32", "int64", ...)."""
    try:
        name = TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"onnx-type-{elem_type}"
    return _DTYPE_NAMES.get(name, name.lower())


def _s(value: str | bytes) -> str:
    """A proto2 string field; protobuf hands back bytes when the file holds invalid UTF-8."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _load(path: Path) -> onnx.ModelProto:
    data = path.read_bytes()
    need = onnx_overrun(data, len(data))
    if need is not None and need > 0:
        raise model_error(path, f"truncated ONNX file (a field runs to byte {need:,} but the "
                                f"file has {len(data):,} bytes)", _FIX_FILE)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError or RuntimeError, by backend
        raise model_error(path, f"corrupt ONNX file ({_first_line(exc)})", _FIX_FILE) from None
    if not model.HasField("graph"):
        raise model_error(path, "ONNX file has no graph", _FIX_FILE)
    external = any(t.data_location == TensorProto.EXTERNAL for g in _graphs(model.graph)
                   for t in g.initializer)
    try:
        if external or len(data) >= _TWO_GB:  # the checker must see the sidecar files
            onnx.checker.check_model(str(path))
        else:
            onnx.checker.check_model(model)
    except Exception as exc:
        detail = _first_line(exc)
        if "is higher than the checker's" in detail:
            fix = "upgrade the onnx package (pip install -U onnx) or export for an older IR"
        elif external and "should be stored in" in detail:
            fix = "keep the external data file beside the model"
        else:
            fix = "re-export the model"
        raise model_error(path, f"invalid ONNX model ({detail})", fix) from None
    return model


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """The graph and every subgraph nested in If/Loop/Scan attributes."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _graphs(sub)


def _op_name(node: onnx.NodeProto) -> str:
    op_type = _s(node.op_type)
    return op_type if node.domain in _DEFAULT_DOMAINS else f"{_s(node.domain)}:{op_type}"


def _elements(tensor: TensorProto) -> int:
    return math.prod(tensor.dims)


def _weights(graphs: list[onnx.GraphProto]) -> Counter[str]:
    """Elements per dtype over initializers and Constant-node tensors of every graph."""
    counts: Counter[str] = Counter()
    for graph in graphs:
        for t in graph.initializer:
            counts[dtype_name(t.data_type)] += _elements(t)
        for sp in graph.sparse_initializer:
            counts[dtype_name(sp.values.data_type)] += _elements(sp.values)
        for node in graph.node:
            if node.op_type != "Constant" or node.domain not in _DEFAULT_DOMAINS:
                continue
            for attr in node.attribute:
                if attr.name == "value":
                    counts[dtype_name(attr.t.data_type)] += _elements(attr.t)
                elif attr.name == "sparse_value":
                    counts[dtype_name(attr.sparse_tensor.values.data_type)] += _elements(
                        attr.sparse_tensor.values)
                elif attr.name in ("value_float", "value_floats"):
                    counts["float32"] += 1 if attr.name == "value_float" else len(attr.floats)
                elif attr.name in ("value_int", "value_ints"):
                    counts["int64"] += 1 if attr.name == "value_int" else len(attr.ints)
    return counts


def _tensor_info(value: onnx.ValueInfoProto) -> TensorInfo:
    kind = value.type.WhichOneof("value")
    if kind not in ("tensor_type", "sparse_tensor_type"):
        return TensorInfo(_s(value.name), None, (kind or "unknown").removesuffix("_type"))
    ttype = getattr(value.type, kind)
    shape: list[Dim] | None = None
    if ttype.HasField("shape"):
        shape = []
        for dim in ttype.shape.dim:
            which = dim.WhichOneof("value")
            shape.append(dim.dim_value if which == "dim_value"
                         else _s(dim.dim_param) if which == "dim_param" else None)
    return TensorInfo(_s(value.name), shape, dtype_name(ttype.elem_type))


def quantization_label(ops: Counter[str], weights: Counter[str]) -> tuple[str, str]:
    """The quantization label and a one-line detail, from op types and weight dtypes."""
    op_types = {name.split(":")[-1] for name in ops}
    int8 = sum(weights[d] for d in _INT8_DTYPES)
    fp16 = weights["float16"] + weights["bfloat16"]
    fp32 = weights["float32"] + weights["float64"]
    dynamic = bool(op_types & _DYNAMIC_OPS)
    static = bool(op_types & _STATIC_OPS) or any(t.startswith("QLinear") for t in op_types) or (
        bool(op_types & _INTEGER_OPS) and not dynamic)
    weight_only = not (dynamic or static) and "DequantizeLinear" in op_types and int8 > 0
    schemes: list[str] = []
    details: list[str] = []
    if dynamic or weight_only:
        schemes.append("int8 dynamic")
        details.append(f"int8 weights ({int8:,} elements), float activations"
                       + (" (weight-only DequantizeLinear)" if weight_only else ""))
    if static:
        schemes.append("int8 full")
        details.append(f"int8 weights ({int8:,} elements) and int8 activations")
    if fp16 > fp32:
        schemes.append("fp16")
        details.append(f"float16 weights ({fp16:,} elements)")
    if not schemes:
        return "none", "float weights and activations"
    return (schemes[0] if len(schemes) == 1 else "mixed"), "; ".join(details)


def inspect_onnx(path: Path) -> ModelSummary:
    """Summarise the ONNX model at ``path``; InvalidModelError if it does not load or check."""
    path = Path(path)
    model = _load(path)
    graphs = list(_graphs(model.graph))
    ops: Counter[str] = Counter(_op_name(n) for g in graphs for n in g.node)
    weights = _weights(graphs)
    label, detail = quantization_label(ops, weights)
    initializers = {t.name for t in model.graph.initializer}
    opsets = sorted((_s(o.domain) or "ai.onnx", o.version) for o in model.opset_import)
    opsets.sort(key=lambda o: o[0] != "ai.onnx")
    producer = " ".join(_s(p) for p in (model.producer_name, model.producer_version) if p)
    return ModelSummary(
        format="onnx",
        inputs=[_tensor_info(v) for v in model.graph.input if v.name not in initializers],
        outputs=[_tensor_info(v) for v in model.graph.output],
        ops=dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        params=sum(weights.values()),
        weight_dtypes=dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))),
        quantization=label,
        opset=", ".join(f"{domain}:{version}" for domain, version in opsets),
        producer=producer,
        extra={
            "ir_version": model.ir_version,
            "graph_name": _s(model.graph.name),
            "nodes": sum(ops.values()),
            "subgraphs": len(graphs) - 1,
            "functions": len(model.functions),
            "metadata": {_s(p.key): _s(p.value) for p in model.metadata_props},
            "quantization_detail": detail,
            "file_bytes": path.stat().st_size,
        },
    )
