"""Trends: one metric of a model line across its releases on one profile, regressions marked."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devtrack import queries
from devtrack.core.policy import accuracy_drop_limit, latency_limit_pct, limits_of_snapshot
from devtrack.core.significance import VERDICT_FASTER, VERDICT_SLOWER
from devtrack.core.text import shown
from devtrack.counted_runs import counted_evaluation, counted_run
from devtrack.errors import DevtrackError, NotFoundError, UsageError
from devtrack.metric_changes import stored_latency
from devtrack.records import Run
from devtrack.workspace import Workspace

METRICS = ("p50_ms", "p90_ms", "peak_rss_mb", "accuracy")
REGRESSION = "regression"
IMPROVEMENT = "improvement"
DRIFT_NOTE = ("latency comes from stored runs taken at different times; on a shared machine "
              "they can differ by up to ±30% for the same file — confirm a marked regression "
              "with 'devtrack compare A B --rerun'")


@dataclass(frozen=True)
class TrendPoint:
    """One release's value of the metric, and how it moved from the previous measured one."""

    version: str
    status: str  # the release's lifecycle status
    created_at: str
    value: float | None
    run_id: int | None = None
    conditions_hash: str | None = None
    change: float | None = None  # relative (latency, memory) or absolute (accuracy)
    mark: str = ""  # "regression" | "improvement" | ""
    deployed: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "status": self.status, "created_at": self.created_at,
                "value": self.value, "run_id": self.run_id,
                "conditions_hash": self.conditions_hash, "change": self.change, "mark": self.mark,
                "regression": self.mark == REGRESSION, "deployed": self.deployed,
                "note": self.note}


@dataclass
class Trend:
    """The answer of :func:`trend`."""

    model: str
    profile: str
    metric: str
    threshold: float  # percent for latency and memory, absolute for accuracy
    points: list[TrendPoint]
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[TrendPoint]:
        return [p for p in self.points if p.mark == REGRESSION]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "profile": self.profile, "metric": self.metric,
                "threshold": self.threshold, "points": [p.to_dict() for p in self.points],
                "regressions": [p.version for p in self.regressions], "notes": self.notes}


def _thresholds(ws: Workspace, model_id: int, profile: str) -> tuple[str | None, float, float]:
    """The profile's current conditions and its latency and accuracy limits.

    A profile no longer defined is still trended from its runs' stored snapshots.
    """
    from devtrack.profiles import load_profile

    try:
        loaded = load_profile(profile, ws.root)
    except DevtrackError:
        snapshot = queries.newest_profile_snapshot(ws.store, model_id, profile)
        if snapshot is None:
            raise
        latency, drop = limits_of_snapshot(json.loads(snapshot or "{}"))
        return None, latency, drop
    return (loaded.conditions_hash, latency_limit_pct(loaded.budgets),
            accuracy_drop_limit(loaded.budgets))


def trend(ws: Workspace, model: str, profile: str, metric: str) -> Trend:
    """``metric`` of every release of ``model`` on ``profile``, in release order.

    Each release's value comes from its run that counts (``counted_runs``: the newest ok run
    under the profile's current conditions); a release without one is not measured. A
    point is a regression when it is worse than the previous measured release by more than
    the profile's threshold: ``max_latency_regression_pct`` (default 5) for latency and
    memory — for p50 also significant (bootstrap CI of the ratio of medians and Mann-Whitney
    U) — and ``max_accuracy_drop`` (default 0.01) for accuracy.
    """
    from devtrack.gate import deployed_release_id
    from devtrack.registry import list_releases, require_model

    if metric not in METRICS:
        raise UsageError(f"unknown metric {shown(metric)}; choose one of: {', '.join(METRICS)}")
    model_id = require_model(ws, model)
    releases = list_releases(ws, model)
    conditions, latency_pct, accuracy_drop = _thresholds(ws, model_id, profile)
    deployed = deployed_release_id(ws, releases[0], profile) if releases else None
    result = Trend(model, profile, metric,
                   accuracy_drop if metric == "accuracy" else latency_pct, [])
    previous: dict[str, Any] | None = None  # the last point with a value: run and value
    for release in releases:
        run, choice = counted_run(ws, release.id, profile, conditions)
        value: float | None = None
        dataset: str | None = None  # accuracies on different datasets are not compared
        if metric == "accuracy":
            evaluation = counted_evaluation(ws, release.id, profile, conditions)
            value = float(evaluation["accuracy"]) if evaluation else None
            dataset = evaluation["dataset_sha256"] if evaluation else None
        elif run is not None:
            value = getattr(run, metric)
        note = choice.conditions_note() or ("" if value is not None else "not measured")
        point = TrendPoint(release.version, release.status, release.created_at, value,
                           run.id if run else None, run.conditions_hash if run else None,
                           deployed=release.id == deployed, note=note)
        if value is not None and run is not None and previous is not None:
            if previous["dataset"] != dataset:
                from dataclasses import replace

                point = replace(point, note="evaluated on another dataset than the release "
                                            "before; not compared")
            else:
                point = _judge(point, run, previous, metric, latency_pct, accuracy_drop)
        if value is not None and run is not None:
            previous = {"run": run, "value": value, "dataset": dataset}
        result.points.append(point)
    if not any(p.value is not None for p in result.points):
        raise NotFoundError(f"no release of {model} has {metric} measured on {profile}; "
                            f"measure with 'devtrack bench {model}@VERSION --profile {profile}'")
    if metric in ("p50_ms", "p90_ms"):
        result.notes.append(DRIFT_NOTE)
    return result


def _judge(point: TrendPoint, run: Run, previous: dict[str, Any], metric: str,
           latency_pct: float, accuracy_drop: float) -> TrendPoint:
    from dataclasses import replace

    prev_run, prev_value = previous["run"], float(previous["value"])
    value = float(point.value or 0.0)
    if prev_run.conditions_hash != run.conditions_hash:  # a profile no longer defined
        return replace(point, note="measured under other conditions than the release before; "
                                   "not compared")
    if metric == "accuracy":
        change = value - prev_value
        mark = REGRESSION if -change > accuracy_drop else (
            IMPROVEMENT if change > accuracy_drop else "")
        return replace(point, change=change, mark=mark)
    rel = value / prev_value - 1.0 if prev_value else None
    mark = ""
    if metric == "p50_ms":
        latency = stored_latency(prev_run, run, latency_pct)
        if latency is not None:
            mark = {VERDICT_SLOWER: REGRESSION, VERDICT_FASTER: IMPROVEMENT}.get(
                latency.verdict, "")
    elif rel is not None:
        limit = latency_pct / 100.0
        mark = REGRESSION if rel > limit else (
            IMPROVEMENT if rel < 1.0 / (1.0 + limit) - 1.0 else "")
    return replace(point, change=rel, mark=mark)
