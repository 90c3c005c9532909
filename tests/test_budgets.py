"""Absolute budgets judged against measured figures."""

from __future__ import annotations

import pytest

from devtrack.core.budgets import FAIL, MISSING, PASS, Figures, evaluate_budgets
from devtrack.core.profile import Budgets


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        (Figures(p90_ms=9.0, peak_rss_mb=100, size_mb=1.0, accuracy=0.95),
         {"latency_p90_ms": PASS, "peak_memory_mb": PASS, "model_size_mb": PASS,
          "min_accuracy": PASS}),
        (Figures(p90_ms=10.5, peak_rss_mb=100, size_mb=3.0, accuracy=0.85),
         {"latency_p90_ms": FAIL, "peak_memory_mb": PASS, "model_size_mb": FAIL,
          "min_accuracy": FAIL}),
        (Figures(p90_ms=10.0, peak_rss_mb=None, size_mb=2.0, accuracy=None),
         {"latency_p90_ms": PASS, "peak_memory_mb": MISSING, "model_size_mb": PASS,
          "min_accuracy": MISSING}),
    ],
)
def test_each_budget_is_judged_on_its_figure(figures: Figures, expected: dict[str, str]) -> None:
    budgets = Budgets(latency_p90_ms=10.0, peak_memory_mb=128.0, model_size_mb=2.0,
                      min_accuracy=0.9, max_latency_regression_pct=5.0)
    results = evaluate_budgets(budgets, figures)
    assert {r.budget: r.status for r in results} == expected


def test_unset_budgets_and_regression_limits_are_not_judged_here() -> None:
    results = evaluate_budgets(Budgets(max_latency_regression_pct=5.0), Figures(p90_ms=1.0))
    assert results == []


def test_messages_name_the_metric_value_and_limit() -> None:
    [result] = evaluate_budgets(Budgets(latency_p90_ms=10.0), Figures(p90_ms=12.25))
    assert result.message() == "p90_ms = 12.25 breaks budget latency_p90_ms ≤ 10"
    [missing] = evaluate_budgets(Budgets(min_accuracy=0.9), Figures())
    assert "accuracy was not measured" in missing.message()
