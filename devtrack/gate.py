"""The CI gate: a release's budgets and regression limits on each profile, stored as checks."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from devtrack import queries
from devtrack.comparison import check_same_model, load_profiles, store_pair
from devtrack.core.adb_target import is_adb
from devtrack.core.aggregate_runs import (
    budget_latency_ms,
    is_aggregates_only,
    medians_side_by_side,
    which_aggregates,
)
from devtrack.core.audit_state import text_digest
from devtrack.core.budgets import FAIL, MISSING, PASS, Figures, evaluate_budgets
from devtrack.core.counting import RunChoice, measure_command
from devtrack.core.diff import MIB
from devtrack.core.policy import accuracy_drop_limit, latency_limit_pct
from devtrack.core.profile import MAX_REPEATS, Profile
from devtrack.core.release import Release
from devtrack.core.significance import VERDICT_SLOWER
from devtrack.counted_runs import counted_evaluation, counted_run
from devtrack.errors import DevtrackError, UsageError
from devtrack.metric_changes import (
    STORED_RUNS_NOTE,
    AccuracyChange,
    LatencyChange,
    accuracy_change,
    paired_latency,
    stored_latency,
)
from devtrack.pairing import (
    PairedResult,
    RerunSettings,
    check_pair_fits,
    check_runs_formats,
    measure_pair,
    measured_profile,
)
from devtrack.provenance import current_user
from devtrack.records import Run
from devtrack.store import utc_now
from devtrack.workspace import Workspace

SKIPPED = "skipped"
NOT_MEASURED = "not_measured"  # no run under the profile's current conditions: exit 1, not a fail
INCONCLUSIVE_PASS = "pass"  # a latency verdict too noisy to decide passes, with a note
INCONCLUSIVE_FAIL = "fail"  # ... or fails the check
INCONCLUSIVE_POLICIES = (INCONCLUSIVE_PASS, INCONCLUSIVE_FAIL)
LATENCY_LIMIT = "max_latency_regression_pct"
ACCURACY_LIMIT = "max_accuracy_drop"
_RUN_METRICS = ("p90_ms", "peak_rss_mb")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CheckItem:
    """One judged check: a budget or a regression limit on one profile."""

    name: str  # the budget or limit, e.g. "latency_p90_ms", "max_latency_regression_pct"
    metric: str  # the figure judged, e.g. "p90_ms", "p50 latency ratio"
    status: str  # pass | fail | skipped | not_measured
    message: str
    value: float | None = None
    limit: float | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    @property
    def blocks(self) -> bool:
        """Whether this item stops the check passing: failed, or not measured."""
        return self.status in (FAIL, NOT_MEASURED)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "status": self.status,
                "message": self.message, "value": self.value, "limit": self.limit}


@dataclass
class ProfileCheck:
    """Every check of one release on one profile."""

    profile: str
    profile_hash: str
    baseline: str | None = None  # MODEL@VERSION
    baseline_source: str | None = None  # "given" | "deployed" | "parent"
    run_id: int | None = None
    items: list[CheckItem] = field(default_factory=list)
    latency: LatencyChange | None = None
    accuracy: AccuracyChange | None = None
    notes: list[str] = field(default_factory=list)
    comparison_id: int | None = None
    check_id: int | None = None
    inconclusive_policy: str = INCONCLUSIVE_PASS
    conditions_hash: str = ""
    measure_with: str | None = None  # the command that measures what is not measured
    unmeasured: list[str] = field(default_factory=list)  # refs with no run that counts
    contributors: list[str] = field(default_factory=list)  # of a latency regression (explain)

    @property
    def passed(self) -> bool:
        return not any(item.blocks for item in self.items)

    @property
    def status(self) -> str:
        """fail beats not_measured beats pass."""
        if any(item.failed for item in self.items):
            return FAIL
        return NOT_MEASURED if any(item.blocks for item in self.items) else PASS

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile, "profile_hash": self.profile_hash,
                "conditions_hash": self.conditions_hash, "status": self.status,
                "measure_with": self.measure_with,
                "passed": self.passed, "baseline": self.baseline,
                "baseline_source": self.baseline_source, "run_id": self.run_id,
                "checks": [i.to_dict() for i in self.items],
                "latency": self.latency.to_dict() if self.latency else None,
                "accuracy": self.accuracy.to_dict() if self.accuracy else None,
                "notes": self.notes, "comparison_id": self.comparison_id,
                "check_id": self.check_id, "inconclusive_policy": self.inconclusive_policy,
                "contributors": self.contributors}


@dataclass
class CheckReport:
    """The answer of :func:`check_release`: passed only when every profile passed."""

    candidate: str
    profiles: list[ProfileCheck]
    rerun: bool
    notes: list[str] = field(default_factory=list)
    inconclusive_policy: str = INCONCLUSIVE_PASS

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.profiles)

    def failures(self) -> list[tuple[str, CheckItem]]:
        return [(p.profile, i) for p in self.profiles for i in p.items if i.failed]

    def not_measured(self) -> list[tuple[str, CheckItem]]:
        return [(p.profile, i) for p in self.profiles for i in p.items
                if i.status == NOT_MEASURED]

    @property
    def status(self) -> str:
        """fail beats not_measured beats pass, over every profile."""
        statuses = {p.status for p in self.profiles}
        return next((s for s in (FAIL, NOT_MEASURED) if s in statuses), PASS)

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "passed": self.passed, "status": self.status,
                "rerun": self.rerun,
                "inconclusive_policy": self.inconclusive_policy,
                "profiles": [p.to_dict() for p in self.profiles], "notes": self.notes}


# --- which profiles, which baseline -------------------------------------------------------

def deployed_release_id(ws: Workspace, release: Release, profile: str) -> int | None:
    """The release of ``release``'s model live on ``profile`` (open deployment), if any."""
    return queries.live_release_id(ws.store, release.id, profile)


def _release_by_id(ws: Workspace, release_id: int) -> Release:
    from devtrack.registry import get_release

    ref = queries.release_ref(ws.store, release_id)
    assert ref is not None, f"release {release_id} vanished"
    return get_release(ws, f"{ref[0]}@{ref[1]}")


def default_profiles(ws: Workspace, candidate: Release) -> tuple[list[Profile], list[str]]:
    """Profiles to check when none are named, and notes on names left out.

    Every profile that runs the candidate's format and on which the candidate has a run
    (any outcome, any settings) or its model is deployed now.
    """
    from devtrack.profiles import load_profile

    chosen, notes = [], []
    for name in queries.profiles_of_release(ws.store, candidate.id):
        try:
            profile = load_profile(name, ws.root)
        except DevtrackError as exc:
            notes.append(f"profile {name} left out: {exc}")
            continue
        if profile.runs_format(candidate.format):
            chosen.append(profile)
    return chosen, notes


def _baseline_for(ws: Workspace, candidate: Release, profile: str,
                  given: Release | None) -> tuple[Release | None, str | None]:
    from devtrack.registry import get_release

    if given is not None:
        return given, "given"
    deployed = deployed_release_id(ws, candidate, profile)
    if deployed is not None:
        return _release_by_id(ws, deployed), "deployed"
    if candidate.parent is not None:
        return get_release(ws, f"{candidate.model}@{candidate.parent}"), "parent"
    return None, None


# --- the gate -----------------------------------------------------------------------------

def check_release(ws: Workspace, candidate: Release | str, baseline: Release | str | None = None,
                  profiles: list[str] | tuple[str, ...] | None = None, bench: bool = False,
                  rerun: bool = True, settings: RerunSettings | None = None,
                  progress: Progress | None = None,
                  inconclusive: str = INCONCLUSIVE_PASS) -> CheckReport:
    """Check ``candidate``'s budgets and regression limits on each profile.

    Profiles: the named ones, else :func:`default_profiles`. Budgets are judged on the run
    that counts (``counted_runs``: the newest ok run under the profile's current
    conditions); without one they are *not measured* (``bench`` measures it first).
    Regression limits compare with the baseline — ``baseline``, else the
    release deployed on that profile, else the candidate's parent — on a fresh interleaved
    measurement (``rerun``) or on stored runs. ``inconclusive`` says what a side-by-side
    latency verdict still undecided when its sequential measurement reaches the cap does (see
    :func:`latency_item`); it needs ``rerun``, as stored runs are indicative only. One
    ``checks`` row and one ``check`` event per profile are written in one transaction. Bad
    input raises UsageError before any measurement or write.
    """
    from devtrack.registry import get_release

    if inconclusive not in INCONCLUSIVE_POLICIES:
        raise UsageError(f"unknown inconclusive policy {inconclusive!r}; use "
                         f"{' or '.join(INCONCLUSIVE_POLICIES)}")
    if inconclusive == INCONCLUSIVE_FAIL and not rerun:
        raise UsageError("--inconclusive fail needs a side-by-side measurement: stored runs "
                         "(--no-rerun) are indicative only; drop one of the two")

    cand = get_release(ws, candidate) if isinstance(candidate, str) else candidate
    base = get_release(ws, baseline) if isinstance(baseline, str) else baseline
    if base is not None:
        check_same_model(base, cand)
        if base.id == cand.id:
            raise UsageError(f"--baseline {base.ref} is the candidate itself; name an "
                             "earlier release")
    report = CheckReport(cand.ref, [], rerun, inconclusive_policy=inconclusive)
    if profiles:
        chosen = load_profiles(ws, list(profiles))
        for profile in chosen:
            check_runs_formats(profile, cand)
    else:
        chosen, report.notes = default_profiles(ws, cand)
        if not chosen:
            raise UsageError(f"nothing to check: {cand.ref} has no runs and {cand.model} is "
                             "not deployed anywhere; name profiles with --profile NAME "
                             "(add --bench to measure there first)")
    if rerun:  # a --repeats that cannot fit: exit 2 before anything is measured
        for profile in chosen:
            if (profile.budgets.max_latency_regression_pct is not None
                    and not is_adb(profile.execution.target)):
                check_pair_fits(measured_profile(profile), settings)
    if bench:
        _measure_missing(ws, cand, base, chosen, rerun, progress)
    paired: list[tuple[Profile, Release, PairedResult]] = []
    for profile in chosen:
        check = _check_profile(ws, cand, base, profile, bench, rerun, settings, progress,
                               paired, inconclusive)
        if check.unmeasured:
            check.measure_with = measure_command(dict.fromkeys(check.unmeasured),
                                                 profile.name)
        report.profiles.append(check)
    _store(ws, cand, report, paired)
    return report


def _check_profile(ws: Workspace, cand: Release, given: Release | None, profile: Profile,
                   bench: bool, rerun: bool, settings: RerunSettings | None,
                   progress: Progress | None,
                   paired: list[tuple[Profile, Release, PairedResult]],
                   inconclusive: str) -> ProfileCheck:
    measured = measured_profile(profile)
    check = ProfileCheck(profile.name, measured.hash, inconclusive_policy=inconclusive,
                         conditions_hash=measured.conditions_hash)
    run, choice = _counted_run(ws, cand, measured, bench, progress)
    check.run_id = run.id if run is not None else None
    check.items += budget_items(ws, cand, measured, (run, choice))
    note = choice.newer_runs_note()
    if note:
        check.notes.append(f"{cand.ref}: {note} (devtrack results {cand.ref} -p "
                           f"{profile.name})")
    if any(i.status == NOT_MEASURED for i in check.items):
        check.unmeasured.append(cand.ref)
    baseline, source = _baseline_for(ws, cand, profile.name, given)
    limits = profile.budgets
    if baseline is None or baseline.id == cand.id:
        why = (f"{cand.ref} is the release deployed on {profile.name}" if baseline
               else f"no baseline: nothing deployed on {profile.name} and {cand.ref} has "
                    "no parent")
        for name in (LATENCY_LIMIT, ACCURACY_LIMIT):
            limit = getattr(limits, name)
            if limit is not None:
                check.items.append(CheckItem(name, _metric(name), SKIPPED, f"skipped: {why}",
                                             limit=limit))
        return check
    check.baseline, check.baseline_source = baseline.ref, source
    if limits.max_latency_regression_pct is not None:
        item = _latency_item(ws, cand, baseline, measured, bench, rerun, settings, progress,
                             check, paired)
        check.items.append(_with_contributors(ws, item, baseline, cand, measured, rerun,
                                              check, progress))
    if limits.max_accuracy_drop is not None:
        check.items.append(_accuracy_item(ws, cand, baseline, measured, check))
    return check


def _with_contributors(ws: Workspace, item: CheckItem, baseline: Release, cand: Release,
                       profile: Profile, rerun: bool, check: ProfileCheck,
                       progress: Progress | None) -> CheckItem:
    """A latency regression's item naming its top per-operator contributors (``explain``),
    when per-operator data exists; any other item as it is."""
    if not item.failed or check.latency is None or check.latency.verdict != VERDICT_SLOWER:
        return item
    from devtrack.explaining import latency_contributors

    check.contributors, note = latency_contributors(ws, baseline, cand, profile, rerun,
                                                    progress)
    if note:
        check.notes.append(note)
    if not check.contributors:
        return item
    return replace(item, message=f"{item.message}; top contributors: "
                                 f"{'; '.join(check.contributors)}")


def _metric(limit: str) -> str:
    return "p50 latency ratio" if limit == LATENCY_LIMIT else "accuracy drop"


def _counted_run(ws: Workspace, release: Release, profile: Profile, bench: bool,
                 progress: Progress | None) -> tuple[Run | None, RunChoice[dict[str, Any]]]:
    """The run that counts under ``profile``'s conditions, and the choice; with ``bench``,
    measured first when the release has no finished run under them."""
    conditions = profile.conditions_hash
    run, choice = counted_run(ws, release.id, profile.name, conditions)
    if run is None and choice.failed is None and bench:
        from devtrack.benchmarking import BenchOverrides, plan, run_measurement

        if progress is not None:
            progress(f"measuring {release.ref} on {profile.name}")
        measurements, _ = plan([release], [profile], BenchOverrides())
        for m in measurements:
            run_measurement(ws, m, BenchOverrides())
        run, choice = counted_run(ws, release.id, profile.name, conditions)
    return run, choice


def _measure_missing(ws: Workspace, cand: Release, given: Release | None,
                     chosen: list[Profile], rerun: bool, progress: Progress | None) -> None:
    """``check --bench``: measure, in one bench (devices in parallel, one job per device at a
    time), every release the checks below need a run of and have none of — the candidate on
    each profile, and with stored runs (no rerun) the baseline too. Raises Aborted when a
    signal stopped it (the interrupted runs are stored as aborted)."""
    from devtrack.benchmarking import BenchOverrides
    from devtrack.orchestration import plan_pairs, run_bench

    def missing(release: Release, profile: Profile) -> bool:
        run, choice = counted_run(ws, release.id, profile.name, profile.conditions_hash)
        return run is None and choice.failed is None

    pairs: list[tuple[Release, Profile]] = []
    for profile in chosen:
        measured = measured_profile(profile)
        if missing(cand, measured):
            pairs.append((cand, measured))
        baseline, _ = _baseline_for(ws, cand, profile.name, given)
        if not rerun and baseline is not None and baseline.id != cand.id and missing(
                baseline, profile):
            pairs.append((baseline, profile))
    if not pairs:
        return

    def started(event: Any) -> None:
        if progress is not None and event.kind == "started":
            progress(f"measuring {event.label}")

    outcome = run_bench(ws, plan_pairs(ws, pairs, BenchOverrides()), BenchOverrides(),
                        on_event=started)
    if outcome.interrupted is not None:
        raise outcome.interrupted


def _not_measured_text(profile: str) -> str:
    return f"not measured on {profile} under its current conditions"


def budget_items(ws: Workspace, release: Release, profile: Profile,
                 counted: tuple[Run | None, RunChoice[dict[str, Any]]] | None = None
                 ) -> list[CheckItem]:
    """Every absolute budget of ``profile`` judged for ``release``, without storing anything.

    ``profile`` should be :func:`~devtrack.pairing.measured_profile` of a loaded one;
    ``counted`` defaults to the run that counts under its conditions. With no run under
    them at all, a budget that needs one is *not measured* (with the command that
    measures it); when the latest finished run under them failed, "run" fails; a figure
    the run that counts lacks fails (a gate cannot pass what it did not see).
    """
    run, choice = counted if counted is not None else counted_run(
        ws, release.id, profile.name, profile.conditions_hash)
    evaluation = counted_evaluation(ws, release.id, profile.name, profile.conditions_hash)
    p95_for_p90 = run is not None and run.p90_ms is None and is_aggregates_only(run)
    figures = Figures(
        p90_ms=budget_latency_ms(run) if run is not None else None,
        peak_rss_mb=run.peak_rss_mb if run else None,
        size_mb=release.size_bytes / MIB,
        accuracy=float(evaluation["accuracy"]) if evaluation else None,
    )
    items = []
    failed = choice.failed  # newer than the run that counts: what the release does now
    if failed is not None:
        since = (f" (run {failed['id']}; run {run.id}, older, is the last ok one)"
                 if run is not None else "")
        items.append(CheckItem("run", "status", FAIL,
                               f"the latest run on {profile.name} failed: {failed['error']}"
                               + since))
    how = measure_command([release.ref], profile.name)
    others = choice.other_runs_note()
    for result in evaluate_budgets(profile.budgets, figures):
        if result.status != MISSING:
            message = result.message()
            if p95_for_p90 and result.metric == "p90_ms":
                message += (" (judged on p95: benchmark_model prints no p90, and p90 ≤ p95, "
                            "so a pass holds; a fail may be p95 alone)")
            items.append(CheckItem(result.budget, result.metric, result.status, message,
                                   result.value, result.limit))
            continue
        if run is None and failed is None:
            items.append(CheckItem(
                result.budget, result.metric, NOT_MEASURED,
                f"{result.metric} of {release.ref} {_not_measured_text(profile.name)}"
                + (f" ({others})" if others else "")
                + f"; measure with: {how} (or check --bench)", None, result.limit))
            continue
        if result.metric in _RUN_METRICS:
            why = "no successful run to judge it on"
        else:
            why = f"accuracy not evaluated on {profile.name}"
        items.append(CheckItem(result.budget, result.metric, FAIL,
                               f"{result.metric} {why} (budget {result.budget} = "
                               f"{result.limit:g})", None, result.limit))
    return items


def _latency_item(ws: Workspace, cand: Release, baseline: Release, profile: Profile,
                  bench: bool, rerun: bool, settings: RerunSettings | None,
                  progress: Progress | None, check: ProfileCheck,
                  paired: list[tuple[Profile, Release, PairedResult]]) -> CheckItem:
    limit_pct = latency_limit_pct(profile.budgets)
    vs = f"vs {baseline.ref}"
    on_phone = is_adb(profile.execution.target)  # benchmark_model: one model per process
    if rerun and not on_phone:
        try:
            result = measure_pair(ws, baseline, cand, profile, settings, progress,
                                  limit_pct=limit_pct)
        except UsageError as exc:  # e.g. the two cannot share inputs or a runtime
            return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), FAIL,
                             f"cannot measure {cand.ref} side by side {vs}: {exc}",
                             limit=limit_pct)
        paired.append((profile, baseline, result))
        if not result.ok:
            return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), FAIL,
                             f"side-by-side measurement {vs} failed: {result.error}",
                             limit=limit_pct)
        # Sequential: the worker added repeats until the CI decided against the limit or
        # reached the cap (core/sequential.py), so an undecided verdict here is final.
        latency = paired_latency(result, limit_pct)
        note = result.clock_note()
        if note:
            check.notes.append(note)
    else:
        run_a, _ = _counted_run(ws, baseline, profile, bench, progress)
        run_b, _ = counted_run(ws, cand.id, profile.name, profile.conditions_hash)
        missing = [r.ref for r, run in ((baseline, run_a), (cand, run_b)) if run is None]
        check.unmeasured.extend(missing)
        if missing:
            return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), NOT_MEASURED,
                             f"{' and '.join(missing)} {_not_measured_text(profile.name)}; "
                             f"measure with: {measure_command(missing, profile.name)} (or "
                             "check --bench" + ("" if on_phone else ", or drop --no-rerun")
                             + ")", limit=limit_pct)
        assert run_a is not None and run_b is not None
        which = which_aggregates(baseline.ref, cand.ref, run_a, run_b)
        if which is not None or on_phone:
            return _aggregates_item(baseline, cand, profile, run_a, run_b,
                                    which or "the runs hold", rerun, check)
        stored = stored_latency(run_a, run_b, limit_pct)
        if stored is None:
            return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), FAIL,
                             f"the stored runs of {baseline.ref} and {cand.ref} on "
                             f"{profile.name} hold too few samples to compare; drop "
                             "--no-rerun", limit=limit_pct)
        latency = stored
        check.notes.append(STORED_RUNS_NOTE)
    check.latency = latency
    return latency_item(latency, baseline.ref, check.inconclusive_policy)


def _aggregates_item(baseline: Release, cand: Release, profile: Profile,
                     run_a: Run, run_b: Run, which: str, rerun: bool,
                     check: ProfileCheck) -> CheckItem:
    """The latency limit where a run holds only aggregates (benchmark_model): both medians
    side by side, no statistical verdict; inconclusive, so it passes with the reason under
    ``--inconclusive pass`` and fails under ``fail``."""
    limit_pct = latency_limit_pct(profile.budgets)
    text = medians_side_by_side(baseline.ref, cand.ref, run_a.p50_ms, run_b.p50_ms, which)
    if is_adb(profile.execution.target) and rerun:
        text += (f"; a side-by-side re-measurement is not possible on {profile.execution.target}"
                 ": benchmark_model runs one model per process")
    ratio = (run_b.p50_ms / run_a.p50_ms
             if run_a.p50_ms and run_b.p50_ms is not None else None)
    fails = rerun and check.inconclusive_policy == INCONCLUSIVE_FAIL
    check.notes.append(STORED_RUNS_NOTE)
    return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), FAIL if fails else PASS,
                     f"inconclusive: {text} (limit {LATENCY_LIMIT} {limit_pct:g})"
                     + ("; --inconclusive fail fails it" if fails else ""), ratio, limit_pct)


def is_inconclusive(latency: LatencyChange) -> bool:
    """Whether a latency verdict leaves the gate undecided: not slower, yet its 95% CI
    reaches above 1 + threshold, so a regression beyond the limit is not ruled out — a CI
    too wide to tell, or a narrow one sitting just under the limit. A faster or unchanged
    verdict whose CI stays under the limit is decided, however wide the CI."""
    return (latency.verdict != VERDICT_SLOWER
            and latency.ci_high > 1.0 + latency.threshold_pct / 100.0)


def undecided_note(latency: LatencyChange) -> str | None:
    """Why a passing latency verdict did not settle the gate (None when it did)."""
    if not is_inconclusive(latency):
        return None
    limit = 1 + latency.threshold_pct / 100
    return (f"inconclusive: a regression beyond {latency.threshold_pct:g}% is not ruled out "
            f"(95% CI {latency.ci_low:.3f}–{latency.ci_high:.3f} reaches above {limit:.3f})")


def _more_repeats(n: int) -> str:
    """The advice for an undecided verdict measured with ``n`` repeats."""
    if 2 * n <= MAX_REPEATS:
        return f"re-run with more repeats (--repeats {2 * n}) or on a quieter machine"
    return "re-run on a quieter machine"


def latency_item(latency: LatencyChange, baseline: str,
                 policy: str = INCONCLUSIVE_PASS) -> CheckItem:
    """The regression-limit check of ``latency`` (candidate over ``baseline``, a ref).

    Slower fails. An :func:`is_inconclusive` side-by-side verdict passes with a note under
    ``policy`` "pass" and fails under "fail"; a stored (indicative) verdict is never failed
    for being inconclusive.
    """
    limit_pct = latency.threshold_pct
    text = f"{latency.describe()} vs {baseline}"
    if latency.verdict == VERDICT_SLOWER:
        return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), FAIL,
                         f"{text} exceeds {LATENCY_LIMIT} {limit_pct:g}", latency.ratio,
                         limit_pct)
    if policy == INCONCLUSIVE_FAIL and not latency.indicative and is_inconclusive(latency):
        return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), FAIL,
                         f"{text} over {latency.n} repeats: inconclusive, a regression "
                         f"beyond {LATENCY_LIMIT} {limit_pct:g}% is not ruled out (95% CI "
                         f"{latency.ci_low:.3f}–{latency.ci_high:.3f} reaches above "
                         f"{1 + limit_pct / 100:.3f}), and --inconclusive fail fails it; "
                         f"{_more_repeats(latency.n)}, or use --inconclusive pass",
                         latency.ratio, limit_pct)
    noise = undecided_note(latency) if not latency.indicative else None
    return CheckItem(LATENCY_LIMIT, _metric(LATENCY_LIMIT), PASS,
                     f"{text}: {latency.verdict} (limit {LATENCY_LIMIT} {limit_pct:g})"
                     + (f"; {noise}" if noise else ""), latency.ratio, limit_pct)


def _accuracy_item(ws: Workspace, cand: Release, baseline: Release, profile: Profile,
                   check: ProfileCheck) -> CheckItem:
    limit = accuracy_drop_limit(profile.budgets)
    conditions = profile.conditions_hash
    ev_c = counted_evaluation(ws, cand.id, profile.name, conditions)
    ev_b = counted_evaluation(ws, baseline.id, profile.name, conditions)
    if ev_b is None:
        return CheckItem(ACCURACY_LIMIT, _metric(ACCURACY_LIMIT), SKIPPED,
                         f"skipped: {baseline.ref} has no accuracy on {profile.name} "
                         "under its current conditions",
                         limit=limit)
    if ev_c is None and cand.ref in check.unmeasured:
        return CheckItem(ACCURACY_LIMIT, _metric(ACCURACY_LIMIT), NOT_MEASURED,
                         f"accuracy of {cand.ref} {_not_measured_text(profile.name)}; "
                         f"measure with: {measure_command([cand.ref], profile.name)} --eval "
                         f"{ev_b['dataset']} (or check --bench)", limit=limit)
    if ev_c is None:
        return CheckItem(ACCURACY_LIMIT, _metric(ACCURACY_LIMIT), FAIL,
                         f"accuracy of {cand.ref} not evaluated on {profile.name} "
                         f"({baseline.ref} has one, on {ev_b['dataset']}); bench it with "
                         f"--eval {ev_b['dataset']}", limit=limit)
    change = accuracy_change(ws, ev_b, ev_c)
    if change is None:
        return CheckItem(ACCURACY_LIMIT, _metric(ACCURACY_LIMIT), FAIL,
                         f"accuracy of {cand.ref} and {baseline.ref} measured on different "
                         f"datasets ({ev_c['dataset']}, {ev_b['dataset']}); bench "
                         f"{cand.ref} with --eval {ev_b['dataset']} to compare them",
                         limit=limit)
    check.accuracy = change
    drop = -change.diff
    text = (f"accuracy {change.b:.4f} vs {change.a:.4f} of {baseline.ref} on {change.dataset} "
            f"({change.diff * 100:+.2f} points, 95% CI {change.ci_low * 100:+.2f} to "
            f"{change.ci_high * 100:+.2f}, {change.method})")
    if drop > limit:
        return CheckItem(ACCURACY_LIMIT, _metric(ACCURACY_LIMIT), FAIL,
                         f"{text}: a drop of {drop:.4f} exceeds {ACCURACY_LIMIT} {limit:g}",
                         drop, limit)
    return CheckItem(ACCURACY_LIMIT, _metric(ACCURACY_LIMIT), PASS,
                     f"{text} (limit {ACCURACY_LIMIT} {limit:g})", drop, limit)


def _store(ws: Workspace, cand: Release, report: CheckReport,
           paired: list[tuple[Profile, Release, PairedResult]]) -> None:
    actor, now = current_user(), utc_now()
    with ws.store.transaction():
        for profile, baseline, result in paired:
            check = next(c for c in report.profiles if c.profile == profile.name)
            check.comparison_id = store_pair(ws, baseline, cand, profile, result,
                                             check.latency if result.ok else None)
        for check in report.profiles:
            baseline_id = None
            if check.baseline is not None:
                from devtrack.registry import get_release

                baseline_id = get_release(ws, check.baseline).id
            report_text = json.dumps(check.to_dict())
            sealed: dict[str, Any] = {}
            if check.comparison_id is not None:  # audit verify checks it by digest
                from devtrack.auditing import comparison_digest

                sealed = {"comparison": check.comparison_id,
                          "comparison_sha256": comparison_digest(ws, check.comparison_id)}
            check.check_id = ws.store.insert("checks", {
                "release_id": cand.id, "baseline_release_id": baseline_id,
                "profile": check.profile, "profile_hash": check.profile_hash,
                "passed": int(check.passed), "report": report_text,
                "created_at": now, "actor": actor,
            })
            ws.store.append_event(
                actor=actor, kind="check", model=cand.model, version=cand.version, ts=now,
                payload={"check": check.check_id, "profile": check.profile,
                         "profile_hash": check.profile_hash[:12], "passed": check.passed,
                         "baseline": check.baseline, "rerun": report.rerun,
                         "inconclusive_policy": report.inconclusive_policy,
                         "failed": [i.name for i in check.items if i.failed],
                         "report_sha256": text_digest(report_text), **sealed})
