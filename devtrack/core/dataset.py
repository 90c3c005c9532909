"""Evaluation datasets as plain data, and whether a dataset fits a model's inputs and outputs."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtrack.core.summary import Dim, TensorInfo
from devtrack.core.text import shown
from devtrack.errors import UsageError

LABELS = "labels"
TASKS = ("classification", "regression")
FEED_ROWS = "rows"  # the array holds one row per sample; the model's batch axis of 1 is added
FEED_SAMPLES = "samples"  # the array holds the model input's full shape per sample
FEED_FILL = "fill"  # not in the dataset: the release's (or --fill's) fixed value is used
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2,
             "int32": 4, "uint32": 4, "float32": 4, "int64": 8, "uint64": 8, "float64": 8}


def check_dataset_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise UsageError(f"invalid dataset name {shown(name)}: use letters, digits, '.', '_', "
                         "'-' or '+' (e.g. digits-test)")
    return name


def check_task(task: str) -> str:
    if task not in TASKS:
        raise UsageError(f"unknown task {shown(task)}; choose one of {', '.join(TASKS)}")
    return task


@dataclass(frozen=True)
class ArraySpec:
    """One array of a dataset file: its shape (first axis = samples) and dtype."""

    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[float, float] | None = None  # kept for labels only

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"shape": list(self.shape), "dtype": self.dtype}
        if self.value_range is not None:
            data["range"] = list(self.value_range)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArraySpec:
        rng = data.get("range")
        return cls(tuple(int(d) for d in data["shape"]), str(data["dtype"]),
                   (float(rng[0]), float(rng[1])) if rng else None)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    @property
    def nbytes(self) -> int | None:
        """Bytes of the array's data, uncompressed (None for a dtype devtrack cannot size)."""
        itemsize = _ITEMSIZE.get(self.dtype)
        return None if itemsize is None else math.prod(self.shape) * itemsize


@dataclass(frozen=True)
class Dataset:
    """A registered evaluation dataset: a content-addressed ``.npz`` and what it holds."""

    id: int
    name: str
    sha256: str
    task: str
    samples: int
    arrays: dict[str, ArraySpec]
    has_labels: bool
    source_name: str | None = None
    created_at: str = ""
    created_by: str = ""
    used_by: list[str] = field(default_factory=list)  # model lines using it as their default

    @property
    def input_arrays(self) -> dict[str, ArraySpec]:
        return {k: v for k, v in self.arrays.items() if k != LABELS}

    @property
    def labels(self) -> ArraySpec | None:
        return self.arrays.get(LABELS)

    @property
    def nbytes(self) -> int | None:
        """The arrays' bytes, uncompressed, as recorded when the dataset was added."""
        sizes = [spec.nbytes for spec in self.arrays.values()]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "task": self.task,
                "samples": self.samples,
                "arrays": {k: v.to_dict() for k, v in self.arrays.items()},
                "has_labels": self.has_labels, "source_name": self.source_name,
                "created_at": self.created_at, "created_by": self.created_by,
                "default_for": list(self.used_by)}


def _shape_text(dims: Sequence[Dim | int]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def check_arrays(arrays: dict[str, ArraySpec], task: str | None,
                 label_integral: bool = True) -> tuple[int, str]:
    """A dataset's own consistency; returns (sample count, task).

    Every array has a first axis of the same length ≥ 1; ``labels`` (optional) has one entry
    per sample. ``task`` None is inferred: integer labels → classification, float labels →
    regression, no labels → classification (only fidelity is measured then).
    """
    inputs = {k: v for k, v in arrays.items() if k != LABELS}
    if not inputs:
        raise UsageError("the dataset holds no input arrays (only labels); save one array per "
                         "model input, named as the input")
    counts: dict[str, int] = {}
    for name, spec in inputs.items():
        if not spec.shape:
            raise UsageError(f"array {name!r} is a scalar; its first axis must be the samples")
        counts[name] = spec.shape[0]
    n = next(iter(counts.values()))
    if any(c != n for c in counts.values()):
        listed = ", ".join(f"{k} {c}" for k, c in counts.items())
        raise UsageError(f"the arrays disagree on the number of samples (first axis): {listed}")
    if n < 1:
        raise UsageError("the dataset has 0 samples")
    labels = arrays.get(LABELS)
    if labels is not None:
        length = labels.shape[0] if labels.shape else 1
        if length != n or not labels.shape:
            raise UsageError(f"labels has {length} entr{'y' if length == 1 else 'ies'} but the "
                             f"arrays have {n} samples; give one label per sample")
    if task is None:
        task = "regression" if labels is not None and labels.dtype.startswith(
            ("float", "complex")) else "classification"
    check_task(task)
    if task == "classification" and labels is not None:
        if math.prod(labels.sample_shape) != 1:
            raise UsageError(f"classification labels must be one class id per sample, shape "
                             f"({n},); got {_shape_text(labels.shape)}")
        if not label_integral or labels.dtype.startswith(("complex", "bool")):
            raise UsageError(f"classification labels must be integer class ids, got "
                             f"{labels.dtype} values; use --task regression for targets")
        if labels.value_range is not None and labels.value_range[0] < 0:
            raise UsageError(f"classification labels must be class ids >= 0; found "
                             f"{labels.value_range[0]:g}")
    return n, task


def _is_batch_dim(dim: Dim) -> bool:
    return dim is None or isinstance(dim, str) or (isinstance(dim, int) and dim in (1, -1))


def _fits(given: Sequence[int], declared: Sequence[Dim]) -> bool:
    if len(given) != len(declared):
        return False
    return all(not isinstance(d, int) or d < 0 or g == d
               for g, d in zip(given, declared, strict=True))


def expected_shape(info: TensorInfo) -> str:
    """How a dataset array for ``info`` must look, e.g. ``(N, 16)``."""
    if info.shape is None:
        return "(N, …)"
    dims: list[Dim] = list(info.shape[1:]) if info.shape and _is_batch_dim(info.shape[0]) \
        else list(info.shape)
    return "(" + ", ".join(["N", *("?" if d is None else str(d) for d in dims)]) + ")"


def plan_feeds(dataset: Dataset, inputs: list[TensorInfo], fills: Collection[str],
               model_ref: str) -> dict[str, str]:
    """How each model input is fed from ``dataset``: FEED_ROWS, FEED_SAMPLES or FEED_FILL.

    Raises UsageError naming the dataset array, the input and the shape or dtype it needs.
    """
    feeds: dict[str, str] = {}
    arrays = dataset.input_arrays
    for info in inputs:
        spec = arrays.get(info.name)
        if spec is None:
            if info.name in fills:
                feeds[info.name] = FEED_FILL
                continue
            have = ", ".join(sorted(arrays)) or "none"
            raise UsageError(
                f"dataset {dataset.name!r} has no array for input {info.name!r} of {model_ref} "
                f"(expected shape {expected_shape(info)} {info.dtype}; the dataset has: {have})")
        if spec.dtype != info.dtype:
            raise UsageError(
                f"dataset {dataset.name!r} array {info.name!r} is {spec.dtype} but input "
                f"{info.name!r} of {model_ref} is {info.dtype}; save it with "
                f".astype('{info.dtype}')")
        sample = spec.sample_shape
        declared = info.shape
        batched = declared is None or (
            bool(declared) and _is_batch_dim(declared[0]) and _fits(sample, declared[1:]))
        if batched:
            feeds[info.name] = FEED_ROWS
        elif declared is not None and _fits(sample, declared):
            feeds[info.name] = FEED_SAMPLES
        else:
            raise UsageError(
                f"dataset {dataset.name!r} array {info.name!r} has shape "
                f"{_shape_text(spec.shape)} but {model_ref} input {info.name!r} is "
                f"{_shape_text(declared or [])}: expected shape {expected_shape(info)}, one "
                "sample per row")
    return feeds


def _sample_size(info: TensorInfo) -> int | None:
    """Values per sample of an output fed one sample at a time, when its shape is static."""
    if info.shape is None:
        return None
    dims = info.shape[1:] if info.shape and _is_batch_dim(info.shape[0]) else info.shape
    sizes = [d for d in dims if isinstance(d, int) and d >= 0]
    return math.prod(sizes) if len(sizes) == len(dims) else None


def check_labels_fit(dataset: Dataset, outputs: list[TensorInfo], model_ref: str) -> None:
    """Labels must fit the model's first output: class ids below its size, or one target
    per output value (regression)."""
    labels = dataset.labels
    if labels is None or not outputs:
        return
    first = outputs[0]
    size = _sample_size(first)
    if size is None:
        return
    if dataset.task == "classification":
        top = labels.value_range[1] if labels.value_range else None
        if top is not None and top >= size:
            raise UsageError(
                f"dataset {dataset.name!r} has labels up to {top:g} but output {first.name!r} "
                f"of {model_ref} has {size} class score(s) (ids 0..{size - 1})")
    elif math.prod(labels.sample_shape) != size:
        raise UsageError(
            f"dataset {dataset.name!r} has {math.prod(labels.sample_shape)} target value(s) per "
            f"sample but output {first.name!r} of {model_ref} gives {size}")


def outputs_mismatch(candidate: list[TensorInfo], reference: list[TensorInfo]) -> str | None:
    """Why ``reference``'s outputs cannot be compared value by value with ``candidate``'s
    (names or shapes differ), worded about the reference; None when they can."""
    names_c = [t.name for t in candidate]
    names_r = [t.name for t in reference]
    if names_c != names_r:
        return f"its outputs are {names_r}, not {names_c}"
    for c, r in zip(candidate, reference, strict=True):
        if c.shape is None or r.shape is None:
            continue
        if len(c.shape) != len(r.shape) or any(
                isinstance(a, int) and isinstance(b, int) and a >= 0 and b >= 0 and a != b
                for a, b in zip(c.shape, r.shape, strict=True)):
            return (f"its output {c.name!r} is {_shape_text(r.shape)}, not "
                    f"{_shape_text(c.shape)}")
    return None
