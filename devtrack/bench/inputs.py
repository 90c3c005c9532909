"""Deterministic benchmark inputs from a model's signature, input specs and fills.

Values, per dtype (seeded per input name, so adding an input does not change the others):

- float16/32/64: standard normal × 0.5
- int8, uint8: uniform over the full range (quantized image/audio data)
- int16, int32, int64 and unsigned: uniform in 0..9, safe as token ids, indices and small
  counts (an embedding or Gather never sees an out-of-range index)
- bool: fair coin

Shapes and dtypes, and the errors for missing or unfitting specs, come from
:func:`devtrack.core.input_layout.input_layout`.
"""

from __future__ import annotations

import zlib

import numpy as np

from devtrack.core.input_layout import input_layout
from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.summary import TensorInfo
from devtrack.errors import UsageError

SMALL_INT_HIGH = 10  # integer inputs other than (u)int8 are drawn from 0..SMALL_INT_HIGH-1


def _random(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 0.5).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind in "iu":
        if dtype.itemsize == 1:
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        return rng.integers(0, SMALL_INT_HIGH, size=shape, dtype=dtype)
    raise UsageError(f"devtrack cannot generate values of dtype {dtype}")


def _filled(name: str, shape: tuple[int, ...], dtype: np.dtype,
            value: float | int | bool) -> np.ndarray:
    if dtype.kind in "iu":
        if isinstance(value, float) and not value.is_integer():
            raise UsageError(f"--fill {name}={value}: input {name!r} is {dtype}; give an "
                             f"integer")
        limits = np.iinfo(dtype)
        if not limits.min <= value <= limits.max:
            raise UsageError(f"--fill {name}={value} is out of range for input {name!r} of "
                             f"dtype {dtype} ({limits.min}..{limits.max})")
    try:
        return np.full(shape, value, dtype=dtype)
    except (OverflowError, ValueError):
        raise UsageError(f"--fill {name}={value} does not fit input {name!r} of dtype "
                         f"{dtype}") from None


def make_inputs(inputs: list[TensorInfo], input_specs: list[InputSpec], fills: list[FillSpec],
                seed: int = 0) -> dict[str, np.ndarray]:
    """One C-contiguous array per model input; the same arguments give the same arrays.

    Raises UsageError as :func:`input_layout` does.
    """
    layout = input_layout(inputs, input_specs, fills)
    values = {f.name: f.value for f in fills}
    feeds: dict[str, np.ndarray] = {}
    for info in inputs:
        shape, dtype = layout[info.name]
        if info.name in values:
            feeds[info.name] = _filled(info.name, shape, dtype, values[info.name])
        else:
            rng = np.random.default_rng([seed, zlib.crc32(info.name.encode())])
            feeds[info.name] = np.require(_random(rng, shape, dtype), requirements="C")
    return feeds
