"""Budget evaluation: a profile's absolute budgets against one release's measured figures."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtrack.core.profile import Budgets

PASS = "pass"
FAIL = "fail"
MISSING = "missing"


@dataclass(frozen=True)
class BudgetResult:
    """One budget judged: ``status`` is pass, fail, or missing (the figure was not measured)."""

    budget: str  # e.g. "latency_p90_ms"
    metric: str  # the measured figure it is judged on, e.g. "p90_ms"
    limit: float
    value: float | None
    status: str

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def message(self) -> str:
        if self.status == MISSING:
            return f"{self.metric} was not measured (budget {self.budget} = {self.limit:g})"
        relation = "≥" if self.budget == "min_accuracy" else "≤"
        verdict = "within" if self.passed else "breaks"
        return (f"{self.metric} = {self.value:.4g} {verdict} budget {self.budget} "
                f"{relation} {self.limit:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"budget": self.budget, "metric": self.metric, "limit": self.limit,
                "value": self.value, "status": self.status, "message": self.message()}


@dataclass(frozen=True)
class Figures:
    """The measured figures budgets are judged on (None where not measured)."""

    p90_ms: float | None = None
    peak_rss_mb: float | None = None
    size_mb: float | None = None
    accuracy: float | None = None


# budget name -> (figure attribute, True when the figure must stay at or below the limit)
_ABSOLUTE = {
    "latency_p90_ms": ("p90_ms", True),
    "peak_memory_mb": ("peak_rss_mb", True),
    "model_size_mb": ("size_mb", True),
    "min_accuracy": ("accuracy", False),
}


def evaluate_budgets(budgets: Budgets, figures: Figures) -> list[BudgetResult]:
    """Judge every absolute budget that is set; regression limits need a baseline (gate)."""
    results = []
    for budget, limit in budgets.items().items():
        if budget not in _ABSOLUTE:
            continue
        metric, at_most = _ABSOLUTE[budget]
        value = getattr(figures, metric)
        if value is None:
            status = MISSING
        elif at_most:
            status = PASS if value <= limit else FAIL
        else:
            status = PASS if value >= limit else FAIL
        results.append(BudgetResult(budget, metric, limit, value, status))
    return results


_BUDGET_LABELS = {
    "latency_p90_ms": ("p90≤", " ms"),
    "peak_memory_mb": ("mem≤", " MB"),
    "model_size_mb": ("size≤", " MB"),
    "min_accuracy": ("acc≥", ""),
    "max_latency_regression_pct": ("regr≤", "%"),
    "max_accuracy_drop": ("drop≤", ""),
}


def budget_line(budgets: dict[str, float]) -> str:
    """``p90≤20 ms · mem≤300 MB · …``: a profile's budgets in one short line."""
    parts = []
    for key, value in budgets.items():
        label, unit = _BUDGET_LABELS.get(key, (f"{key} ", ""))
        parts.append(f"{label}{value:g}{unit}")
    return " · ".join(parts) or "none"
