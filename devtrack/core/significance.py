"""Change detection: significance tests, CIs of differences and ratios, and verdicts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from devtrack.core.policy import DEFAULT_LATENCY_REGRESSION_PCT
from devtrack.core.stats import (
    Samples,
    as_samples,
    check_confidence,
    half_binomial_cdf,
    median_ci,
    normal_ppf,
)

VERDICT_SLOWER = "slower"
VERDICT_FASTER = "faster"
VERDICT_UNCHANGED = "unchanged"
VERDICTS = (VERDICT_FASTER, VERDICT_SLOWER, VERDICT_UNCHANGED)

_BOOT_CHUNK_ELEMENTS = 1_000_000  # bounds the bootstrap's index matrix to ~8 MB


def _midranks(values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.float64], float]:
    """1-based ranks with ties averaged, and the tie term sum(t^3 - t) over tie groups."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    mid = ends - (counts - 1) / 2.0
    t = counts.astype(np.float64)
    return mid[inverse.reshape(-1)], float((t**3 - t).sum())


def mann_whitney_u(a: Samples, b: Samples) -> tuple[float, float]:
    """U statistic of ``a`` and the two-sided p-value of the Mann–Whitney U test.

    Normal approximation with tie and continuity corrections; equal to
    ``scipy.stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic")``.
    """
    x, y = as_samples(a, "a"), as_samples(b, "b")
    n1, n2 = int(x.size), int(y.size)
    n = n1 + n2
    ranks, tie_term = _midranks(np.concatenate([x.astype(np.float64), y.astype(np.float64)]))
    u1 = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2.0
    u2 = n1 * n2 - u1
    variance = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0.0:  # every value tied: no evidence of any shift
        return u1, 1.0
    z = (max(u1, u2) - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)
    return u1, min(1.0, math.erfc(z / math.sqrt(2.0)))


def ratio_of_medians_ci(
    a: Samples, b: Samples, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """median(b) / median(a) with a percentile-bootstrap CI; ``a`` is the baseline.

    Resamples ``a`` and ``b`` independently, so it suits two unpaired runs; for interleaved
    side-by-side measurements use ``paired_ratio_summary``. Same inputs and seed, same result.
    """
    check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    x = as_samples(a, "a").astype(np.float64)
    y = as_samples(b, "b").astype(np.float64)
    base = float(np.median(x))
    if base <= 0.0:
        raise ValueError(f"the baseline median must be positive for a ratio, got {base}")
    rng = np.random.default_rng(seed)
    rows = max(1, _BOOT_CHUNK_ELEMENTS // max(x.size, y.size))
    ratios = np.empty(n_boot, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, n_boot, rows):
            m = min(rows, n_boot - start)
            med_x = np.median(x[rng.integers(0, x.size, size=(m, x.size))], axis=1)
            med_y = np.median(y[rng.integers(0, y.size, size=(m, y.size))], axis=1)
            ratios[start:start + m] = med_y / med_x
    tail = 100.0 * (1.0 - confidence) / 2.0
    lo, hi = np.percentile(ratios, [tail, 100.0 - tail])
    return float(np.median(y)) / base, float(lo), float(hi)


def paired_ratio_summary(ratios: Samples, confidence: float = 0.95) -> tuple[float, float, float]:
    """Median of per-pair ratios candidate/baseline with its order-statistic CI.

    With few pairs the CI is (min, max) and covers less than ``confidence``
    (n < 6 at 95%; 5 pairs give 93.75%), see ``median_ci``.
    """
    arr = as_samples(ratios, "ratios").astype(np.float64)
    if (arr <= 0).any():
        raise ValueError("ratios must be positive")
    lo, hi = median_ci(arr, confidence)
    return float(np.median(arr)), lo, hi


def latency_verdict(
    ratio: float,
    ci_low: float,
    ci_high: float,
    threshold: float = DEFAULT_LATENCY_REGRESSION_PCT / 100.0,
    p_value: float | None = None,
    alpha: float = 0.05,
) -> str:
    """The verdict on a candidate/baseline latency ratio: slower, faster or unchanged.

    A change must be significant (the CI lies wholly on its side of 1, and ``p_value`` <
    ``alpha`` when given) and larger than the noise floor: ratio > 1 + threshold for
    slower, ratio < 1 / (1 + threshold) for faster. Both bounds are strict.
    """
    if any(math.isnan(v) for v in (ratio, ci_low, ci_high)):
        raise ValueError("latency_verdict got NaN for the ratio or its CI")
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if p_value is not None and not p_value < alpha:
        return VERDICT_UNCHANGED
    if ci_low > 1.0 and ratio > 1.0 + threshold:
        return VERDICT_SLOWER
    if ci_high < 1.0 and ratio < 1.0 / (1.0 + threshold):
        return VERDICT_FASTER
    return VERDICT_UNCHANGED


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when n is 0."""
    check_confidence(confidence)
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = normal_ppf(1.0 - (1.0 - confidence) / 2.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of ``b`` in ``b + c`` discordant pairs."""
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got {b} and {c}")
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * float(half_binomial_cdf(n, min(b, c))[-1]))


def _paired_counts(
    correct_a: Sequence[bool] | npt.NDArray[Any], correct_b: Sequence[bool] | npt.NDArray[Any]
) -> tuple[int, int, int, int]:
    ok_a = np.asarray(correct_a, dtype=bool).reshape(-1)
    ok_b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if ok_a.size != ok_b.size:
        raise ValueError(f"paired results differ in length: {ok_a.size} and {ok_b.size}")
    if ok_a.size == 0:
        raise ValueError("no paired results to compare")
    both = int((ok_a & ok_b).sum())
    only_b = int((ok_b & ~ok_a).sum())
    only_a = int((ok_a & ~ok_b).sum())
    return both, only_b, only_a, int(ok_a.size) - both - only_b - only_a


def accuracy_diff_ci(
    correct_a: Sequence[bool] | npt.NDArray[Any],
    correct_b: Sequence[bool] | npt.NDArray[Any],
    confidence: float = 0.95,
) -> tuple[float, float, float, float | None]:
    """Paired accuracy difference b - a with a CI, and the exact McNemar p-value.

    The CI is Newcombe's square-and-add interval for paired proportions (1998, method 10):
    Wilson intervals of both accuracies combined through their estimated correlation,
    which stays sensible near 100% where the Wald interval collapses. The p-value is
    always set here; it is optional only to share the shape of other comparisons.
    """
    both, only_b, only_a, neither = _paired_counts(correct_a, correct_b)
    n = both + only_b + only_a + neither
    k_b, k_a = both + only_b, both + only_a
    p_b, p_a = k_b / n, k_a / n
    l_b, u_b = wilson_interval(k_b, n, confidence)
    l_a, u_a = wilson_interval(k_a, n, confidence)
    # Correlation of the two accuracies, with Newcombe's continuity adjustment when positive.
    margins = float(k_b) * (n - k_b) * k_a * (n - k_a)
    cross = both * neither - only_b * only_a
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    else:
        phi = (cross - n / 2 if cross > 0 else cross) / math.sqrt(margins)
    d_lo, d_hi = p_b - l_b, u_a - p_a
    e_lo, e_hi = p_a - l_a, u_b - p_b
    diff = p_b - p_a
    low = diff - math.sqrt(max(0.0, d_lo**2 + d_hi**2 - 2 * phi * d_lo * d_hi))
    high = diff + math.sqrt(max(0.0, e_lo**2 + e_hi**2 - 2 * phi * e_lo * e_hi))
    return diff, max(-1.0, low), min(1.0, high), mcnemar_exact(only_b, only_a)


def unpaired_accuracy_diff_ci(
    k_a: int, n_a: int, k_b: int, n_b: int, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Accuracy difference b - a of independent samples, Newcombe's hybrid score CI."""
    if n_a < 1 or n_b < 1:
        raise ValueError(f"both samples need at least one item, got {n_a} and {n_b}")
    p_a, p_b = k_a / n_a, k_b / n_b
    l_a, u_a = wilson_interval(k_a, n_a, confidence)
    l_b, u_b = wilson_interval(k_b, n_b, confidence)
    diff = p_b - p_a
    low = diff - math.hypot(p_b - l_b, u_a - p_a)
    high = diff + math.hypot(u_b - p_b, p_a - l_a)
    return diff, max(-1.0, low), min(1.0, high)
