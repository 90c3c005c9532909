"""Metric changes between two releases on one profile, read from stored runs and
evaluations or from a side-by-side measurement: latency, memory, accuracy, operators."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from devtrack.bench.protocol import predictions_from_blob
from devtrack.core.significance import (
    accuracy_diff_ci,
    latency_verdict,
    mann_whitney_u,
    ratio_of_medians_ci,
    unpaired_accuracy_diff_ci,
)
from devtrack.pairing import PairedResult
from devtrack.records import Run
from devtrack.workspace import Workspace

STORED_RUNS_NOTE = (
    "latency verdicts from stored runs are indicative only: runs taken at different times "
    "differ by up to ±30% on a shared machine; an interleaved side-by-side measurement "
    "decides (compare --rerun; check without --no-rerun)"
)
TOP_OPS = 5


@dataclass(frozen=True)
class LatencyChange:
    """Candidate (B) over baseline (A) latency: a ratio with its 95% CI and a verdict."""

    method: str  # "stored" (two runs taken apart) | "interleaved" (a fresh side-by-side run)
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float | None  # Mann-Whitney U on stored samples; None for interleaved
    threshold_pct: float
    verdict: str  # faster | slower | unchanged
    a_ms: float | None  # medians of each side
    b_ms: float | None
    n: int  # samples per side (stored) or repeats (interleaved)

    @property
    def indicative(self) -> bool:
        return self.method == "stored"

    @property
    def pct(self) -> float:
        return (self.ratio - 1.0) * 100.0

    @property
    def resolved(self) -> bool:
        """Whether the CI is narrow enough to tell a change of the threshold's size.

        An "unchanged" from a CI wider than ±threshold means "too noisy to tell".
        """
        return (self.ci_high - self.ci_low) / 2.0 <= self.threshold_pct / 100.0

    def noise_note(self) -> str | None:
        if self.resolved:
            return None
        return (f"inconclusive: the 95% CI {self.ci_low:.2f}–{self.ci_high:.2f} is wider than "
                f"±{self.threshold_pct:g}%, too noisy to tell a change of that size")

    def describe(self) -> str:
        """``p50 latency +103.2% (ratio 2.03, 95% CI 1.98–2.07)``."""
        return (f"p50 latency {self.pct:+.1f}% (ratio {self.ratio:.2f}, 95% CI "
                f"{self.ci_low:.2f}–{self.ci_high:.2f})")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "ratio": self.ratio, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "pct": self.pct, "p_value": self.p_value,
                "threshold_pct": self.threshold_pct, "verdict": self.verdict,
                "a_ms": self.a_ms, "b_ms": self.b_ms, "n": self.n,
                "indicative": self.indicative, "resolved": self.resolved}


@dataclass(frozen=True)
class MetricDelta:
    """One figure of A and of B with its absolute and relative change."""

    metric: str
    a: float | None
    b: float | None

    @property
    def abs(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def rel(self) -> float | None:
        return None if self.a is None or self.b is None or self.a == 0 else self.b / self.a - 1

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "a": self.a, "b": self.b, "abs": self.abs,
                "rel": self.rel}


@dataclass(frozen=True)
class AccuracyChange:
    """Accuracy of A and B on one dataset: the difference B - A with its 95% CI."""

    dataset: str
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float | None  # exact McNemar when paired
    method: str  # "paired (McNemar)" | "unpaired"
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "a": self.a, "b": self.b, "diff": self.diff,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
                "method": self.method, "n": self.n}


@dataclass(frozen=True)
class OpDelta:
    """Time per inference of one operator type in A's and B's op profiles."""

    op: str
    a_ms: float
    b_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "a_ms": self.a_ms, "b_ms": self.b_ms,
                "delta_ms": self.b_ms - self.a_ms}


def stored_latency(run_a: Run, run_b: Run, threshold_pct: float) -> LatencyChange | None:
    """Ratio of medians (bootstrap CI) and Mann-Whitney p of two stored runs' samples."""
    from devtrack.benchmarking import samples_of

    a, b = samples_of(run_a), samples_of(run_b)
    if a.size < 2 or b.size < 2:
        return None
    median_a, median_b = float(np.median(a)), float(np.median(b))
    n = int(min(a.size, b.size))
    # A microsecond model keeps 10^5 samples; the bootstrap and the rank test on an evenly
    # strided subset take milliseconds instead of tens of seconds, and the medians (and so
    # the ratio) still come from every sample.
    _, low, high = ratio_of_medians_ci(_thin(a), _thin(b))
    _, p = mann_whitney_u(_thin(a), _thin(b))
    ratio = median_b / median_a
    low, high = min(low, ratio), max(high, ratio)
    verdict = latency_verdict(ratio, low, high, threshold_pct / 100.0, p_value=p)
    return LatencyChange("stored", ratio, low, high, p, threshold_pct, verdict,
                         median_a, median_b, n)


STORED_SAMPLES_MAX = 4000


def _thin(samples: np.ndarray, limit: int = STORED_SAMPLES_MAX) -> np.ndarray:
    """At most ``limit`` samples, taken evenly across the run (so drift is represented)."""
    if samples.size <= limit:
        return samples
    return samples[np.linspace(0, samples.size - 1, limit).astype(np.int64)]


def paired_latency(result: PairedResult, threshold_pct: float) -> LatencyChange:
    """The verdict on a fresh interleaved measurement (see ``pairing.PairedResult``)."""
    verdict = latency_verdict(result.ratio, result.ci_low, result.ci_high,
                              threshold_pct / 100.0)
    return LatencyChange("interleaved", result.ratio, result.ci_low, result.ci_high, None,
                         threshold_pct, verdict, result.a_ms, result.b_ms,
                         len(result.repeat_ratios))


def _labels(ws: Workspace, evaluation: dict[str, Any]) -> np.ndarray | None:
    """The dataset's labels from its stored ``.npz``, or None when they cannot be read."""
    try:
        ws.artifacts.materialize(evaluation["dataset_sha256"])  # from object storage
        path = ws.artifacts.path_for(evaluation["dataset_sha256"])
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["labels"]).reshape(-1)
    except Exception:  # not stored there, not an npz, no labels: fall back to unpaired
        return None


def accuracy_change(ws: Workspace, ev_a: dict[str, Any],
                    ev_b: dict[str, Any]) -> AccuracyChange | None:
    """B - A accuracy with a CI: paired (McNemar) when both have per-sample predictions."""
    if ev_a["dataset_id"] != ev_b["dataset_id"]:
        return None
    acc_a, acc_b = float(ev_a["accuracy"]), float(ev_b["accuracy"])
    labels = _labels(ws, ev_a) if ev_a["predictions"] and ev_b["predictions"] else None
    if labels is not None:
        pred_a = predictions_from_blob(ev_a["predictions"])
        pred_b = predictions_from_blob(ev_b["predictions"])
        if 0 < pred_a.size == pred_b.size <= labels.size:  # the first n samples were evaluated
            truth = labels[: pred_a.size]
            diff, low, high, p = accuracy_diff_ci(pred_a == truth, pred_b == truth)
            return AccuracyChange(ev_a["dataset"], acc_a, acc_b, diff, low, high, p,
                                  "paired (McNemar)", int(truth.size))
    (k_a, n_a), (k_b, n_b) = _counts(ev_a), _counts(ev_b)
    if n_a < 1 or n_b < 1:
        return None
    diff, low, high = unpaired_accuracy_diff_ci(k_a, n_a, k_b, n_b)
    return AccuracyChange(ev_a["dataset"], acc_a, acc_b, acc_b - acc_a, low, high, None,
                          "unpaired", min(n_a, n_b))


def _counts(evaluation: dict[str, Any]) -> tuple[int, int]:
    """(correct, evaluated) from the metrics JSON, else from the accuracy and dataset size."""
    metrics = json.loads(evaluation.get("metrics") or "{}")
    n = int(metrics.get("n") or evaluation.get("samples") or 0)
    correct = metrics.get("correct")
    k = int(correct) if correct is not None else round(float(evaluation["accuracy"]) * n)
    return k, n


def op_deltas(run_a: Run, run_b: Run, top: int = TOP_OPS) -> list[OpDelta]:
    """The operator types whose time per inference moved most, when both runs profiled ops."""
    if not run_a.op_profile or not run_b.op_profile:
        return []

    def per_run(run: Run) -> dict[str, float]:
        prof = json.loads(run.op_profile or "{}")
        runs = max(1, int(prof.get("runs") or 1))
        return {o["op"]: float(o["total_ms"]) / runs for o in prof.get("ops", [])}

    a, b = per_run(run_a), per_run(run_b)
    deltas = [OpDelta(op, a.get(op, 0.0), b.get(op, 0.0)) for op in a.keys() | b.keys()]
    deltas.sort(key=lambda d: (-abs(d.b_ms - d.a_ms), d.op))
    return deltas[:top]


def memory_deltas(run_a: Run, run_b: Run) -> list[MetricDelta]:
    return [MetricDelta(key, getattr(run_a, key), getattr(run_b, key))
            for key in ("peak_rss_mb", "load_delta_mb", "init_ms")]
