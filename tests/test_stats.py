"""Statistics core against hand-checked values and reference values computed once with SciPy.

The literals marked "SciPy" / "statsmodels" came from scipy 1.17.1 and statsmodels 0.15.0;
neither is imported here or by devtrack.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from devtrack.core import significance, stats
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
from devtrack.core.stats import (
    LatencyStats,
    StoppingRule,
    median_ci,
    median_ci_rank,
    normal_ppf,
    percentile,
    stop_reason,
    summarize,
)

ONE_TO_TEN = [7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0]

# --- summary -----------------------------------------------------------------------------


def test_summarize_one_to_ten_gives_hand_checked_values() -> None:
    s = summarize(ONE_TO_TEN)
    assert s.n == 10
    assert (s.median, s.mean, s.min, s.max) == (5.5, 5.5, 1.0, 10.0)
    assert s.std == pytest.approx(math.sqrt(82.5 / 9))  # sample std, ddof=1
    assert s.cv == pytest.approx(math.sqrt(82.5 / 9) / 5.5)
    assert (s.p90, s.p95, s.p99) == pytest.approx((9.1, 9.55, 9.91))
    assert (s.ci_low, s.ci_high) == (2.0, 9.0)  # ranks 2 and 9 of 10 at 95%
    assert s.rel_ci_half_width == pytest.approx(3.5 / 5.5)


def test_summarize_single_sample_has_zero_spread() -> None:
    s = summarize([4.25])
    assert (s.n, s.median, s.std, s.cv, s.ci_low, s.ci_high) == (1, 4.25, 0.0, 0.0, 4.25, 4.25)
    assert s.rel_ci_half_width == 0.0


def test_summarize_accepts_float32_blob_and_returns_python_floats() -> None:
    s = summarize(np.asarray(ONE_TO_TEN, dtype=np.float32))
    assert s.median == 5.5
    assert all(type(v) is float for k, v in s.to_dict().items() if k != "n")


def test_latency_stats_round_trips_through_dict() -> None:
    s = summarize(ONE_TO_TEN)
    assert LatencyStats.from_dict(s.to_dict()) == s
    assert set(s.to_dict()) == {"n", "median", "mean", "std", "min", "max", "p90", "p95",
                                "p99", "cv", "ci_low", "ci_high"}


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [2.0, math.inf]])
def test_summarize_rejects_empty_or_non_finite_samples(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


@pytest.mark.parametrize("q", [0.0, 25.0, 50.0, 90.0, 99.0, 100.0])
def test_percentile_interpolates_linearly_like_numpy(q: float) -> None:
    assert percentile(ONE_TO_TEN, q) == pytest.approx(float(np.percentile(ONE_TO_TEN, q)))


@pytest.mark.parametrize("q", [-1.0, 100.5])
def test_percentile_rejects_q_outside_0_to_100(q: float) -> None:
    with pytest.raises(ValueError):
        percentile(ONE_TO_TEN, q)


# --- CI of the median --------------------------------------------------------------------

# (n, confidence, lower rank): the largest rank r with 1 - 2 P(Bin(n, 1/2) <= r-1) >=
# confidence, from SciPy's binom.cdf. The interval is (x_(r), x_(n+1-r)).
KNOWN_RANKS = [
    (6, 0.95, 1), (10, 0.95, 2), (20, 0.95, 6), (50, 0.95, 18), (100, 0.95, 40),
    (1000, 0.95, 469), (12345, 0.95, 6064), (20, 0.99, 4), (100, 0.99, 37), (50, 0.90, 19),
    (8, 0.99, 1),
]


@pytest.mark.parametrize(("n", "confidence", "rank"), KNOWN_RANKS)
def test_median_ci_picks_the_binomial_order_statistics(n: int, confidence: float,
                                                       rank: int) -> None:
    samples = np.random.default_rng(n).permutation(np.arange(1, n + 1, dtype=np.float64))
    assert median_ci(samples, confidence) == (float(rank), float(n + 1 - rank))


@pytest.mark.parametrize(("n", "confidence"), [(1, 0.95), (3, 0.95), (5, 0.95), (7, 0.99)])
def test_median_ci_falls_back_to_min_max_when_n_is_too_small(n: int, confidence: float) -> None:
    assert median_ci_rank(n, confidence) == 0
    assert median_ci(list(range(10, 10 + n)), confidence) == (10.0, float(9 + n))


@pytest.mark.parametrize("confidence", [0.0, 1.0, 95.0])
def test_median_ci_rejects_confidence_outside_0_1(confidence: float) -> None:
    with pytest.raises(ValueError):
        median_ci(ONE_TO_TEN, confidence)


# --- stopping rule -----------------------------------------------------------------------

RULE = StoppingRule(min_runs=50, min_time_s=2.0, max_time_s=20.0, target_rel_ci=0.01)
TIGHT = 10.0 + np.random.default_rng(1).normal(0.0, 0.01, 500)  # CI of median ≈ ±0.01%
NOISY = np.random.default_rng(2).lognormal(2.0, 0.8, 500)  # CI of median ≈ ±10%


@pytest.mark.parametrize(
    ("samples", "elapsed_s", "expected"),
    [
        pytest.param(TIGHT[:49], 5.0, None, id="min_runs-not-reached"),
        pytest.param(TIGHT, 1.9, None, id="min_time-not-reached"),
        pytest.param(TIGHT, 2.0, "converged", id="converged"),
        pytest.param(NOISY, 5.0, None, id="not-converged-keeps-going"),
        pytest.param(NOISY, 20.0, "max_time", id="max_time"),
        pytest.param(TIGHT[:3], 20.0, "max_time", id="max_time-wins-over-min_runs"),
        pytest.param(TIGHT[:0], 25.0, "max_time", id="max_time-with-no-samples"),
        pytest.param(TIGHT, 25.0, "converged", id="converged-wins-over-max_time"),
    ],
)
def test_stop_reason_branches(samples: np.ndarray, elapsed_s: float,
                              expected: str | None) -> None:
    assert stop_reason(RULE, samples, elapsed_s) == expected


def test_stop_reason_never_converges_with_zero_target() -> None:
    rule = StoppingRule(min_runs=1, min_time_s=0.0, max_time_s=1.0, target_rel_ci=0.0)
    assert stop_reason(rule, [5.0] * 100, 0.5) is None


@pytest.mark.parametrize("seed", range(6))
def test_stop_reason_agrees_with_summarize_ci(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = rng.lognormal(1.0, 0.05, int(rng.integers(60, 400))).astype(np.float32)
    rel = summarize(samples).rel_ci_half_width
    for target in (rel * 0.999, rel * 1.001):
        rule = StoppingRule(min_runs=10, min_time_s=0.0, max_time_s=99.0, target_rel_ci=target)
        assert (stop_reason(rule, samples, 1.0) == "converged") == (rel <= target)


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_runs=0, min_time_s=0.0, max_time_s=1.0, target_rel_ci=0.01),
     dict(min_runs=5, min_time_s=3.0, max_time_s=1.0, target_rel_ci=0.01),
     dict(min_runs=5, min_time_s=-1.0, max_time_s=1.0, target_rel_ci=0.01),
     dict(min_runs=5, min_time_s=0.0, max_time_s=1.0, target_rel_ci=0.01, confidence=1.5)],
)
def test_stopping_rule_rejects_inconsistent_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        StoppingRule(**kwargs)


# --- Mann–Whitney U ----------------------------------------------------------------------

# (a, b, U of a, p) from scipy.stats.mannwhitneyu(a, b, alternative="two-sided",
# method="asymptotic", use_continuity=True).
MWU_CASES = [
    pytest.param([1.0, 2, 3, 4, 5], [6.0, 7, 8, 9, 10], 0.0, 0.012185780355344813,
                 id="disjoint"),
    pytest.param([1, 2, 2, 3, 3, 3, 4], [2, 3, 3, 4, 4, 5, 5, 6], 11.0, 0.04988443697992588,
                 id="ties"),
    pytest.param([10.1, 10.4, 9.8, 10.0, 10.3, 10.2, 9.9, 10.6],
                 [10.5, 10.9, 10.2, 11.0, 10.8, 10.7], 4.5, 0.014065376785746183,
                 id="overlap-one-tie"),
    pytest.param([5, 5, 5, 5, 6, 6, 7], [5, 5, 6, 6, 6, 7, 7, 7, 7], 18.0, 0.14460143222981994,
                 id="heavy-ties"),
    pytest.param([3, 3, 3], [3, 3, 3, 3], 6.0, 1.0, id="all-tied"),
]


@pytest.mark.parametrize(("a", "b", "u", "p"), MWU_CASES)
def test_mann_whitney_u_matches_scipy_asymptotic(a: list[float], b: list[float], u: float,
                                                 p: float) -> None:
    got_u, got_p = mann_whitney_u(a, b)
    assert got_u == u
    assert got_p == pytest.approx(p, rel=1e-12)


@pytest.mark.parametrize(("a", "b", "u", "p"), MWU_CASES)
def test_mann_whitney_u_is_symmetric_in_its_samples(a: list[float], b: list[float], u: float,
                                                    p: float) -> None:
    u_ba, p_ba = mann_whitney_u(b, a)
    assert u_ba == len(a) * len(b) - u
    assert p_ba == pytest.approx(p, rel=1e-12)


# --- latency change ----------------------------------------------------------------------


def _lognormal(seed: int, n: int, scale: float) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(0.0, 0.2, n)


def test_ratio_of_medians_ci_is_deterministic_for_a_seed() -> None:
    a, b = _lognormal(1, 200, 10.0), _lognormal(2, 200, 11.0)
    first = ratio_of_medians_ci(a, b, n_boot=300, seed=7)
    assert ratio_of_medians_ci(a, b, n_boot=300, seed=7) == first
    assert ratio_of_medians_ci(a, b, n_boot=300, seed=8) != first


@pytest.mark.parametrize(("seed", "true_ratio"), [(3, 1.0), (4, 1.2), (5, 0.8)])
def test_ratio_of_medians_ci_brackets_the_true_ratio(seed: int, true_ratio: float) -> None:
    a, b = _lognormal(seed, 400, 10.0), _lognormal(seed + 100, 400, 10.0 * true_ratio)
    ratio, lo, hi = ratio_of_medians_ci(a, b, n_boot=500)
    assert ratio == pytest.approx(float(np.median(b) / np.median(a)))
    assert lo <= ratio <= hi
    assert lo < true_ratio < hi
    assert hi - lo < 0.15  # a CI this wide would be useless


def test_ratio_of_medians_ci_rejects_non_positive_baseline() -> None:
    with pytest.raises(ValueError):
        ratio_of_medians_ci([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])


def test_paired_ratio_summary_uses_order_statistics_of_the_ratios() -> None:
    ratios = [1.21, 1.19, 1.24, 1.20, 1.22, 1.18, 1.23, 1.25, 1.17, 1.26]
    assert paired_ratio_summary(ratios) == pytest.approx((1.215, 1.18, 1.25))


def test_paired_ratio_summary_with_six_pairs_spans_all_pairs() -> None:
    assert paired_ratio_summary([0.99, 1.30, 0.85, 1.02, 0.97, 1.10]) == pytest.approx(
        (1.005, 0.85, 1.30))


def test_paired_ratio_summary_rejects_non_positive_ratio() -> None:
    with pytest.raises(ValueError):
        paired_ratio_summary([1.0, 0.0, 1.1])


@pytest.mark.parametrize(
    ("ratio", "ci_low", "ci_high", "p_value", "expected"),
    [
        (1.20, 1.10, 1.30, None, "slower"),
        (1.20, 1.10, 1.30, 0.01, "slower"),
        (1.20, 1.10, 1.30, 0.20, "unchanged"),  # CI excludes 1 but the test disagrees
        (1.20, 0.95, 1.45, None, "unchanged"),  # large but not significant
        (1.03, 1.01, 1.05, 0.001, "unchanged"),  # significant but below the noise floor
        (1.05, 1.04, 1.06, None, "unchanged"),  # exactly at the threshold is not a change
        (1.06, 1.04, 1.08, None, "slower"),
        (0.80, 0.75, 0.85, None, "faster"),
        (0.80, 0.75, 0.85, 0.049, "faster"),
        (0.80, 0.75, 1.02, None, "unchanged"),
        (0.96, 0.94, 0.98, None, "unchanged"),  # 1/1.05 = 0.952 is the faster bound
        (0.95, 0.94, 0.96, None, "faster"),
        (1.00, 0.99, 1.01, None, "unchanged"),
    ],
)
def test_latency_verdict_truth_table(ratio: float, ci_low: float, ci_high: float,
                                     p_value: float | None, expected: str) -> None:
    assert latency_verdict(ratio, ci_low, ci_high, threshold=0.05, p_value=p_value) == expected


def test_latency_verdict_threshold_zero_counts_any_significant_change() -> None:
    assert latency_verdict(1.01, 1.005, 1.015, threshold=0.0) == "slower"


def test_latency_verdict_rejects_nan() -> None:
    with pytest.raises(ValueError):
        latency_verdict(float("nan"), 0.9, 1.1)


# --- accuracy ----------------------------------------------------------------------------

# statsmodels proportion_confint(k, n, method="wilson").
@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.49016247153664183, 0.9433178485456247),
        (0, 10, 0.0, 0.27753279986288926),
        (10, 10, 0.7224672001371106, 1.0),
        (1, 1, 0.2065493143772374, 1.0),
        (95, 100, 0.8882495307680808, 0.9784563208456319),
        (50, 100, 0.4038315303659956, 0.5961684696340044),
        (999, 1000, 0.9943574414020421, 0.9998234536293739),
    ],
)
def test_wilson_interval_matches_statsmodels(k: int, n: int, low: float, high: float) -> None:
    assert wilson_interval(k, n) == pytest.approx((low, high), rel=1e-12, abs=1e-15)


def test_wilson_interval_of_nothing_is_everything() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("k", "n"), [(-1, 10), (11, 10)])
def test_wilson_interval_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(k, n)


# scipy.stats.binomtest(b, b + c, 0.5).pvalue
@pytest.mark.parametrize(
    ("b", "c", "p"),
    [(0, 0, 1.0), (1, 0, 1.0), (3, 9, 0.14599609375), (10, 10, 1.0), (0, 12, 0.00048828125),
     (25, 40, 0.08168153394154003), (5, 1, 0.21875), (6, 16, 0.052478790283203125)],
)
def test_mcnemar_exact_matches_scipy_binomtest(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-12)
    assert mcnemar_exact(c, b) == pytest.approx(p, rel=1e-12)


def _paired(both: int, only_b: int, only_a: int, neither: int) -> tuple[list[bool], list[bool]]:
    a = [True] * both + [False] * only_b + [True] * only_a + [False] * neither
    b = [True] * both + [True] * only_b + [False] * only_a + [False] * neither
    return a, b


# Newcombe's square-and-add paired interval, as printed by the R package contingencytables
# (Fagerland, Lydersen & Laake) for the Cavo et al. (2012) table: -0.0621 (-0.1186 to -0.0046).
def test_accuracy_diff_ci_matches_newcombe_paired_reference() -> None:
    diff, low, high, p = accuracy_diff_ci(*_paired(59, 6, 16, 80))
    assert (diff, low, high) == pytest.approx((-0.0621, -0.1186, -0.0046), abs=5e-5)
    assert p == pytest.approx(0.052478790283203125, rel=1e-12)


@pytest.mark.parametrize("cells", [(90, 5, 0, 5), (0, 3, 0, 7), (50, 0, 0, 50), (97, 2, 1, 0)])
def test_accuracy_diff_ci_contains_the_difference_within_bounds(
        cells: tuple[int, int, int, int]) -> None:
    diff, low, high, p = accuracy_diff_ci(*_paired(*cells))
    assert -1.0 <= low <= diff <= high <= 1.0
    assert p is not None and 0.0 < p <= 1.0


def test_accuracy_diff_ci_of_identical_predictions_is_zero_and_not_significant() -> None:
    correct = [True] * 90 + [False] * 10
    diff, low, high, p = accuracy_diff_ci(correct, correct)
    assert diff == 0.0 and low < 0.0 < high and p == 1.0


@pytest.mark.parametrize(("a", "b"), [([True], [True, False]), ([], [])])
def test_accuracy_diff_ci_rejects_unpaired_or_empty_input(a: list[bool], b: list[bool]) -> None:
    with pytest.raises(ValueError):
        accuracy_diff_ci(a, b)


# statsmodels confint_proportions_2indep(k_b, n_b, k_a, n_a, method="newcomb", compare="diff")
@pytest.mark.parametrize(
    ("k_a", "n_a", "k_b", "n_b", "low", "high"),
    [
        (80, 100, 90, 100, 0.00014902511855754974, 0.1994738700780695),
        (45, 50, 40, 60, -0.3715205081908932, -0.0779302454422873),
        (970, 1000, 960, 1000, -0.026600952275496262, 0.006320387200472538),
        (10, 10, 0, 10, -1.0, -0.6075093504305241),
    ],
)
def test_unpaired_accuracy_diff_ci_matches_statsmodels_newcombe(
        k_a: int, n_a: int, k_b: int, n_b: int, low: float, high: float) -> None:
    diff, got_low, got_high = unpaired_accuracy_diff_ci(k_a, n_a, k_b, n_b)
    assert diff == pytest.approx(k_b / n_b - k_a / n_a)
    assert (got_low, got_high) == pytest.approx((low, high), rel=1e-12)


# --- helpers -----------------------------------------------------------------------------

# scipy.stats.norm.ppf
@pytest.mark.parametrize(
    ("p", "z"),
    [(0.5, 0.0), (0.975, 1.959963984540054), (0.995, 2.5758293035489004),
     (0.9, 1.2815515655446004), (0.025, -1.9599639845400545), (1e-10, -6.361340902404056)],
)
def test_normal_ppf_matches_scipy(p: float, z: float) -> None:
    assert normal_ppf(p) == pytest.approx(z, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1])
def test_normal_ppf_rejects_p_outside_open_unit_interval(p: float) -> None:
    with pytest.raises(ValueError):
        normal_ppf(p)


@pytest.mark.parametrize("name", sorted(stats._SIGNIFICANCE_NAMES))
def test_stats_module_re_exports_the_significance_api(name: str) -> None:
    assert getattr(stats, name) is getattr(significance, name)
