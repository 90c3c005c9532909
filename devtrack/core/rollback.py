"""Rollback policy: which earlier release to go back to on a profile, and why not the others."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from devtrack.core.budgets import FAIL, MISSING, BudgetResult, Figures, evaluate_budgets
from devtrack.core.counting import NEWER_RUNS_NOTE, other_runs_note
from devtrack.core.profile import Budgets
from devtrack.core.units import format_latency

# Why a release was passed over. POSITION and STATUS reasons are about what the release is
# (asking for it with --to is a usage error); EVIDENCE reasons are about its measurements
# (asking for it is a failed check).
POSITION = "position"
STATUS = "status"
EVIDENCE = "evidence"

_FIGURE_LABELS = {
    "p90_ms": ("p90", " ms"),
    "peak_rss_mb": ("peak RSS", " MB"),
    "size_mb": ("size", " MB"),
    "accuracy": ("accuracy", ""),
}


@dataclass(frozen=True)
class ReleaseFacts:
    """What the policy knows about one release of the model line on one profile."""

    version: str
    status: str  # candidate | approved | rejected | yanked
    ever_deployed: bool = False  # deployed on any profile at some time (a rollback counts)
    figures: Figures | None = None  # None: no run that counts (core.counting) on the profile
    stale_runs: int = 0  # ok runs on the profile taken under other conditions
    run_error: str | None = None  # no run counts and the latest under the conditions failed
    newer_other: int = 0  # ok runs under other conditions newer than the run that counts


@dataclass(frozen=True)
class Assessment:
    """One release judged by the policy: the reasons it was passed over (none if chosen)."""

    version: str
    status: str
    reasons: tuple[str, ...]
    blocker: str | None  # POSITION, STATUS or EVIDENCE: the gravest kind among the reasons
    budgets: tuple[BudgetResult, ...] = ()
    chosen: bool = False

    @property
    def eligible(self) -> bool:
        return self.blocker is None

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "status": self.status, "chosen": self.chosen,
                "eligible": self.eligible, "reasons": list(self.reasons),
                "blocker": self.blocker,
                "budgets": [b.to_dict() for b in self.budgets]}


@dataclass(frozen=True)
class RollbackPlan:
    """The proposed target (or None) and every other release in order of preference."""

    profile: str
    current: str
    target: str | None
    ranked: tuple[Assessment, ...]  # the target first, then the rest in the order considered
    requested: str | None = None  # the --to version, when one was given
    refusal: str | None = field(default=None)  # why there is no target, in one sentence
    notes: tuple[str, ...] = ()  # e.g. newer runs under other conditions than those judged

    @property
    def chosen(self) -> Assessment | None:
        return next((a for a in self.ranked if a.chosen), None)

    def assessment(self, version: str) -> Assessment:
        return next(a for a in self.ranked if a.version == version)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "current": self.current, "target": self.target,
                "requested": self.requested, "refusal": self.refusal, "notes": list(self.notes),
                "ranked": [a.to_dict() for a in self.ranked]}


def budget_figure(result: BudgetResult) -> str:
    """``p90 12.1 ms > 10 ms``: a budget's figure against its limit, as a user reads it."""
    label, unit = _FIGURE_LABELS.get(result.metric, (result.metric, ""))
    if result.value is None:
        return f"{label} not measured"
    at_least = result.budget == "min_accuracy"
    relation = ("≥" if at_least else "≤") if result.passed else ("<" if at_least else ">")
    if unit == " ms":  # sub-millisecond figures in µs, against a limit with its unit
        return f"{label} {format_latency(result.value)} {relation} {result.limit:g} ms"
    return f"{label} {result.value:.3g}{unit} {relation} {result.limit:g}"


def budget_failure(result: BudgetResult) -> str:
    """``fails budget latency_p90_ms (p90 12.1 ms > 10 ms)``."""
    return f"fails budget {result.budget} ({budget_figure(result)})"


def _assess(facts: ReleaseFacts, profile: str, budgets: Budgets) -> Assessment:
    """Judge a release that comes before the current deployment on status and evidence."""
    reasons: list[str] = []
    blocker: str | None = None
    if facts.status in ("rejected", "yanked"):
        reasons.append(facts.status)
        blocker = STATUS
    elif facts.status != "approved" and not facts.ever_deployed:
        reasons.append("never approved or deployed")
        blocker = STATUS
    results: tuple[BudgetResult, ...] = ()
    if facts.run_error is not None:
        reasons.append(f"its latest run on {profile} failed: {facts.run_error}")
        blocker = blocker or EVIDENCE
    elif facts.figures is None:
        missing = f"not measured on {profile} under its current conditions"
        if facts.stale_runs:
            missing += f" ({other_runs_note(facts.stale_runs)}; bench it again)"
        reasons.append(missing)
        blocker = blocker or EVIDENCE
    else:
        results = tuple(evaluate_budgets(budgets, facts.figures))
        # As in `devtrack check`, a budget whose figure was not measured is not passed.
        failures = [budget_failure(r) for r in results if r.status in (FAIL, MISSING)]
        if failures:
            reasons.extend(failures)
            blocker = blocker or EVIDENCE
    return Assessment(facts.version, facts.status, tuple(reasons), blocker, results)


def _passed_over(a: Assessment, reason: str) -> Assessment:
    return Assessment(a.version, a.status, (reason,), a.blocker, a.budgets)


def propose_rollback(releases: Sequence[ReleaseFacts], current: str, profile: str,
                     budgets: Budgets, to: str | None = None) -> RollbackPlan:
    """Choose where to roll back to from ``current`` (releases are given oldest first).

    The target is the most recent release before the current deployment that was approved
    or deployed before, is not rejected or yanked, has a run that counts on ``profile``
    (core.counting: under its current conditions) and passes its budgets. With ``to``,
    that release is judged by the same rules and is the target only if it passes them. As
    in ``devtrack check``, a budget whose figure was not measured (e.g. accuracy never
    evaluated) is not passed.
    """
    versions = [r.version for r in releases]
    if current not in versions:
        raise ValueError(f"current deployment {current!r} is not among the releases")
    if to is not None and to not in versions:
        raise ValueError(f"requested release {to!r} is not among the releases")
    position = versions.index(current)
    earlier = [_assess(r, profile, budgets) for r in reversed(releases[:position])]
    current_facts = releases[position]
    newer = [Assessment(r.version, r.status, ("newer than the current deployment",), POSITION)
             for r in reversed(releases[position + 1:])]
    current_a = Assessment(current_facts.version, current_facts.status,
                           ("is the current deployment",), POSITION)

    if to is None:
        target = next((a for a in earlier if a.eligible), None)
    else:
        target = next((a for a in earlier if a.version == to and a.eligible), None)
    ranked: list[Assessment] = []
    if target is not None:
        ranked.append(Assessment(target.version, target.status, (), None, target.budgets,
                                 chosen=True))
    for a in earlier:
        if a is target:
            continue
        if a.eligible and target is not None:
            why = (f"eligible, but --to chose {target.version}" if to is not None
                   else f"eligible, but older than {target.version}")
            ranked.append(_passed_over(a, why))
        elif a.eligible:  # only with --to naming another release
            ranked.append(_passed_over(a, f"eligible, but --to asked for {to}"))
        else:
            ranked.append(a)
    ranked.append(current_a)
    ranked.extend(newer)
    notes = tuple(f"{r.version}: {NEWER_RUNS_NOTE}" for r in reversed(releases[:position])
                  if r.figures is not None and r.newer_other)
    plan = RollbackPlan(profile, current, target.version if target else None, tuple(ranked), to,
                        notes=notes)
    if target is None:
        return RollbackPlan(plan.profile, plan.current, None, plan.ranked, to,
                            _refusal(plan, to), notes)
    return plan


def _refusal(plan: RollbackPlan, to: str | None) -> str:
    if to is not None:
        a = plan.assessment(to)
        return f"{to} cannot be rolled back to on {plan.profile}: {'; '.join(a.reasons)}"
    if plan.ranked[0].version == plan.current:
        return (f"nothing was released before {plan.current}, so there is nothing to roll "
                "back to")
    return (f"no release before {plan.current} qualifies on {plan.profile}: each is rejected, "
            "yanked, never approved or deployed, not measured under the profile's current "
            "conditions, or "
            "over a budget (see the list)")


def refusal_kind(plan: RollbackPlan) -> str | None:
    """POSITION/STATUS when the requested release is the wrong kind, EVIDENCE otherwise."""
    if plan.target is not None:
        return None
    if plan.requested is None:
        return EVIDENCE
    return plan.assessment(plan.requested).blocker
