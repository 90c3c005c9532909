"""Policy defaults, once: the regression limits a profile that sets none is judged by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtrack.core.profile import Budgets

# The latency noise floor ARCHITECTURE.md names: a change smaller than this is not a regression.
DEFAULT_LATENCY_REGRESSION_PCT = 5.0
# An accuracy drop of one point (absolute) or less is not a regression.
DEFAULT_ACCURACY_DROP = 0.01


def latency_limit_pct(budgets: Budgets | None) -> float:
    """The profile's ``max_latency_regression_pct``, else the default (percent)."""
    value = budgets.max_latency_regression_pct if budgets is not None else None
    return DEFAULT_LATENCY_REGRESSION_PCT if value is None else float(value)


def accuracy_drop_limit(budgets: Budgets | None) -> float:
    """The profile's ``max_accuracy_drop``, else the default (absolute)."""
    value = budgets.max_accuracy_drop if budgets is not None else None
    return DEFAULT_ACCURACY_DROP if value is None else float(value)


def limits_of_snapshot(snapshot: Mapping[str, Any]) -> tuple[float, float]:
    """(latency %, accuracy drop) of a stored profile snapshot, defaults filled in."""
    budgets = snapshot.get("budgets")
    table = budgets if isinstance(budgets, Mapping) else {}
    latency, drop = table.get("max_latency_regression_pct"), table.get("max_accuracy_drop")
    return (DEFAULT_LATENCY_REGRESSION_PCT if latency is None else float(latency),
            DEFAULT_ACCURACY_DROP if drop is None else float(drop))
