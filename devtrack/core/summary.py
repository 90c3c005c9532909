"""The model summary read from an artifact: inputs, outputs, ops, weights, quantization."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Dim = int | str | None
"""One dimension of a tensor shape: a fixed size, a symbolic name, or unknown (None)."""

QUANTIZATION_LABELS = ("none", "fp16", "int8 dynamic", "int8 full", "mixed")


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output as declared in the file."""

    name: str
    shape: list[Dim] | None
    dtype: str  # numpy dtype name: "float32", "int64", "uint8", ...

    @property
    def is_dynamic(self) -> bool:
        return self.shape is None or any(not isinstance(d, int) or d < 0 for d in self.shape)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorInfo:
        shape = data.get("shape")
        return cls(name=data["name"], shape=list(shape) if shape is not None else None,
                   dtype=data["dtype"])


@dataclass(frozen=True)
class ModelSummary:
    """What a model file is. Produced by ``devtrack.inspection`` for either format."""

    format: str  # "onnx" | "tflite"
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    ops: dict[str, int]  # operator type -> count
    params: int  # number of weight elements
    weight_dtypes: dict[str, int]  # dtype name -> number of weight elements
    quantization: str  # one of QUANTIZATION_LABELS
    opset: str  # e.g. "ai.onnx:17" or "tflite schema 3"
    producer: str  # e.g. "pytorch 2.1" or "TOCO Converted."
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = [t.to_dict() for t in self.inputs]
        data["outputs"] = [t.to_dict() for t in self.outputs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSummary:
        return cls(
            format=data["format"],
            inputs=[TensorInfo.from_dict(t) for t in data["inputs"]],
            outputs=[TensorInfo.from_dict(t) for t in data["outputs"]],
            ops=dict(data["ops"]),
            params=int(data["params"]),
            weight_dtypes=dict(data["weight_dtypes"]),
            quantization=data["quantization"],
            opset=data["opset"],
            producer=data["producer"],
            extra=dict(data.get("extra", {})),
        )
