"""`devtrack bisect`: the first release on a line whose latency change passes the threshold.

The path runs from the good release to the bad one along the bad one's parent chain (creation
order when the chain does not reach the good one). Each step measures a release side by side
with the good one (``pairing.measure_pair``), judged by the profile's regression limit; the
search (``core/bisection.py``) measures the bad end first, then halves. A release the profile
cannot run, or whose measurement fails, is skipped and reported. The first bad release is
then explained against the last good one (``explaining.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devtrack.core.bisection import BAD, GOOD, SKIP, BisectSearch, most_measurements
from devtrack.core.explanation import Explanation
from devtrack.core.policy import latency_limit_pct
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.core.significance import VERDICT_SLOWER
from devtrack.errors import UsageError
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    from collections.abc import Sequence

    from devtrack.investigations import MeasuredStep
    from devtrack.overview import ReleaseOverview
    from devtrack.pairing import RerunSettings

Progress = Callable[[str], None]


@dataclass
class BisectStep:
    """One side-by-side measurement of a release against the good one (or a skip)."""

    ref: str
    position: int
    verdict: str  # good | bad | skip
    ratio: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None  # why it was skipped
    measured: bool = True  # a worker ran (False: skipped before, e.g. a format the profile
    # cannot run)
    comparison_id: int | None = None  # the stored side-by-side measurement

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "position": self.position, "verdict": self.verdict,
                "ratio": self.ratio, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "reason": self.reason, "comparison_id": self.comparison_id}


@dataclass
class BisectResult:
    """The path, every step, the first bad release (or None) and its explanation."""

    good: str
    bad: str
    profile: str
    threshold_pct: float
    path: list[str]
    path_kind: str  # "parent chain" | "creation order"
    steps: list[BisectStep] = field(default_factory=list)
    first_bad: str | None = None
    last_good: str | None = None
    candidates: list[str] = field(default_factory=list)  # skipped ones the answer may be
    explanation: Explanation | None = None
    explain_error: str | None = None
    note: str | None = None
    event_id: int | None = None  # the bisect event that records it

    def step_of(self, ref: str | None) -> BisectStep | None:
        """The step that measured ``ref`` (None: not measured)."""
        return next((s for s in self.steps if s.ref == ref), None)

    @property
    def measurements(self) -> int:
        """Side-by-side measurements run (a failed one counts, a format skip does not)."""
        return sum(1 for s in self.steps if s.measured)

    @property
    def skipped(self) -> list[BisectStep]:
        return [s for s in self.steps if s.verdict == SKIP]

    def to_dict(self) -> dict[str, Any]:
        return {"good": self.good, "bad": self.bad, "profile": self.profile,
                "threshold_pct": self.threshold_pct, "path": self.path,
                "path_kind": self.path_kind, "first_bad": self.first_bad,
                "last_good": self.last_good, "maybe_skipped": self.candidates,
                "measurements": self.measurements,
                "steps": [s.to_dict() for s in self.steps],
                "skipped": [{"ref": s.ref, "reason": s.reason} for s in self.skipped],
                "explanation": self.explanation.to_dict() if self.explanation else None,
                "explain_error": self.explain_error, "note": self.note,
                "event_id": self.event_id}


@dataclass(frozen=True)
class BisectPlan:
    """What a bisect will measure: the path from good to bad, on which profile, judged how."""

    model: str
    good: Release
    bad: Release
    profile: Profile
    path: list[Release]
    path_kind: str  # "parent chain" | "creation order"
    threshold_pct: float

    @property
    def most_measurements(self) -> int:
        """Side-by-side measurements at most, when no release is skipped."""
        return most_measurements(len(self.path))

    def describe(self) -> str:
        """The plan in one sentence, as the CLI prints it first."""
        return (f"bisect {self.model} on {self.profile.name}: {len(self.path)} releases along "
                f"the {self.path_kind} ({' → '.join(r.version for r in self.path)}); a step "
                f"is bad when it is slower than {self.good.ref} by more than "
                f"{self.threshold_pct:g}%")


@dataclass(frozen=True)
class BisectProgress:
    """Where a running bisect is, for a progress bar: ``done`` side-by-side measurements of
    at most ``most`` (more when releases are skipped), the release measured now and the
    last step's answer; ``phase`` is "measuring", "explaining" or "done"."""

    done: int
    most: int
    current: str | None
    last: BisectStep | None
    phase: str


Observer = Callable[[BisectProgress], None]


def release_path(line: list[Release], good: Release, bad: Release) -> tuple[list[Release], str]:
    """Releases from ``good`` to ``bad`` (both included): along ``bad``'s parent chain when
    it reaches ``good``, else in creation order. Raises UsageError when good is not before bad.
    """
    if good.id == bad.id or good.version == bad.version:
        raise UsageError(f"--good and --bad are the same release ({good.ref}): nothing to "
                         f"bisect")
    by_version = {r.version: r for r in line}
    chain = [bad]
    seen = {bad.version}
    while chain[-1].parent and chain[-1].parent in by_version and chain[-1].version != good.version:
        parent = by_version[chain[-1].parent]
        if parent.version in seen:
            break
        seen.add(parent.version)
        chain.append(parent)
    if chain[-1].version == good.version:
        return list(reversed(chain)), "parent chain"
    if good.id > bad.id:
        raise UsageError(f"--good {good.ref} is not before --bad {bad.ref} (it was registered "
                         f"later and is not on its parent chain)")
    return [r for r in line if good.id <= r.id <= bad.id], "creation order"


@dataclass(frozen=True)
class GoodChoice:
    """The release a bisect of a flagged one starts from, and why it was chosen."""

    version: str
    why: str


def suggest_good(rows: Sequence[ReleaseOverview], bad: str, profile: str,
                 runs_format: Callable[[str], bool]) -> GoodChoice | None:
    """Where a bisect of ``bad`` (a release the table marks ``!`` on ``profile``) should
    start: the last release before it measured there whose p50 is not marked a regression;
    else the one deployed there before it; else the line's first. Only releases the profile
    can run count. ``rows`` in registration order (``overview.release_overview``); None
    when no release before ``bad`` can be measured."""
    versions = [r.version for r in rows]
    if bad not in versions:
        return None
    before = [r for r in rows[:versions.index(bad)] if runs_format(r.format)]
    for row in reversed(before):
        if row.p50_ms is not None and "p50_ms" not in row.regressed_metrics:
            return GoodChoice(row.version, f"the last release before {bad} measured on "
                                           f"{profile} and not marked as a regression")
    deployed = [r for r in before if profile in r.deployed_on]
    if deployed:
        return GoodChoice(deployed[-1].version, f"deployed on {profile}")
    if before:
        return GoodChoice(before[0].version, "the first release of the line")
    return None


def _resolve(ws: Workspace, model: str, version: str, option: str) -> Release:
    from devtrack.errors import NotFoundError
    from devtrack.registry import get_release

    if not version.strip():
        raise UsageError(f"{option} needs a version")
    try:
        return get_release(ws, f"{model}@{version}")
    except NotFoundError as exc:
        raise UsageError(f"{option}: {exc}") from None


def plan_bisect(ws: Workspace, model: str, good: str, bad: str,
                profile_name: str) -> BisectPlan:
    """Resolve and check a bisect before anything runs: the path and its threshold.

    Raises UsageError (exit 2) for an unknown model, version or profile, good equal to bad,
    good not before bad, or a good release the profile cannot run.
    """
    from devtrack.pairing import check_side_by_side_possible, measured_profile
    from devtrack.profiles import load_profile
    from devtrack.registry import list_releases, require_model

    require_model(ws, model)
    good_rel = _resolve(ws, model, good, "--good")
    bad_rel = _resolve(ws, model, bad, "--bad")
    profile = measured_profile(load_profile(profile_name, ws.root))
    check_side_by_side_possible(profile)  # an adb:// profile: one model per process
    if not profile.runs_format(good_rel.format):
        raise UsageError(f"profile {profile.name} does not run {good_rel.format} models, so "
                         f"--good {good_rel.ref} cannot be measured")
    path, kind = release_path(list_releases(ws, model), good_rel, bad_rel)
    return BisectPlan(model, good_rel, bad_rel, profile, path, kind,
                      latency_limit_pct(profile.budgets))


def bisect_releases(ws: Workspace, model: str, good: str, bad: str, profile_name: str,
                    settings: RerunSettings | None = None, explain: bool = True,
                    progress: Progress | None = None,
                    observe: Observer | None = None) -> BisectResult:
    """Find the first release between ``good`` and ``bad`` whose latency change against
    ``good`` passes ``profile_name``'s regression limit, record it, then explain it.

    Every side-by-side measurement is stored with one ``bisect`` event once the search ends
    (``investigations.record_bisect``); the explanation records its own ``explain`` event.
    ``progress`` gets each line the CLI prints, ``observe`` a :class:`BisectProgress` before
    and after each measurement. Raises UsageError (exit 2) for an unknown model, version or
    profile, good equal to bad, or good not before bad; measurement failures are skips,
    never errors; Aborted (Ctrl-C, a stop) stores nothing.
    """
    plan = plan_bisect(ws, model, good, bad, profile_name)
    path, profile = plan.path, plan.profile
    result = BisectResult(plan.good.ref, plan.bad.ref, profile.name, plan.threshold_pct,
                          [r.ref for r in path], plan.path_kind)
    say = progress or (lambda _message: None)
    tell = observe or (lambda _progress: None)
    say(plan.describe())
    search = BisectSearch(len(path))
    measured: list[MeasuredStep] = []
    while (position := search.next_position()) is not None:
        tell(BisectProgress(result.measurements, max(plan.most_measurements,
                                                      result.measurements + 1),
                            path[position].ref, result.steps[-1] if result.steps else None,
                            "measuring"))
        item = _step(ws, path[0], path[position], position, profile, result.threshold_pct,
                     settings, say)
        measured.append(item)
        result.steps.append(item.step)
        search.mark(position, item.step.verdict)
    _answer(result, search, path, profile, say)
    from devtrack.investigations import record_bisect

    result.event_id = record_bisect(ws, result, path[0], profile, measured)
    if explain and result.first_bad is not None:
        tell(BisectProgress(result.measurements, result.measurements, result.first_bad,
                            result.steps[-1], "explaining"))
        _explain(ws, result, path[search.last_good], path[search.first_bad or 0], profile,
                 say)
    tell(BisectProgress(result.measurements, result.measurements, None,
                        result.steps[-1] if result.steps else None, "done"))
    return result


def _step(ws: Workspace, good: Release, release: Release, position: int, profile: Profile,
          threshold_pct: float, settings: RerunSettings | None, say: Progress) -> MeasuredStep:
    from devtrack.investigations import MeasuredStep
    from devtrack.metric_changes import paired_latency
    from devtrack.pairing import measure_pair

    if not profile.runs_format(release.format):
        say(f"skip {release.ref}: profile {profile.name} does not run {release.format} models")
        return MeasuredStep(BisectStep(
            release.ref, position, SKIP, measured=False,
            reason=f"profile {profile.name} does not run {release.format} models"), release, None)
    say(f"measure {release.ref} against {good.ref} side by side")
    try:
        paired = measure_pair(ws, good, release, profile, settings)
    except UsageError as exc:  # inputs the pair cannot share, …: this release cannot be run
        say(f"skip {release.ref}: {exc}")
        return MeasuredStep(BisectStep(release.ref, position, SKIP, reason=str(exc),
                                       measured=False), release, None)
    if not paired.ok:
        say(f"skip {release.ref}: measurement failed: {paired.error}")
        return MeasuredStep(BisectStep(release.ref, position, SKIP,
                                       reason=f"measurement failed: {paired.error}"),
                            release, paired)
    latency = paired_latency(paired, threshold_pct)
    verdict = BAD if latency.verdict == VERDICT_SLOWER else GOOD
    say(f"  {release.ref}: ×{latency.ratio:.3f} [{latency.ci_low:.3f}, {latency.ci_high:.3f}] "
        f"→ {verdict}")
    return MeasuredStep(BisectStep(release.ref, position, verdict, round(latency.ratio, 5),
                                   round(latency.ci_low, 5), round(latency.ci_high, 5)),
                        release, paired)


def _answer(result: BisectResult, search: BisectSearch, path: list[Release],
            profile: Profile, say: Progress) -> None:
    first = search.first_bad
    if first is None:
        end = search.marks.get(len(path) - 1)
        result.note = (f"{result.bad} could not be measured: nothing to bisect" if end == SKIP
                       else f"{result.bad} is not slower than {result.good} beyond "
                            f"{result.threshold_pct:g}% on {profile.name}: nothing to bisect")
        say(result.note)
        return
    result.first_bad = path[first].ref
    result.last_good = path[search.last_good].ref
    result.candidates = [path[i].ref for i in search.skipped_between()]
    maybe = (f" (or one of the skipped {', '.join(result.candidates)})"
             if result.candidates else "")
    say(f"first bad: {result.first_bad}{maybe}, after {result.last_good}; "
        f"{result.measurements} side-by-side measurements")


def _explain(ws: Workspace, result: BisectResult, last_good: Release, first_bad: Release,
             profile: Profile, say: Progress) -> None:
    from devtrack.errors import Aborted, DevtrackError
    from devtrack.explaining import explain_releases

    try:
        result.explanation = explain_releases(ws, last_good, first_bad, profile.name,
                                              progress=say)
    except Aborted:
        raise
    except DevtrackError as exc:  # the answer stands; only its explanation is missing
        result.explain_error = str(exc)
