"""Each model input's concrete shape and dtype from its signature, input specs and fills.

A fixed signature shape is used as is; every dynamic dimension needs ``--input``. Scalar inputs
(rank 0) need ``--fill NAME=VALUE``: they are usually a sample rate, a length or a flag, where a
random value would benchmark something meaningless. ``--input NAME=scalar`` states the shape
explicitly and then gets a random value like any other input. Pure: nothing is allocated, so
registering, planning and pairing check specs here long before a worker generates the values.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devtrack.core.inputspec import FillSpec, InputSpec, check_fill
from devtrack.core.summary import Dim, TensorInfo
from devtrack.core.text import shown
from devtrack.errors import UsageError


def _suggest(name: str, shape: Sequence[Dim] | None) -> str:
    if not shape:
        return f"--input {name}=1x..."
    dims = []
    for i, d in enumerate(shape):
        if isinstance(d, int) and d >= 0:
            dims.append(str(d))
        elif i == 0 and (d is None or "batch" in str(d).lower() or str(d) == "N"):
            dims.append("1")
        else:
            dims.append(f"<{d}>" if isinstance(d, str) else "<size>")
    return f"--input {name}={'x'.join(dims)}"


def _shape_for(info: TensorInfo, spec: InputSpec | None, has_fill: bool) -> tuple[int, ...]:
    if spec is not None:
        if info.shape is not None:
            if len(spec.shape) != len(info.shape):
                raise UsageError(
                    f"--input {spec.to_text()} has {len(spec.shape)} dimension(s) but input "
                    f"{info.name!r} has {len(info.shape)}: {info.shape}")
            for given, declared in zip(spec.shape, info.shape, strict=True):
                if isinstance(declared, int) and declared >= 0 and given != declared:
                    raise UsageError(
                        f"--input {spec.to_text()} does not fit input {info.name!r}, whose "
                        f"shape is {info.shape}; keep its fixed sizes")
        return spec.shape
    if info.shape is None:
        if has_fill:
            return ()  # unknown rank with a value given: a scalar is the only safe guess
        raise UsageError(f"input {info.name!r} has an unknown shape; give one with "
                         f"{_suggest(info.name, None)}")
    if info.is_dynamic:
        raise UsageError(f"input {info.name!r} has dynamic shape {info.shape}; give a shape "
                         f"with {_suggest(info.name, info.shape)}")
    if not info.shape and not has_fill:
        raise UsageError(
            f"input {info.name!r} is a scalar {info.dtype} (often a sample rate, length or "
            f"flag); give its value with --fill {info.name}=VALUE, or --input "
            f"{info.name}=scalar for a random one")
    return tuple(int(d) for d in info.shape)  # type: ignore[arg-type]


def _dtype_for(info: TensorInfo, spec: InputSpec | None) -> np.dtype:
    declared = info.dtype
    if spec is not None and spec.dtype is not None and spec.dtype != declared:
        raise UsageError(f"--input {spec.to_text()} gives dtype {spec.dtype} but input "
                         f"{info.name!r} is {declared} in the model")
    try:
        return np.dtype(declared)
    except TypeError:
        raise UsageError(f"input {info.name!r} has dtype {declared!r}, for which devtrack "
                         f"cannot generate values") from None


def _check_names(kind: str, names: Sequence[str], inputs: Sequence[TensorInfo]) -> None:
    known = {t.name for t in inputs}
    for name in names:
        if name not in known:
            raise UsageError(f"{kind} names {shown(name)}, which is not an input of the model; "
                             f"its inputs are: {', '.join(t.name for t in inputs)}")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UsageError(f"{kind} is given twice for input {shown(name)}")
        seen.add(name)


MAX_INPUT_BYTES = 1 << 30  # synthetic inputs beyond 1 GiB are a typo, not a model


def input_layout(inputs: list[TensorInfo], input_specs: list[InputSpec],
                 fills: list[FillSpec]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each input's concrete shape and dtype, checked, without allocating anything.

    Raises UsageError naming the input (and the flag that fixes it) when a dynamic
    dimension or a scalar has no spec, a spec names no input or does not fit, a fill value
    does not fit the input's dtype, or the inputs together would exceed MAX_INPUT_BYTES.
    """
    _check_names("--input", [s.name for s in input_specs], inputs)
    _check_names("--fill", [f.name for f in fills], inputs)
    specs = {s.name: s for s in input_specs}
    filled = {f.name for f in fills}
    layout = {}
    for info in inputs:
        spec = specs.get(info.name)
        layout[info.name] = (_shape_for(info, spec, info.name in filled), _dtype_for(info, spec))
    for fill in fills:  # a value the dtype cannot hold fails every bench: refuse it now
        check_fill(fill, layout[fill.name][1].name)
    total = sum(int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                for shape, dtype in layout.values())
    if total > MAX_INPUT_BYTES:
        sizes = ", ".join(f"{name}={'x'.join(map(str, shape)) or 'scalar'}"
                          for name, (shape, _) in layout.items())
        raise UsageError(f"the inputs ({sizes}) would take {total / 2**30:.1f} GiB; devtrack "
                         f"generates at most {MAX_INPUT_BYTES >> 30} GiB of synthetic input — "
                         "check the --input shapes")
    return layout
