"""Summarise a TFLite flatbuffer: signature, op histogram, weights, quantization, metadata."""

from __future__ import annotations

import math
import struct
from collections import Counter
from pathlib import Path
from typing import Any

from ai_edge_litert import schema_py_generated as tfl

from devtrack.core.summary import Dim, ModelSummary, TensorInfo
from devtrack.inspection import model_error

_FIX_FILE = "re-download or re-convert the model"
_OP_NAMES = {v: k for k, v in vars(tfl.BuiltinOperator).items()
             if not k.startswith("_") and isinstance(v, int)}
_DTYPE_NAMES = {"FLOAT32": "float32", "FLOAT16": "float16", "FLOAT64": "float64",
                "STRING": "object", "RESOURCE": "resource", "VARIANT": "variant"}
_TYPE_NAMES = {v: _DTYPE_NAMES.get(k, k.lower()) for k, v in vars(tfl.TensorType).items()
               if not k.startswith("_") and isinstance(v, int)}
_INT8_DTYPES = ("int8", "uint8", "int4", "uint4", "int2")
_QUANT_ACTIVATION_DTYPES = ("int8", "uint8", "int16")


def dtype_name(tensor_type: int) -> str:
    """numpy-style name of a TFLite ``TensorType`` ("float32", "int8", ...)."""
    return _TYPE_NAMES.get(tensor_type, f"tflite-type-{tensor_type}")


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _ints(vector: Any) -> list[int]:
    """A flatbuffer int vector (numpy array, list or None) as a list."""
    return [] if vector is None else [int(v) for v in vector]


def _check_structure(model: Any, size: int) -> str | None:
    """What is out of range in a parsed model, or None; catches truncated/corrupt files
    that the flatbuffer reader parses without complaint."""
    if not model.subgraphs:
        return "the model has no subgraph"
    n_buffers, n_codes = len(model.buffers or []), len(model.operatorCodes or [])
    for i, buf in enumerate(model.buffers or []):
        if buf.offset > 1 and buf.offset + buf.size > size:  # weights stored after the flatbuffer
            return f"buffer {i} ends at byte {buf.offset + buf.size:,} of {size:,}"
    for s, sub in enumerate(model.subgraphs):
        tensors = sub.tensors or []
        for t in tensors:
            if not 0 <= t.buffer < max(n_buffers, 1):
                return f"subgraph {s}: tensor {_text(t.name)!r} uses missing buffer {t.buffer}"
        for op in sub.operators or []:
            if not 0 <= op.opcodeIndex < n_codes:
                return f"subgraph {s}: an operator uses missing op code {op.opcodeIndex}"
            for idx in _ints(op.inputs) + _ints(op.outputs):
                if not -1 <= idx < len(tensors):  # -1 marks an omitted optional input
                    return f"subgraph {s}: an operator uses missing tensor {idx}"
        for idx in _ints(sub.inputs) + _ints(sub.outputs):
            if not 0 <= idx < len(tensors):
                return f"subgraph {s}: input/output {idx} is not a tensor"
    return None


def _load(path: Path) -> tuple[Any, int]:
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise model_error(path, "not a TFLite file (no TFL3 identifier at bytes 4-8)",
                          "pass a .tflite flatbuffer")
    root = struct.unpack_from("<I", data, 0)[0]
    if root + 4 > len(data):
        raise model_error(path, f"truncated TFLite file (root table at byte {root:,}, file "
                                f"has {len(data):,} bytes)", _FIX_FILE)
    try:
        model = tfl.ModelT.InitFromPackedBuf(data, 0)
    except (struct.error, IndexError, ValueError):  # a read past the end of the bytes
        raise model_error(path, f"truncated or corrupt TFLite file (the flatbuffer refers to "
                                f"data past the end of its {len(data):,} bytes)",
                          _FIX_FILE) from None
    except Exception as exc:
        raise model_error(path, f"corrupt TFLite file (cannot parse: {type(exc).__name__})",
                          _FIX_FILE) from None
    problem = _check_structure(model, len(data))
    if problem:
        raise model_error(path, f"truncated or corrupt TFLite file ({problem})", _FIX_FILE)
    return model, len(data)


def _op_name(code: Any) -> str:
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == tfl.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{_text(code.customCode)}"
    return _OP_NAMES.get(builtin, f"BUILTIN_{builtin}")


def _tensor_info(t: Any) -> TensorInfo:
    dims = _ints(t.shapeSignature if t.shapeSignature is not None else t.shape)
    shape: list[Dim] = [None if d < 0 else d for d in dims]
    return TensorInfo(_text(t.name), shape, dtype_name(t.type))


def _has_data(buf: Any) -> bool:
    return (buf.data is not None and len(buf.data) > 0) or buf.offset > 1


def quantization_label(model: Any, weights: Counter[str], ops: Counter[str]) -> tuple[str, str]:
    """The quantization label and a one-line detail, from weight and activation dtypes."""
    int8 = sum(weights[d] for d in _INT8_DTYPES)
    fp16, fp32 = weights["float16"], weights["float32"]
    quantized_activations = any(
        dtype_name(t.type) in _QUANT_ACTIVATION_DTYPES and not _has_data(model.buffers[t.buffer])
        and t.quantization is not None and t.quantization.scale is not None
        and len(t.quantization.scale) > 0
        for sub in model.subgraphs for t in (sub.tensors or []))
    schemes: list[str] = []
    details: list[str] = []
    if int8:
        schemes.append("int8 full" if quantized_activations else "int8 dynamic")
        details.append(f"int8 weights ({int8:,} elements), "
                       + ("quantized activations" if quantized_activations
                          else "float activations"))
    if fp16 and (fp16 > fp32 or "DEQUANTIZE" in ops):
        schemes.append("fp16")
        details.append(f"float16 weights ({fp16:,} elements)"
                       + (" dequantized at load" if "DEQUANTIZE" in ops else ""))
    if not schemes:
        return "none", "float weights and activations"
    return (schemes[0] if len(schemes) == 1 else "mixed"), "; ".join(details)


def _metadata(model: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for md in model.metadata or []:
        name = _text(md.name)
        buf = model.buffers[md.buffer] if 0 <= md.buffer < len(model.buffers or []) else None
        raw = bytes(buf.data) if buf is not None and buf.data is not None else b""
        text = raw.rstrip(b"\x00")
        if text and all(32 <= b < 127 for b in text):
            out[name] = text.decode("ascii")
        else:
            out[name] = f"<{len(raw):,} bytes>"
    return out


def _signatures(model: Any) -> dict[str, dict[str, list[str]]]:
    return {_text(sig.signatureKey): {"inputs": [_text(m.name) for m in sig.inputs or []],
                                      "outputs": [_text(m.name) for m in sig.outputs or []]}
            for sig in model.signatureDefs or []}


def inspect_tflite(path: Path) -> ModelSummary:
    """Summarise the TFLite model at ``path``; InvalidModelError if it is truncated/corrupt."""
    path = Path(path)
    model, size = _load(path)
    ops: Counter[str] = Counter(_op_name(model.operatorCodes[op.opcodeIndex])
                                for sub in model.subgraphs for op in sub.operators or [])
    weights: Counter[str] = Counter()
    seen: set[int] = set()  # tensors may share a buffer; count its elements once
    for sub in model.subgraphs:
        for t in sub.tensors or []:
            if t.buffer in seen or not _has_data(model.buffers[t.buffer]):
                continue
            seen.add(t.buffer)
            weights[dtype_name(t.type)] += math.prod(_ints(t.shape))
    label, detail = quantization_label(model, weights, ops)
    metadata = _metadata(model)
    main = model.subgraphs[0]
    producer = _text(model.description)
    if "min_runtime_version" in metadata:
        producer = f"{producer} (min runtime {metadata['min_runtime_version']})".strip()
    return ModelSummary(
        format="tflite",
        inputs=[_tensor_info(main.tensors[i]) for i in _ints(main.inputs)],
        outputs=[_tensor_info(main.tensors[i]) for i in _ints(main.outputs)],
        ops=dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        params=sum(weights.values()),
        weight_dtypes=dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))),
        quantization=label,
        opset=f"tflite schema v{model.version}",
        producer=producer,
        extra={
            "subgraphs": len(model.subgraphs),
            "tensors": sum(len(sub.tensors or []) for sub in model.subgraphs),
            "signatures": _signatures(model),
            "metadata": metadata,
            "quantization_detail": detail,
            "file_bytes": size,
        },
    )
