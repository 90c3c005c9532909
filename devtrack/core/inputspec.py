"""Input specs: shapes for dynamic dimensions (``--input``) and fixed values (``--fill``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from devtrack.errors import UsageError

DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")
_NAME_RE = re.compile(r"^[^=\s]+$")


@dataclass(frozen=True)
class InputSpec:
    """A concrete shape (and optionally dtype) for one model input."""

    name: str
    shape: tuple[int, ...]
    dtype: str | None = None

    def to_text(self) -> str:
        dims = "x".join(str(d) for d in self.shape) if self.shape else "scalar"
        return f"{self.name}={dims}" + (f":{self.dtype}" if self.dtype else "")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputSpec:
        return cls(data["name"], tuple(int(d) for d in data["shape"]), data.get("dtype"))


@dataclass(frozen=True)
class FillSpec:
    """A fixed value for one input, e.g. a sample rate ``sr=16000``."""

    name: str
    value: float | int | bool

    def to_text(self) -> str:
        return f"{self.name}={self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FillSpec:
        return cls(data["name"], data["value"])


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``NAME=1x3x224x224[:dtype]``; ``NAME=scalar[:dtype]`` is a 0-d input."""
    hint = "expected NAME=DIMxDIMx...[:dtype], e.g. --input image=1x3x224x224:float32"
    name, sep, rest = text.partition("=")
    if not sep or not name or not _NAME_RE.match(name) or not rest:
        raise UsageError(f"bad --input spec {text!r}: {hint}")
    dims_text, _, dtype = rest.partition(":")
    if dtype and dtype not in DTYPES:
        raise UsageError(
            f"bad --input spec {text!r}: unknown dtype {dtype!r} (use one of {', '.join(DTYPES)})"
        )
    if dims_text in ("scalar", "()"):
        return InputSpec(name, (), dtype or None)
    dims: list[int] = []
    for part in dims_text.replace("X", "x").split("x"):
        if not part.isdigit() or int(part) <= 0:
            raise UsageError(f"bad --input spec {text!r}: dimension {part!r} is not a positive "
                             f"integer; {hint}")
        dims.append(int(part))
    return InputSpec(name, tuple(dims), dtype or None)


def parse_fill_spec(text: str) -> FillSpec:
    """Parse ``NAME=VALUE`` where VALUE is an int, a float, true or false."""
    name, sep, raw = text.partition("=")
    if not sep or not name or not _NAME_RE.match(name) or not raw:
        raise UsageError(f"bad --fill spec {text!r}: expected NAME=VALUE, e.g. --fill sr=16000")
    value: float | int | bool
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        try:
            value = int(raw)
        except ValueError:
            try:
                value = float(raw)
            except ValueError:
                raise UsageError(
                    f"bad --fill spec {text!r}: {raw!r} is not a number or true/false"
                ) from None
    return FillSpec(name, value)
