"""Input specs: shapes for dynamic dimensions (``--input``) and fixed values (``--fill``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from devtrack.core.text import clip, shown
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
        raise UsageError(f"bad --input spec {shown(text)}: {hint}")
    dims_text, _, dtype = rest.partition(":")
    if dtype and dtype not in DTYPES:
        raise UsageError(
            f"bad --input spec {shown(text)}: unknown dtype {shown(dtype)} "
            f"(use one of {', '.join(DTYPES)})"
        )
    if dims_text in ("scalar", "()"):
        return InputSpec(name, (), dtype or None)
    dims: list[int] = []
    for part in dims_text.replace("X", "x").split("x"):
        if not part.isdigit() or int(part) <= 0:
            raise UsageError(f"bad --input spec {shown(text)}: dimension {shown(part)} is not "
                             f"a positive integer; {hint}")
        dims.append(int(part))
    return InputSpec(name, tuple(dims), dtype or None)


def parse_fill_spec(text: str) -> FillSpec:
    """Parse ``NAME=VALUE`` where VALUE is an int, a float, true or false."""
    name, sep, raw = text.partition("=")
    if not sep or not name or not _NAME_RE.match(name) or not raw:
        raise UsageError(f"bad --fill spec {shown(text)}: expected NAME=VALUE, "
                         "e.g. --fill sr=16000")
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
                    f"bad --fill spec {shown(text)}: {shown(raw)} is not a number or true/false"
                ) from None
    return FillSpec(name, value)


_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1), "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1),
}
_FLOAT_MAX = {"float16": 65504.0, "float32": 3.4028234663852886e38,
              "float64": 1.7976931348623157e308}


def fill_problem(value: float | int | bool, dtype: str) -> str | None:
    """What is wrong with ``value`` as an input of ``dtype``, with the values it takes, or
    None when it fits exactly. Unknown dtypes are left to the code that generates inputs."""
    if dtype == "bool":
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return None
        return "give true or false (or 1 / 0)"
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or (isinstance(value, float) and not (
                math.isfinite(value) and value.is_integer())):
            return f"give an integer ({low}..{high})"
        return None if low <= int(value) <= high else f"out of range ({low}..{high})"
    if dtype in _FLOAT_MAX:
        top = _FLOAT_MAX[dtype]
        if isinstance(value, bool):
            return f"give a number (±{top:g}, or nan, inf)"
        out_of_range = f"out of range (±{top:g}; nan and inf are allowed)"
        try:
            number = float(value)
        except OverflowError:  # an integer beyond float64
            return out_of_range
        return None if not math.isfinite(number) or abs(number) <= top else out_of_range
    return None


def check_fill(fill: FillSpec, dtype: str) -> None:
    """UsageError naming the input, its dtype and the values it takes when ``fill`` does
    not fit an input of ``dtype`` (a sample rate of 1e23 for an int64, nan for an int)."""
    problem = fill_problem(fill.value, dtype)
    if problem is not None:
        raise UsageError(f"--fill {clip(fill.to_text())} does not fit input "
                         f"{shown(fill.name)}, which is {dtype}: {problem}")
