"""Accuracy, regression error, fidelity to a reference and NaN/Inf counts: pure numpy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from devtrack.core.significance import wilson_interval

NO_PREDICTION = -1
"""The top-1 class stored for a sample whose scores are not all finite (never correct)."""

TOP_K = 5

Array = npt.NDArray[Any]


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or infinite (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def per_sample(values: Array | Sequence[Any], n: int | None = None) -> npt.NDArray[np.float64]:
    """``values`` as an (N, D) float64 matrix: one flattened row per sample."""
    arr = np.asarray(values, dtype=np.float64)
    rows = arr.shape[0] if n is None else n
    if arr.ndim == 0 or arr.shape[0] != rows:
        raise ValueError(f"expected {rows} samples along the first axis, got shape {arr.shape}")
    return arr.reshape(rows, -1)


def top1_predictions(scores: Array | Sequence[Any]) -> npt.NDArray[np.int32]:
    """Index of the highest score per sample (int32); NO_PREDICTION where a score is not finite."""
    s = per_sample(scores)
    if s.shape[1] == 0:
        raise ValueError("scores have no classes")
    finite = np.isfinite(s).all(axis=1)
    pred = np.argmax(np.where(np.isfinite(s), s, -np.inf), axis=1).astype(np.int32)
    pred[~finite] = NO_PREDICTION
    return pred


def top_k_correct(scores: Array | Sequence[Any], labels: Array | Sequence[Any],
                  k: int) -> npt.NDArray[np.bool_]:
    """Per sample: is the label among the ``k`` highest scores (ties broken by lower index)?"""
    s = per_sample(scores)
    y = _labels(labels, s.shape[0])
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    finite = np.isfinite(s).all(axis=1)
    k = min(k, s.shape[1])
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return (order == y[:, None]).any(axis=1) & finite


def _labels(labels: Array | Sequence[Any], n: int) -> npt.NDArray[np.int64]:
    y = np.asarray(labels).reshape(-1)
    if y.size != n:
        raise ValueError(f"{y.size} labels for {n} samples")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise ValueError(f"class labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


@dataclass(frozen=True)
class ClassificationMetrics:
    """Top-1 accuracy with its Wilson interval, and top-5 when there are more than 5 classes."""

    n: int
    correct: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    top5: float | None
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "correct": self.correct, "accuracy": self.accuracy,
                "accuracy_ci": list(self.accuracy_ci), "top5": self.top5,
                "confidence": self.confidence}


def classification_metrics(scores: Array | Sequence[Any], labels: Array | Sequence[Any],
                           confidence: float = 0.95) -> ClassificationMetrics:
    """Accuracy of ``scores`` (N × classes) against integer ``labels`` (N)."""
    s = per_sample(scores)
    y = _labels(labels, s.shape[0])
    n = int(s.shape[0])
    if n == 0:
        raise ValueError("no samples")
    correct = int((top1_predictions(s) == y).sum())
    low, high = wilson_interval(correct, n, confidence)
    top5 = None
    if s.shape[1] > TOP_K:
        top5 = float(top_k_correct(s, y, TOP_K).mean())
    return ClassificationMetrics(n, correct, correct / n, (low, high), top5, confidence)


@dataclass(frozen=True)
class RegressionMetrics:
    """Mean absolute and root-mean-square error over every output value; None if not finite."""

    n: int
    mae: float | None
    rmse: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mae": self.mae, "rmse": self.rmse}


def regression_metrics(outputs: Array | Sequence[Any],
                       targets: Array | Sequence[Any]) -> RegressionMetrics:
    """MAE and RMSE of ``outputs`` against ``targets``; both hold the same values per sample."""
    out = per_sample(outputs)
    tgt = per_sample(targets)
    if out.shape != tgt.shape:
        raise ValueError(f"outputs have {out.shape[1]} values per sample, targets "
                         f"{tgt.shape[1]} (shapes {out.shape} and {tgt.shape})")
    if out.size == 0:
        raise ValueError("no values to compare")
    with np.errstate(invalid="ignore", over="ignore"):
        err = out - tgt
        mae = float(np.mean(np.abs(err)))
        rmse = float(np.sqrt(np.mean(err * err)))
    return RegressionMetrics(int(out.shape[0]), finite_or_none(mae), finite_or_none(rmse))


@dataclass(frozen=True)
class NonFinite:
    """NaN and Inf values among a model's outputs."""

    nan: int
    inf: int
    samples: int  # samples with at least one such value
    total_samples: int

    @property
    def values(self) -> int:
        return self.nan + self.inf

    @property
    def flagged(self) -> bool:
        return self.values > 0

    def to_dict(self) -> dict[str, Any]:
        return {"values": self.values, "nan": self.nan, "inf": self.inf,
                "samples": self.samples, "total_samples": self.total_samples,
                "flagged": self.flagged}

    def describe(self) -> str:
        kinds = " and ".join(k for k, v in (("NaN", self.nan), ("Inf", self.inf)) if v)
        return (f"outputs contain {kinds}: {self.values} non-finite value(s) in "
                f"{self.samples} of {self.total_samples} sample(s)")


def count_nonfinite(outputs: Sequence[Array]) -> NonFinite:
    """Count NaN/Inf in each output (each shaped (N, ...)); all outputs share N."""
    if not outputs:
        return NonFinite(0, 0, 0, 0)
    n = int(np.asarray(outputs[0]).shape[0]) if np.ndim(outputs[0]) else 1
    nan = inf = 0
    bad = np.zeros(n, dtype=bool)
    for out in outputs:
        arr = np.asarray(out)
        if arr.dtype.kind not in "fc":
            continue
        rows = arr.reshape(n, -1)
        nan += int(np.isnan(rows).sum())
        inf += int(np.isinf(rows).sum())
        bad |= ~np.isfinite(rows).all(axis=1)
    return NonFinite(nan, inf, int(bad.sum()), n)


@dataclass(frozen=True)
class Fidelity:
    """How closely a candidate's outputs follow a reference's on the same inputs.

    Errors are over every output value where both are finite; ``cosine`` is the mean over
    samples of the cosine similarity of all output values of a sample (exactly 1 when
    they are equal); ``top1_agreement`` compares the arg-max of the first output.
    """

    n: int
    max_abs_err: float | None
    mean_abs_err: float | None
    cosine: float | None
    top1_agreement: float | None
    compared_values: int
    skipped_values: int  # values left out because either side was NaN/Inf

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "max_abs_err": self.max_abs_err, "mean_abs_err": self.mean_abs_err,
                "cosine": self.cosine, "top1_agreement": self.top1_agreement,
                "compared_values": self.compared_values, "skipped_values": self.skipped_values}


def _row_cosines(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    norm_a = np.linalg.norm(a, axis=1)
    norm_b = np.linalg.norm(b, axis=1)
    denom = norm_a * norm_b
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.clip(np.einsum("ij,ij->i", a, b) / denom, -1.0, 1.0)
    cos = np.where(denom > 0, cos, np.where((norm_a == 0) & (norm_b == 0), 1.0, 0.0))
    return np.where((a == b).all(axis=1), 1.0, cos)  # rounding must not make x vs x < 1


def fidelity(candidate: Sequence[Array], reference: Sequence[Array],
             top1: bool = True) -> Fidelity:
    """Compare two models' outputs (lists in the same order, each shaped (N, ...))."""
    if len(candidate) != len(reference) or not candidate:
        raise ValueError(f"need the same non-zero number of outputs, got {len(candidate)} and "
                         f"{len(reference)}")
    n = int(np.asarray(candidate[0]).shape[0])
    pairs = [(per_sample(c, n), per_sample(r, n)) for c, r in zip(candidate, reference,
                                                                  strict=True)]
    for i, (c, r) in enumerate(pairs):
        if c.shape != r.shape:
            raise ValueError(f"output {i}: {c.shape[1]} values per sample vs {r.shape[1]}")
    cand = np.concatenate([c for c, _ in pairs], axis=1)
    ref = np.concatenate([r for _, r in pairs], axis=1)
    both = np.isfinite(cand) & np.isfinite(ref)
    compared = int(both.sum())
    diff = np.abs(cand[both] - ref[both])
    max_err = float(diff.max()) if compared else None
    mean_err = float(diff.mean()) if compared else None
    rows = both.all(axis=1)
    cosine = float(_row_cosines(cand[rows], ref[rows]).mean()) if rows.any() else None
    agreement = None
    first_c, first_r = pairs[0]
    if top1 and first_c.shape[1] > 1:
        pc, pr = top1_predictions(first_c), top1_predictions(first_r)
        agreement = float(((pc == pr) & (pc != NO_PREDICTION)).mean()) if n else None
    return Fidelity(n, finite_or_none(max_err), finite_or_none(mean_err),
                    finite_or_none(cosine), agreement, compared, int(cand.size) - compared)
