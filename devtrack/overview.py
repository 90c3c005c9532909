"""Fast read-only queries behind the review app: model lines, release tables, details, audit."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, cast

from devtrack import queries_overview
from devtrack.core.aggregate_runs import budget_latency_ms
from devtrack.core.budgets import FAIL, MISSING, PASS, BudgetResult, Figures, evaluate_budgets
from devtrack.core.counting import NEWER_RUNS_NOTE, RunChoice, not_measured_note
from devtrack.core.policy import accuracy_drop_limit, latency_limit_pct
from devtrack.core.profile import Budgets, Profile
from devtrack.core.refs import ReleaseRef
from devtrack.core.release import Release
from devtrack.counted_runs import (
    choose,
    conditions_now,
    counted_evaluation,
    counted_evaluations,
    counted_runs,
)
from devtrack.errors import DevtrackError
from devtrack.workspace import Workspace

MIB = 1024 * 1024

BUDGET_NONE = "none"  # the profile sets no budget this release can be judged on
BUDGET_NO_RUN = "no run"  # the release was not measured on the profile


@dataclass(frozen=True)
class ModelOverview:
    """One model line with its release counts by status and its live deployments."""

    name: str
    task: str
    releases: int
    candidates: int
    approved: int
    rejected: int
    yanked: int
    latest: str | None
    live_deployments: int


@dataclass(frozen=True)
class ReleaseOverview:
    """One row of the releases table: a release and the figures of its run that counts on
    one profile (``counted_runs``)."""

    id: int
    model: str
    version: str
    status: str
    created_at: str
    format: str
    size_bytes: int
    quantization: str
    params: int
    notes: str
    parent: str | None
    deployed_on: tuple[str, ...]
    run_status: str | None  # status of the newest run on the profile; None = never measured
    run_error: str | None
    runs: int  # runs on the profile, any status
    run_id: int | None = None  # the run that counts; None = not measured under the conditions
    p50_ms: float | None = None
    p90_ms: float | None = None
    peak_rss_mb: float | None = None
    accuracy: float | None = None
    warnings: tuple[str, ...] = ()
    newer_runs: bool = False  # ok runs under other conditions newer than the one that counts
    other_runs: int = 0  # ok runs under other conditions (they never lend their figures)
    budget: str = BUDGET_NO_RUN  # pass | fail | missing | none | no run
    budget_results: tuple[BudgetResult, ...] = ()
    baseline_version: str | None = None  # the earlier release the deltas are against
    p50_change_pct: float | None = None
    memory_change_pct: float | None = None
    accuracy_change: float | None = None
    regressions: tuple[str, ...] = ()  # human sentences, one per regressed metric
    regressed_metrics: tuple[str, ...] = ()  # "p50_ms", "peak_rss_mb", "accuracy"

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def size_mb(self) -> float:
        return self.size_bytes / MIB

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    @property
    def measured(self) -> bool:
        """Whether a run counts under the profile's current conditions."""
        return self.run_id is not None

    def conditions_note(self) -> str | None:
        """What every view says of runs under other conditions, or None."""
        if self.newer_runs:
            return NEWER_RUNS_NOTE
        return not_measured_note(self.other_runs) if (
            not self.measured and self.other_runs) else None

    def to_dict(self) -> dict[str, Any]:
        """For ``devtrack releases --profile --json``: every field, budgets with messages."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["budget_results"] = [r.to_dict() for r in self.budget_results]
        for key in ("deployed_on", "warnings", "regressions", "regressed_metrics"):
            data[key] = list(data[key])
        return {"ref": self.ref, **data, "conditions_note": self.conditions_note()}


@dataclass(frozen=True)
class ReleaseTable:
    """Every release of a model line as seen on one profile."""

    model: str
    profile: str | None
    conditions_hash: str | None  # the profile's current conditions; None: not defined
    budgets: dict[str, float]
    rows: list[ReleaseOverview]
    profile_error: str | None = None
    formats: tuple[str, ...] = ()  # the model formats the profile runs (empty: unknown)

    def runs_format(self, fmt: str) -> bool:
        return not self.formats or fmt in self.formats


@dataclass(frozen=True)
class ProfileResult:
    """Everything measured for one release on one profile, newest run first; ``counted`` is
    the run whose figures count (``counted_runs``), None when not measured under the
    profile's current conditions."""

    profile: str
    runs: list[dict[str, Any]]
    counted: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    budget_results: list[BudgetResult]
    conditions_hash: str | None
    deployed: bool
    choice: RunChoice[dict[str, Any]] = field(default_factory=lambda: RunChoice(None))

    def conditions_note(self) -> str | None:
        """What every view says of runs under other conditions, or None."""
        return self.choice.conditions_note()


@dataclass(frozen=True)
class ReleaseDetail:
    """One release with its lineage, per-profile results, deployments and audit events."""

    release: Release
    lineage: list[str]  # parent chain, nearest first
    children: list[str]
    profiles: list[ProfileResult]
    deployments: list[dict[str, Any]]
    events: list[dict[str, Any]] = field(default_factory=list)


def list_model_overview(ws: Workspace) -> list[ModelOverview]:
    """Every model line with counts, in one query."""
    rows = queries_overview.model_lines(ws.store)
    return [ModelOverview(row["name"], row["task"], row["releases"], row["candidates"],
                          row["approved"], row["rejected"], row["yanked"], row["latest"],
                          row["live"]) for row in rows]


def profiles_with_runs(ws: Workspace, model: str) -> dict[str, int]:
    """Profile name -> number of runs of the model's releases on it."""
    return queries_overview.run_counts_by_profile(ws.store, model)


def default_profile(ws: Workspace, model: str, names: list[str]) -> str | None:
    """The profile to show first: where the model was measured most, else the first name."""
    counts = profiles_with_runs(ws, model)
    measured = [n for n in names if n in counts]
    if measured:
        return max(measured, key=lambda n: (counts[n], -names.index(n)))
    return names[0] if names else None


def _summary_figures(text: str | None) -> dict[str, Any]:
    """The quantization label and weight count of a release's stored summary (read here,
    not with a database's JSON functions, so both backends run one query)."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    quantization, params = data.get("quantization"), data.get("params")
    return {"quantization": str(quantization) if quantization else "-",
            "params": int(params) if isinstance(params, (int, float)) else 0}


def _model_id(ws: Workspace, model: str) -> int:
    from devtrack.registry import require_model

    return require_model(ws, model)


def _deployed_map(ws: Workspace, model_id: int) -> dict[int, list[str]]:
    deployed: dict[int, list[str]] = {}
    for release_id, profile in queries_overview.live_profiles(ws.store, model_id):
        deployed.setdefault(release_id, []).append(profile)
    return deployed


def load_profile_or_error(ws: Workspace, name: str) -> tuple[Profile | None, str | None]:
    """The profile called ``name``, or None and the one-line reason it cannot be used."""
    from devtrack.profiles import load_profile

    try:
        return load_profile(name, ws.root), None
    except DevtrackError as exc:
        return None, str(exc)


def profile_names(ws: Workspace) -> list[str]:
    """The names of every valid device profile (workspace and shipped)."""
    from devtrack.profiles import list_profiles

    return [entry.name for entry in list_profiles(ws.root) if entry.ok]


def budget_verdict(results: list[BudgetResult] | tuple[BudgetResult, ...]) -> str:
    """One word for a set of budget results: fail beats missing beats pass."""
    if not results:
        return BUDGET_NONE
    statuses = {r.status for r in results}
    if FAIL in statuses:
        return FAIL
    if MISSING in statuses:
        return MISSING
    return PASS


class _SetBudgets:
    """A profile's budgets with ``items()`` worked out once: it runs ``asdict`` on every
    call, which judging a thousand releases would repeat a thousand times."""

    def __init__(self, budgets: Budgets) -> None:
        self._items = budgets.items()

    def items(self) -> dict[str, float]:
        return self._items


def judge_budgets(profile: Profile | Budgets | _SetBudgets | None, p90_ms: float | None,
                  peak_rss_mb: float | None, size_bytes: int,
                  accuracy: float | None) -> list[BudgetResult]:
    """A profile's absolute budgets judged on one release's figures."""
    if profile is None:
        return []
    budgets = profile.budgets if isinstance(profile, Profile) else profile
    figures = Figures(p90_ms=p90_ms, peak_rss_mb=peak_rss_mb, size_mb=size_bytes / MIB,
                      accuracy=accuracy)
    return evaluate_budgets(cast(Budgets, budgets), figures)


def regression_limits(profile: Profile | None) -> tuple[float, float, float]:
    """(latency %, memory %, accuracy drop) beyond which a change counts as a regression.

    Memory shares the latency limit, as in ``devtrack trend``.
    """
    budgets = profile.budgets if profile is not None else None
    latency = latency_limit_pct(budgets)
    return latency, latency, accuracy_drop_limit(budgets)


def _pct(new: float | None, old: float | None) -> float | None:
    if new is None or old is None or old <= 0:
        return None
    return (new / old - 1.0) * 100.0


@dataclass
class _Previous:
    """The last release with a value of one metric: its version, value and what it may be
    compared with (conditions, and the dataset for accuracy)."""

    version: str
    value: float
    comparable: str


def release_overview(ws: Workspace, model: str, profile: str | None) -> ReleaseTable:
    """Every release of ``model`` with its figures on ``profile``, in four queries in all.

    Figures come from each release's run that counts (``counted_runs``: the newest ok run
    under the profile's current conditions), as in every other view. Each metric is
    compared with the previous release that has it — accuracy only on the same dataset —
    and counts as a regression beyond the profile's limits: latency and memory by
    ``max_latency_regression_pct`` (default 5%), accuracy by ``max_accuracy_drop``
    (default 0.01). This is the quick, sample-free reading of ``devtrack trend``'s rule;
    ``trend`` also requires a p50 change to be significant on the stored samples.
    """
    model_id = _model_id(ws, model)
    loaded, error = load_profile_or_error(ws, profile) if profile else (None, None)
    conditions = conditions_now(loaded)
    releases = queries_overview.release_table(ws.store, model_id)
    deployed = _deployed_map(ws, model_id)
    choices: dict[int, RunChoice[dict[str, Any]]] = {}
    evaluations: dict[int, dict[str, Any]] = {}
    if profile:
        choices = counted_runs(ws, model_id, profile, conditions)
        evaluations = counted_evaluations(ws, model_id, profile, choices)
    latency_limit, memory_limit, drop_limit = regression_limits(loaded)
    budgets = _SetBudgets(loaded.budgets) if loaded is not None else None
    rows: list[ReleaseOverview] = []
    previous: dict[str, _Previous] = {}
    for rel in releases:
        rid = rel["id"]
        choice = choices.get(rid, RunChoice(None))
        ok = choice.run
        newest = choice.newest
        evaluation = evaluations.get(rid)
        acc = evaluation["accuracy"] if evaluation else None
        fields_: dict[str, Any] = {}
        if ok is not None:
            results = judge_budgets(budgets, budget_latency_ms(ok), ok["peak_rss_mb"],
                                    rel["size_bytes"], acc)
            fields_.update(
                run_id=ok["id"], p50_ms=ok["p50_ms"], p90_ms=ok["p90_ms"],
                peak_rss_mb=ok["peak_rss_mb"], accuracy=acc,
                warnings=tuple(json.loads(ok["warnings"] or "[]")),
                budget=budget_verdict(results), budget_results=tuple(results))
            fields_.update(_changes(rel["version"], ok, acc, previous, latency_limit,
                                    memory_limit, drop_limit,
                                    evaluation["dataset_id"] if evaluation else None))
        rows.append(ReleaseOverview(
            id=rid, model=model, version=rel["version"], status=rel["status"],
            created_at=rel["created_at"], format=rel["format"], size_bytes=rel["size_bytes"],
            **_summary_figures(rel["summary"]),
            notes=rel["notes"], parent=rel["parent"],
            deployed_on=tuple(deployed.get(rid, ())),
            # The newest run of any conditions, not the one the figures come from: a run
            # that failed after the shown one did is what the line under the table says.
            newer_runs=bool(choice.newer_other), other_runs=choice.other,
            run_status=newest["status"] if newest is not None else None,
            run_error=newest["error"] if newest is not None else None,
            runs=choice.total,
            **fields_,
        ))
    return ReleaseTable(model=model, profile=profile, conditions_hash=conditions,
                        budgets=loaded.budgets.items() if loaded is not None else {},
                        rows=rows, profile_error=error,
                        formats=tuple(loaded.formats) if loaded is not None else ())


def _changes(version: str, run: dict[str, Any], acc: float | None,
             previous: dict[str, _Previous], latency_limit: float, memory_limit: float,
             drop_limit: float, acc_dataset: int | None = None) -> dict[str, Any]:
    """Deltas of one release against ``previous`` (updated in place) and its regressions;
    accuracy only against one on the same evaluation dataset."""
    values = {"p50_ms": run["p50_ms"], "peak_rss_mb": run["peak_rss_mb"], "accuracy": acc}
    out: dict[str, Any] = {}
    regressions: dict[str, str] = {}
    for metric, value in values.items():
        if value is None:
            continue
        comparable = run["conditions_hash"] + (
            f"|{acc_dataset}" if metric == "accuracy" else "")
        before = previous.get(metric)
        previous[metric] = _Previous(version, float(value), comparable)
        if before is None or before.comparable != comparable:
            continue
        if metric == "accuracy":
            change = float(value) - before.value
            out["accuracy_change"] = change
            if -change > drop_limit:
                regressions[metric] = (f"accuracy {change:+.4f} vs {before.version} "
                                       f"(limit -{drop_limit:g})")
            continue
        pct = _pct(float(value), before.value)
        limit = latency_limit if metric == "p50_ms" else memory_limit
        if metric == "p50_ms":
            out["p50_change_pct"] = pct
            out["baseline_version"] = before.version
        else:
            out["memory_change_pct"] = pct
        if pct is not None and pct > limit:
            label = "p50" if metric == "p50_ms" else "peak memory"
            regressions[metric] = f"{label} {pct:+.1f}% vs {before.version} (limit {limit:g}%)"
    out["regressions"] = tuple(regressions.values())
    out["regressed_metrics"] = tuple(regressions)
    return out


def release_detail(ws: Workspace, ref: ReleaseRef | str) -> ReleaseDetail:
    """One release with everything the detail view shows, in a handful of queries."""
    from devtrack.benchmarking import list_runs
    from devtrack.registry import get_release

    release = get_release(ws, ref)
    family = {row["id"]: row for row in queries_overview.release_family(ws.store, release.id)}
    lineage: list[str] = []
    seen = {release.id}
    parent_id = family[release.id]["parent_id"]
    while parent_id is not None and parent_id not in seen and parent_id in family:
        seen.add(parent_id)
        lineage.append(family[parent_id]["version"])
        parent_id = family[parent_id]["parent_id"]
    children = [row["version"] for row in family.values() if row["parent_id"] == release.id]
    runs = list_runs(ws, release)
    evaluations: dict[int, dict[str, Any]] = {}
    for row in queries_overview.evaluations_with_dataset(ws.store,
                                                         [r["run_id"] for r in runs]):
        evaluations[row["run_id"]] = row
    deployments = queries_overview.deployments_of_release(ws.store, release.id)
    live = {d["profile"] for d in deployments if d["ended_at"] is None}
    by_profile: dict[str, list[dict[str, Any]]] = {}
    for run in reversed(runs):
        run["evaluation"] = _evaluation_view(evaluations.get(run["run_id"]))
        by_profile.setdefault(run["profile"], []).append(run)
    profiles = []
    for name in sorted(by_profile.keys() | live):
        profile_runs = by_profile.get(name, [])
        loaded, _ = load_profile_or_error(ws, name)
        conditions = conditions_now(loaded)
        choice = choose(ws, release.id, name, conditions)
        chosen = choice.run["id"] if choice.run is not None else None
        ok = next((r for r in profile_runs if r["run_id"] == chosen), None)
        evaluation = _evaluation_view(counted_evaluation(ws, release.id, name, conditions)
                                      if ok is not None else None)
        acc = evaluation.get("accuracy") if evaluation else None
        results = (judge_budgets(loaded, budget_latency_ms(ok), ok["peak_rss_mb"],
                                 release.size_bytes, acc) if ok is not None else [])
        profiles.append(ProfileResult(
            profile=name, runs=profile_runs, counted=ok, evaluation=evaluation,
            budget_results=results, conditions_hash=conditions, deployed=name in live,
            choice=choice))
    events = queries_overview.events_of_release(ws.store, release.model, release.version)
    return ReleaseDetail(release=release, lineage=lineage, children=sorted(children),
                         profiles=profiles, deployments=deployments, events=events)


def compare_baseline(ws: Workspace, model: str, version: str) -> str | None:
    """The release to compare ``version`` with by default: its parent, else the one before."""
    found = queries_overview.parent_and_previous(ws.store, model, version)
    if found is None:
        return None
    parent, previous = found
    return parent or previous


def release_versions(ws: Workspace, model: str) -> list[str]:
    """The versions of a model line in registration order."""
    return queries_overview.versions_of_model(ws.store, model)


def _evaluation_view(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "dataset": row.get("dataset"),
        "task": row.get("task"),
        "accuracy": row.get("accuracy"),
        "metrics": json.loads(row["metrics"]) if row.get("metrics") else {},
        "fidelity": json.loads(row["fidelity"]) if row.get("fidelity") else None,
        "nonfinite": bool(row.get("nonfinite")),
    }


def audit_events(ws: Workspace, model: str | None = None, kind: str | None = None,
                 limit: int | None = None) -> list[dict[str, Any]]:
    """Audit events, newest first, optionally of one model and one kind."""
    return ws.store.events(model, kind, newest_first=True, limit=limit)


def event_kinds(ws: Workspace) -> list[str]:
    return queries_overview.event_kinds(ws.store)
