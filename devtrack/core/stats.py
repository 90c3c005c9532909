"""Latency statistics: summaries, the order-statistic CI of the median, and the stopping rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # served lazily by __getattr__ below: significance imports this module
    from devtrack.core.significance import (
        accuracy_diff_ci,
        latency_verdict,
        mann_whitney_u,
        mcnemar_exact,
        paired_ratio_summary,
        ratio_of_medians_ci,
        unpaired_accuracy_diff_ci,
        wilson_interval,
    )

__all__ = [
    "LatencyStats",
    "StoppingRule",
    "accuracy_diff_ci",
    "latency_verdict",
    "mann_whitney_u",
    "mcnemar_exact",
    "median_ci",
    "normal_ppf",
    "paired_ratio_summary",
    "percentile",
    "ratio_of_medians_ci",
    "stop_reason",
    "summarize",
    "unpaired_accuracy_diff_ci",
    "wilson_interval",
]

Samples = Sequence[float] | npt.NDArray[Any]
"""Latency samples: any 1-D sequence of floats, usually milliseconds."""

STOP_CONVERGED = "converged"
STOP_MAX_TIME = "max_time"

_SIGNIFICANCE_NAMES = frozenset({
    "accuracy_diff_ci", "latency_verdict", "mann_whitney_u", "mcnemar_exact",
    "paired_ratio_summary", "ratio_of_medians_ci", "unpaired_accuracy_diff_ci",
    "wilson_interval",
})


def __getattr__(name: str) -> Any:
    """Re-export the tests and verdicts of ``devtrack.core.significance`` under this module."""
    if name in _SIGNIFICANCE_NAMES:
        from devtrack.core import significance

        return getattr(significance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def normal_ppf(p: float) -> float:
    """Inverse of the standard normal CDF (``statistics.NormalDist``, accurate to ~1e-15)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"normal_ppf needs 0 < p < 1, got {p}")
    return NormalDist().inv_cdf(p)


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")


def as_samples(samples: Samples, what: str = "samples") -> npt.NDArray[Any]:
    """``samples`` as a non-empty 1-D array of finite numbers (float32 stays float32)."""
    arr = np.asarray(samples)
    if arr.dtype.kind not in "fiub":
        arr = arr.astype(np.float64)
    arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return arr


def half_binomial_cdf(n: int, k_max: int) -> npt.NDArray[np.float64]:
    """P(X <= k) for k = 0..k_max and X ~ Binomial(n, 1/2), exact up to rounding."""
    k = np.arange(1, k_max + 1, dtype=np.float64)
    # log C(n, k) by the running product (n-k+1)/k: O(k_max), no lgamma loop, no overflow.
    log_comb = np.concatenate(([0.0], np.cumsum(np.log(n - k + 1) - np.log(k))))
    return np.cumsum(np.exp(log_comb - n * math.log(2.0)))


@lru_cache(maxsize=512)
def median_ci_rank(n: int, confidence: float = 0.95) -> int:
    """1-based rank ``r`` with (x_(r), x_(n+1-r)) the narrowest order-statistic CI of the median.

    Coverage is 1 - 2 P(Bin(n, 1/2) <= r-1) >= ``confidence``. Returns 0 when even (min, max)
    falls short (n < 6 at 95%): callers then use (min, max), whose coverage is 1 - 2^(1-n).
    """
    check_confidence(confidence)
    if n < 1:
        raise ValueError("the median of no samples has no confidence interval")
    tail = (1.0 - confidence) / 2.0
    cdf = half_binomial_cdf(n, (n - 1) // 2)
    # r-1 = how many cdf values stay within the tail (tolerance: exact ties at the boundary).
    return int(np.searchsorted(cdf, tail * (1 + 1e-9), side="right"))


def _ci_indices(n: int, confidence: float) -> tuple[int, int]:
    r = median_ci_rank(n, confidence)
    return (r - 1, n - r) if r > 0 else (0, n - 1)


def percentile(samples: Samples, q: float) -> float:
    """The ``q``-th percentile, ``q`` in 0..100, by linear interpolation (numpy's default)."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    return float(np.percentile(as_samples(samples), q))


def median_ci(samples: Samples, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics at binomial ranks.

    For n too small to reach ``confidence`` (n < 6 at 95%) this is (min, max) and covers less.
    """
    arr = as_samples(samples)
    lo, hi = _ci_indices(arr.size, confidence)
    part = np.partition(arr, [lo, hi])
    return float(part[lo]), float(part[hi])


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one run's latency samples, all in the unit of the samples (ms)."""

    n: int
    median: float
    mean: float
    std: float  # sample standard deviation (ddof=1); 0 for a single sample
    min: float
    max: float
    p90: float
    p95: float
    p99: float
    cv: float  # std / mean
    ci_low: float  # order-statistic CI of the median, see median_ci
    ci_high: float

    @property
    def rel_ci_half_width(self) -> float:
        """Half the CI width as a fraction of the median: 0.01 means "median ±1%"."""
        return _rel_half_width(self.median, self.ci_low, self.ci_high)

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyStats:
        return cls(n=int(data["n"]), **{k: float(data[k]) for k in _FLOAT_FIELDS})


_FLOAT_FIELDS = ("median", "mean", "std", "min", "max", "p90", "p95", "p99", "cv",
                 "ci_low", "ci_high")


def _rel_half_width(median: float, low: float, high: float) -> float:
    half = (high - low) / 2.0
    if median == 0.0:
        return 0.0 if half == 0.0 else math.inf
    return half / abs(median)


def summarize(samples: Samples, confidence: float = 0.95) -> LatencyStats:
    """Median, mean, spread, tail percentiles and the CI of the median of ``samples``."""
    arr = np.sort(as_samples(samples).astype(np.float64))
    n = int(arr.size)
    median, p90, p95, p99 = (float(v) for v in np.percentile(arr, [50, 90, 95, 99]))
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    lo, hi = _ci_indices(n, confidence)
    return LatencyStats(
        n=n, median=median, mean=mean, std=std, min=float(arr[0]), max=float(arr[-1]),
        p90=p90, p95=p95, p99=p99, cv=std / mean if mean != 0.0 else 0.0,
        ci_low=float(arr[lo]), ci_high=float(arr[hi]),
    )


@dataclass(frozen=True)
class StoppingRule:
    """When the measured loop may stop; see ARCHITECTURE.md, "Measurement"."""

    min_runs: int
    min_time_s: float
    max_time_s: float
    target_rel_ci: float  # half-width of the median's CI over the median; <= 0 never converges
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.min_runs < 1:
            raise ValueError(f"min_runs must be at least 1, got {self.min_runs}")
        if not 0.0 <= self.min_time_s <= self.max_time_s:
            raise ValueError(f"need 0 <= min_time_s <= max_time_s, got {self.min_time_s} "
                             f"and {self.max_time_s}")
        check_confidence(self.confidence)


def stop_reason(rule: StoppingRule, samples_ms: Samples, elapsed_s: float) -> str | None:
    """Why the measured loop should stop now, or None to keep going.

    ``"converged"``: at least ``min_runs`` samples, ``min_time_s`` elapsed, and the CI of the
    median within ``target_rel_ci`` of it. ``"max_time"``: ``max_time_s`` elapsed without
    that; it is a hard cap and wins over ``min_runs`` (a model slower than
    max_time_s / min_runs must not run past the worker's timeout), so the caller may get
    fewer than ``min_runs`` samples, even none. Converged wins when both hold.
    Cost: one ``np.partition`` of the samples; no sort, no copy beyond it.
    """
    n = len(samples_ms)
    if n >= rule.min_runs and elapsed_s >= rule.min_time_s and rule.target_rel_ci > 0:
        arr = np.asarray(samples_ms)
        lo, hi = _ci_indices(n, rule.confidence)
        mid_lo, mid_hi = (n - 1) // 2, n // 2
        part = np.partition(arr, sorted({lo, mid_lo, mid_hi, hi}))
        median = (float(part[mid_lo]) + float(part[mid_hi])) / 2.0
        if _rel_half_width(median, float(part[lo]), float(part[hi])) <= rule.target_rel_ci:
            return STOP_CONVERGED
    if elapsed_s >= rule.max_time_s:
        return STOP_MAX_TIME
    return None
