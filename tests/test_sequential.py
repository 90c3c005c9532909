"""The sequential side-by-side decision: looks, spent error, robustness, and its error rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from devtrack.core.sequential import (
    CONTINUE,
    FASTER,
    SLOWER,
    UNDECIDED,
    WITHIN,
    SequentialPlan,
    look_at,
    look_schedule,
    order_balanced_log_ratio,
    run_sequence,
    t_critical,
    t_two_sided_p,
)

SIMULATIONS = 1000


def test_looks_step_up_as_the_count_grows_and_end_at_the_cap() -> None:
    assert look_schedule(24) == (4, 6, 8, 10, 12, 16, 20, 24)
    assert look_schedule(4) == (4,)
    assert look_schedule(14) == (4, 6, 8, 10, 12, 14)
    assert look_schedule(64) == (4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64)


@pytest.mark.parametrize("cap", [2, 5, 0, -4])
def test_a_cap_that_is_odd_or_under_four_is_refused(cap: int) -> None:
    with pytest.raises(ValueError, match="max_repeats must be even"):
        look_schedule(cap)


@pytest.mark.parametrize(("level", "df", "expected"), [
    (0.05, 1, 12.706205), (0.05, 2, 4.302653), (0.05, 10, 2.228139),
    (0.01, 4, 4.604095), (0.01, 7, 3.499483), (0.001, 20, 3.849516),
])
def test_t_critical_matches_reference_tables(level: float, df: int, expected: float) -> None:
    assert t_critical(level, df) == pytest.approx(expected, rel=1e-6)
    assert t_two_sided_p(expected, df) == pytest.approx(level, rel=1e-5)


def test_the_order_effect_cancels_exactly_and_is_reported() -> None:
    ratios = [1.02 * 1.03 if i % 2 == 0 else 1.02 / 1.03 for i in range(8)]
    theta, se, order, df = order_balanced_log_ratio(ratios)
    assert math.exp(theta) == pytest.approx(1.02)
    assert math.exp(order) == pytest.approx(1.03)
    assert se == pytest.approx(0.0, abs=1e-12) and df == 6


def test_a_repeat_hit_by_a_burst_of_load_is_trimmed_not_averaged() -> None:
    rng = np.random.default_rng(3)
    ratios = list(np.exp(rng.normal(0.0, 0.004, 24)))
    ratios[5] = 1.8  # one repeat where B was descheduled most of the time
    trimmed, se_trimmed, _, _ = order_balanced_log_ratio(ratios)
    plain, se_plain, _, _ = order_balanced_log_ratio(ratios, trim=0.0)
    assert abs(math.exp(trimmed) - 1) < 0.005 < abs(math.exp(plain) - 1)
    assert se_trimmed < se_plain / 3


@pytest.mark.parametrize("bad", [[1.0, 1.0, 1.0], [1.0] * 5, [1.0, 0.0, 1.0, 1.0],
                                 [1.0, float("nan"), 1.0, 1.0]])
def test_bad_repeat_ratios_are_refused(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        order_balanced_log_ratio(bad)


def test_each_look_spends_alpha_in_proportion_to_its_repeats_and_all_add_up_to_alpha() -> None:
    plan = SequentialPlan(0.01, max_repeats=24)
    assert sum(plan.look_level(n) for n in plan.looks) == pytest.approx(0.05)
    assert plan.look_level(4) == pytest.approx(0.05 * 4 / 100)
    assert plan.look_level(24) == pytest.approx(0.05 * 24 / 100)
    look = look_at([1.0, 1.01, 0.99, 1.0], plan)
    assert look.level == pytest.approx(0.002)
    with pytest.raises(ValueError, match="not a look"):
        look_at([1.0] * 14, plan)


@pytest.mark.parametrize(("ratios", "decision"), [
    ([2.0, 2.02, 1.98, 2.01], SLOWER),
    ([0.5, 0.51, 0.49, 0.5], FASTER),
    ([1.0, 1.001, 0.999, 1.0005, 0.9995, 1.0], WITHIN),
    ([1.0, 1.02, 0.98, 1.01], CONTINUE),
    # significantly slower but by less than the limit: ruled out beyond it, so within
    ([1.004, 1.0045, 1.005, 1.0042, 1.0048, 1.0046], WITHIN),
])
def test_a_look_decides_slower_faster_within_or_measures_on(ratios: list[float],
                                                            decision: str) -> None:
    assert look_at(ratios, SequentialPlan(0.01)).decision == decision


def test_at_the_cap_an_undecided_look_stays_undecided() -> None:
    ratios = [1.0, 1.03, 0.97, 1.02, 0.98, 1.01]
    plan = SequentialPlan(0.01, max_repeats=6)
    looks = run_sequence(ratios, plan)
    assert [look.repeats for look in looks] == [4, 6]
    assert looks[-1].decision == UNDECIDED and not looks[-1].decided


def test_the_sequence_stops_at_the_first_decided_look() -> None:
    ratios = [2.0, 2.02, 1.98, 2.01] + [1.0] * 20  # later repeats must not be looked at
    looks = run_sequence(ratios, SequentialPlan(0.01))
    assert len(looks) == 1 and looks[0].decision == SLOWER


# --- error rates, simulated with the noise the interleaved worker shows ------------------

def simulate(true_ratio: float, n: int, cap: int = 24, seed: int = 7) -> list[list[float]]:
    """Repeat-ratio sequences as a loaded machine leaves them.

    Per repeat: heavy-tailed noise (Student t with 4 df, sd 0.7%), a creation-order effect
    of up to ±2% that alternates with the repeat's parity, and in 5% of repeats a burst of
    load (an extra 5% sd) — the shapes measured on the shared 2-core VM.
    """
    rng = np.random.default_rng(seed)
    parity = np.where(np.arange(cap) % 2 == 0, 1.0, -1.0)
    sequences = []
    for _ in range(n):
        order = rng.uniform(-0.02, 0.02)
        noise = rng.standard_t(4, cap) * 0.007 / math.sqrt(2.0)
        burst = np.where(rng.random(cap) < 0.05, rng.normal(0.0, 0.05, cap), 0.0)
        sequences.append(list(np.exp(math.log(true_ratio) + parity * order + noise + burst)))
    return sequences


def naive_excludes(ratios: list[float], truth: float, plan: SequentialPlan) -> bool:
    """Whether an unadjusted 95% CI at any look misses ``truth`` (what alpha spending fixes)."""
    for n in plan.looks:
        theta, se, _, df = order_balanced_log_ratio(ratios[:n])
        half = t_critical(0.05, df) * se
        if not theta - half <= math.log(truth) <= theta + half:
            return True
    return False


def test_a_a_sequences_are_called_slower_no_more_often_than_the_spent_alpha() -> None:
    plan = SequentialPlan(0.01)
    sequences = simulate(1.0, SIMULATIONS)
    finals = [run_sequence(s, plan)[-1] for s in sequences]
    slower = sum(f.decision == SLOWER for f in finals) / SIMULATIONS
    assert slower <= plan.alpha / 2 + 0.01
    # Stronger: over every look (not stopping), the CIs miss the truth at most alpha ...
    missed = sum(any(not look.ci_low <= 1.0 <= look.ci_high
                     for look in (look_at(s[:n], plan) for n in plan.looks))
                 for s in sequences) / SIMULATIONS
    assert missed <= plan.alpha + 0.015
    # ... which looking again at an unadjusted 95% CI does not achieve.
    naive = sum(naive_excludes(s, 1.0, plan) for s in sequences) / SIMULATIONS
    assert naive > plan.alpha + 0.03
    # And the A/A pair is mostly settled, not left undecided at the cap.
    assert sum(f.decision == WITHIN for f in finals) / SIMULATIONS >= 0.9


def test_a_regression_beyond_the_limit_is_passed_no_more_often_than_alpha_over_two() -> None:
    plan = SequentialPlan(0.01)
    finals = [run_sequence(s, plan)[-1] for s in simulate(1.012, SIMULATIONS, seed=11)]
    within = sum(f.decision == WITHIN for f in finals) / SIMULATIONS
    assert within <= plan.alpha / 2 + 0.01


def test_two_percent_slower_is_caught_at_a_one_percent_limit_within_a_dozen_repeats() -> None:
    plan = SequentialPlan(0.01)
    finals = [run_sequence(s, plan)[-1] for s in simulate(1.02, SIMULATIONS, seed=13)]
    assert sum(f.decision == SLOWER for f in finals) / SIMULATIONS >= 0.95
    assert np.median([f.repeats for f in finals]) <= 12


def test_ten_percent_slower_is_decided_at_an_early_look() -> None:
    plan = SequentialPlan(0.01)
    finals = [run_sequence(s, plan)[-1] for s in simulate(1.10, SIMULATIONS, seed=17)]
    assert all(f.decision == SLOWER for f in finals)
    assert np.median([f.repeats for f in finals]) <= 6


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"clock": "sundial"}, "clock must be cpu or wall"),
    ({"alpha": 0.0}, "alpha must be between 0 and 1"),
    ({"repeats": 7}, "repeats must be an even number"),
])
def test_bad_rerun_settings_are_a_usage_error(kwargs: dict[str, object], needle: str) -> None:
    from devtrack.errors import UsageError
    from devtrack.pairing import RerunSettings

    with pytest.raises(UsageError, match=needle):
        RerunSettings(**kwargs)  # type: ignore[arg-type]
