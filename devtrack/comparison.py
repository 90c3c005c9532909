"""Compare two releases: what changed, and every metric per profile with its verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from devtrack import queries
from devtrack.bench.protocol import samples_to_blob
from devtrack.core.aggregate_runs import medians_side_by_side, which_aggregates
from devtrack.core.counting import measure_command
from devtrack.core.diff import ReleaseDiff, diff_releases
from devtrack.core.policy import latency_limit_pct, limits_of_snapshot
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.counted_runs import conditions_now, counted_evaluation, counted_run
from devtrack.errors import DevtrackError, UsageError
from devtrack.metric_changes import (
    STORED_RUNS_NOTE,
    AccuracyChange,
    LatencyChange,
    MetricDelta,
    OpDelta,
    accuracy_change,
    memory_deltas,
    op_deltas,
    paired_latency,
    stored_latency,
)
from devtrack.pairing import (
    PairedResult,
    Progress,
    RerunSettings,
    check_pair_fits,
    check_runs_formats,
    measure_pair,
    measured_profile,
)
from devtrack.provenance import current_user
from devtrack.store import utc_now
from devtrack.workspace import Workspace


@dataclass
class ProfileComparison:
    """A and B on one device profile, measured under the same conditions."""

    profile: str
    profile_hash: str
    conditions_hash: str = ""
    threshold_pct: float = field(default_factory=lambda: latency_limit_pct(None))
    latency: LatencyChange | None = None
    memory: list[MetricDelta] = field(default_factory=list)
    accuracy: AccuracyChange | None = None
    ops: list[OpDelta] = field(default_factory=list)
    run_a: int | None = None
    run_b: int | None = None
    comparison_id: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "profile_hash": self.profile_hash,
                "conditions_hash": self.conditions_hash, "threshold_pct": self.threshold_pct,
                "latency": self.latency.to_dict() if self.latency else None,
                "memory": [m.to_dict() for m in self.memory],
                "accuracy": self.accuracy.to_dict() if self.accuracy else None,
                "ops": [o.to_dict() for o in self.ops], "run_a": self.run_a,
                "run_b": self.run_b, "comparison_id": self.comparison_id, "notes": self.notes}


@dataclass
class Comparison:
    """The answer of :func:`compare_releases`."""

    a: Release
    b: Release
    diff: ReleaseDiff
    profiles: list[ProfileComparison]
    not_comparable: dict[str, str]  # profile -> why it has no comparison
    rerun: bool
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a.ref, "b": self.b.ref, "rerun": self.rerun,
                "diff": self.diff.to_dict(),
                "profiles": [p.to_dict() for p in self.profiles],
                "not_comparable": self.not_comparable, "notes": self.notes}


def store_pair(ws: Workspace, baseline: Release, candidate: Release, profile: Profile,
               result: PairedResult, latency: LatencyChange | None) -> int:
    """Insert one ``comparisons`` row; call inside a transaction."""
    return ws.store.insert("comparisons", {
        "baseline_release_id": baseline.id, "candidate_release_id": candidate.id,
        "profile": profile.name, "profile_hash": profile.hash, "status": result.status,
        "error": result.error,
        "ratio": result.ratio if result.ok else None,
        "ci_low": result.ci_low if result.ok else None,
        "ci_high": result.ci_high if result.ok else None,
        "verdict": latency.verdict if latency else None,
        "ratios": samples_to_blob(result.block_ratios) if result.ok else None,
        "details": json.dumps({**result.details(),
                               "threshold_pct": latency.threshold_pct if latency else None}),
        "created_at": utc_now(), "actor": current_user(),
    })


# --- the comparison -----------------------------------------------------------------------

def _resolve(ws: Workspace, release: Release | str) -> Release:
    from devtrack.registry import get_release

    return get_release(ws, release) if isinstance(release, str) else release


def check_same_model(a: Release, b: Release) -> None:
    if a.model != b.model:
        raise UsageError(f"cannot compare releases of different models: {a.ref} is a "
                         f"{a.model!r} release and {b.ref} a {b.model!r} one")


def load_profiles(ws: Workspace, names: list[str] | tuple[str, ...]) -> list[Profile]:
    """Named profiles, validated up front (an unknown name is a usage error, exit 2)."""
    from devtrack.profiles import load_profile

    return [load_profile(name, ws.root) for name in dict.fromkeys(names)]


def compare_releases(ws: Workspace, a: Release | str, b: Release | str,
                     profiles: list[str] | tuple[str, ...] | None = None, rerun: bool = False,
                     settings: RerunSettings | None = None,
                     progress: Progress | None = None) -> Comparison:
    """Compare B against A (the baseline) on every profile both were measured on.

    Without ``rerun`` latency comes from the run that counts of each (``counted_runs``: the
    newest ok run under the profile's current conditions; indicative only); with ``rerun``
    A and B are measured again side by side, interleaved in one worker, and each
    measurement is stored in ``comparisons`` with a ``compare`` event. Memory, accuracy and
    op deltas always come from the runs that count.
    """
    rel_a, rel_b = _resolve(ws, a), _resolve(ws, b)
    check_same_model(rel_a, rel_b)
    chosen = load_profiles(ws, list(profiles or []))
    if rerun:
        for profile in chosen:
            check_runs_formats(profile, rel_a, rel_b)
    result = Comparison(rel_a, rel_b, diff_releases(rel_a, rel_b), [], {}, rerun)
    names = [p.name for p in chosen] or _measured_by_both(ws, rel_a, rel_b, result)
    if rerun and not chosen:
        chosen = _rerunnable(ws, names, rel_a, rel_b, result)
        names = [p.name for p in chosen]
        if not names:
            raise UsageError(f"no profile to re-measure {rel_a.ref} and {rel_b.ref} on; "
                             "name one with --profile NAME")
    by_name = {p.name: p for p in chosen}
    for profile in chosen if rerun else []:  # a --repeats that cannot fit: exit 2 up front
        check_pair_fits(measured_profile(profile), settings)
    for name in names:
        comparison = _compare_stored(ws, rel_a, rel_b, name, result,
                                     by_name.get(name) or _profile_or_none(ws, name))
        if rerun:
            comparison = _rerun(ws, rel_a, rel_b, by_name[name], comparison, settings,
                                progress)
        if comparison is not None:
            result.profiles.append(comparison)
    if not rerun and any(p.latency for p in result.profiles):
        result.notes.append(STORED_RUNS_NOTE)
    return result


def _measured_by_both(ws: Workspace, a: Release, b: Release, result: Comparison) -> list[str]:
    pairs = queries.ok_profiles(ws.store, (a.id, b.id))
    on_a = {profile for release_id, profile in pairs if release_id == a.id}
    on_b = {profile for release_id, profile in pairs if release_id == b.id}
    for name in sorted(on_a ^ on_b):
        result.not_comparable[name] = f"not measured with {b.ref if name in on_a else a.ref}"
    return sorted(on_a & on_b)


def _rerunnable(ws: Workspace, names: list[str], a: Release, b: Release,
                result: Comparison) -> list[Profile]:
    from devtrack.errors import DevtrackError

    chosen = []
    for name in names:
        try:
            profile = load_profiles(ws, [name])[0]
            check_runs_formats(profile, a, b)
        except DevtrackError as exc:
            result.not_comparable[name] = f"cannot re-measure: {exc}"
            continue
        chosen.append(profile)
    return chosen


def _profile_or_none(ws: Workspace, name: str) -> Profile | None:
    try:
        return load_profiles(ws, [name])[0]
    except DevtrackError:  # no longer defined: its runs still compare among themselves
        return None


def _compare_stored(ws: Workspace, a: Release, b: Release, name: str, result: Comparison,
                    profile: Profile | None) -> ProfileComparison | None:
    conditions = conditions_now(profile)
    run_a, choice_a = counted_run(ws, a.id, name, conditions)
    run_b, choice_b = counted_run(ws, b.id, name, conditions)
    empty = ProfileComparison(name, "", conditions or "",
                              latency_limit_pct(profile.budgets if profile else None))
    if run_a is None or run_b is None:
        missing = [r for r, run in ((a, run_a), (b, run_b)) if run is None]
        others = "; ".join(n for n in (choice_a.other_runs_note(), choice_b.other_runs_note())
                           if n)
        if not result.rerun:
            result.not_comparable[name] = (
                f"{' and '.join(r.ref for r in missing)} not measured on {name} under its "
                f"current conditions{f' ({others})' if others else ''}; measure with: "
                f"{measure_command([r.ref for r in missing], name)}")
        return empty if result.rerun else None
    if run_a.conditions_hash != run_b.conditions_hash:  # only when no profile now
        if not result.rerun:
            result.not_comparable[name] = (
                f"profile {name} is no longer defined and the newest runs of A and B were "
                "taken under different conditions; measure both again")
        return empty if result.rerun else None
    threshold = (latency_limit_pct(profile.budgets) if profile is not None
                 else limits_of_snapshot(json.loads(run_a.profile_snapshot or "{}"))[0])
    comparison = ProfileComparison(name, profile.hash if profile else run_a.profile_hash,
                                   run_a.conditions_hash, threshold, run_a=run_a.id,
                                   run_b=run_b.id)
    for release, choice in ((a, choice_a), (b, choice_b)):
        note = choice.newer_runs_note()
        if note:
            comparison.notes.append(f"{release.ref}: {note} (devtrack results {release.ref} "
                                    f"-p {name})")
    if not result.rerun:
        comparison.latency = stored_latency(run_a, run_b, threshold)
        which = which_aggregates(a.ref, b.ref, run_a, run_b)
        if which is not None:  # no samples on one side: no CI, no verdict (aggregate_runs)
            comparison.latency = None
            comparison.notes.append(medians_side_by_side(a.ref, b.ref, run_a.p50_ms,
                                                         run_b.p50_ms, which))
    comparison.memory = memory_deltas(run_a, run_b)
    comparison.ops = op_deltas(run_a, run_b)
    ev_a = counted_evaluation(ws, a.id, name, run_a.conditions_hash)
    ev_b = counted_evaluation(ws, b.id, name, run_a.conditions_hash)
    if ev_a and ev_b:
        comparison.accuracy = accuracy_change(ws, ev_a, ev_b)
        if comparison.accuracy is None:
            comparison.notes.append(f"accuracy measured on different datasets "
                                    f"({ev_a['dataset']} and {ev_b['dataset']})")
    return comparison


def _rerun(ws: Workspace, a: Release, b: Release, profile: Profile,
           comparison: ProfileComparison | None, settings: RerunSettings | None,
           progress: Progress | None) -> ProfileComparison:
    measured = measured_profile(profile)
    threshold_pct = latency_limit_pct(profile.budgets)
    comparison = comparison or ProfileComparison(profile.name, measured.hash)
    comparison.profile_hash = measured.hash
    comparison.conditions_hash = measured.conditions_hash
    comparison.threshold_pct = threshold_pct
    paired = measure_pair(ws, a, b, measured, settings, progress, limit_pct=threshold_pct)
    if paired.ok:
        comparison.latency = paired_latency(paired, threshold_pct)
        clock_note = paired.clock_note()
        if clock_note:
            comparison.notes.append(clock_note)
        # A sequential measurement says itself whether it decided; a wide CI that still
        # decided (a 2x change after 4 repeats) is not "too noisy".
        note = (paired.undecided_note() if paired.plan is not None
                else comparison.latency.noise_note())
        if note:
            comparison.notes.append(note)
    else:
        comparison.notes.append(f"interleaved measurement failed: {paired.error}")
    with ws.store.transaction():
        comparison.comparison_id = store_pair(ws, a, b, measured, paired,
                                              comparison.latency)
        from devtrack.auditing import comparison_digest

        ws.store.append_event(
            actor=current_user(), kind="compare", model=b.model, version=b.version,
            payload={"comparison": comparison.comparison_id, "baseline": a.version,
                     "profile": profile.name, "profile_hash": measured.hash[:12],
                     "status": paired.status,
                     "ratio": comparison.latency.ratio if comparison.latency else None,
                     "verdict": comparison.latency.verdict if comparison.latency else None,
                     "error": paired.error,  # audit verify checks the rest by digest
                     "fields_sha256": comparison_digest(ws, comparison.comparison_id)})
    return comparison

