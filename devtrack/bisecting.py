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

from devtrack.core.bisection import BAD, GOOD, SKIP, BisectSearch
from devtrack.core.explanation import Explanation
from devtrack.core.policy import latency_limit_pct
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.core.significance import VERDICT_SLOWER
from devtrack.errors import UsageError
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    from devtrack.pairing import RerunSettings

Progress = Callable[[str], None]


@dataclass(frozen=True)
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

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "position": self.position, "verdict": self.verdict,
                "ratio": self.ratio, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "reason": self.reason}


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
                "explain_error": self.explain_error, "note": self.note}


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


def _resolve(ws: Workspace, model: str, version: str, option: str) -> Release:
    from devtrack.errors import NotFoundError
    from devtrack.registry import get_release

    if not version.strip():
        raise UsageError(f"{option} needs a version")
    try:
        return get_release(ws, f"{model}@{version}")
    except NotFoundError as exc:
        raise UsageError(f"{option}: {exc}") from None


def bisect_releases(ws: Workspace, model: str, good: str, bad: str, profile_name: str,
                    settings: RerunSettings | None = None, explain: bool = True,
                    progress: Progress | None = None) -> BisectResult:
    """Find the first release between ``good`` and ``bad`` whose latency change against
    ``good`` passes ``profile_name``'s regression limit, then explain it.

    Raises UsageError (exit 2) for an unknown model, version or profile, good equal to bad,
    or good not before bad; measurement failures are skips, never errors.
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
    result = BisectResult(good_rel.ref, bad_rel.ref, profile.name,
                          latency_limit_pct(profile.budgets), [r.ref for r in path], kind)
    say = progress or (lambda _message: None)
    say(f"bisect {model} on {profile.name}: {len(path)} releases along the {kind} "
        f"({' → '.join(r.version for r in path)}); a step is bad when it is slower than "
        f"{good_rel.ref} by more than {result.threshold_pct:g}%")
    search = BisectSearch(len(path))
    while (position := search.next_position()) is not None:
        step = _step(ws, path[0], path[position], position, profile, result.threshold_pct,
                     settings, say)
        result.steps.append(step)
        search.mark(position, step.verdict)
    _conclude(ws, result, search, path, profile, explain, say)
    return result


def _step(ws: Workspace, good: Release, release: Release, position: int, profile: Profile,
          threshold_pct: float, settings: RerunSettings | None, say: Progress) -> BisectStep:
    from devtrack.metric_changes import paired_latency
    from devtrack.pairing import measure_pair

    if not profile.runs_format(release.format):
        say(f"skip {release.ref}: profile {profile.name} does not run {release.format} models")
        return BisectStep(release.ref, position, SKIP, measured=False,
                          reason=f"profile {profile.name} does not run {release.format} models")
    say(f"measure {release.ref} against {good.ref} side by side")
    try:
        paired = measure_pair(ws, good, release, profile, settings)
    except UsageError as exc:  # inputs the pair cannot share, …: this release cannot be run
        say(f"skip {release.ref}: {exc}")
        return BisectStep(release.ref, position, SKIP, reason=str(exc), measured=False)
    if not paired.ok:
        say(f"skip {release.ref}: measurement failed: {paired.error}")
        return BisectStep(release.ref, position, SKIP, reason=f"measurement failed: "
                                                              f"{paired.error}")
    latency = paired_latency(paired, threshold_pct)
    verdict = BAD if latency.verdict == VERDICT_SLOWER else GOOD
    say(f"  {release.ref}: ×{latency.ratio:.3f} [{latency.ci_low:.3f}, {latency.ci_high:.3f}] "
        f"→ {verdict}")
    return BisectStep(release.ref, position, verdict, round(latency.ratio, 5),
                      round(latency.ci_low, 5), round(latency.ci_high, 5))


def _conclude(ws: Workspace, result: BisectResult, search: BisectSearch, path: list[Release],
              profile: Profile, explain: bool, say: Progress) -> None:
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
    if not explain:
        return
    from devtrack.errors import Aborted, DevtrackError
    from devtrack.explaining import explain_releases

    try:
        result.explanation = explain_releases(ws, path[search.last_good], path[first],
                                              profile.name, progress=say)
    except Aborted:
        raise
    except DevtrackError as exc:  # the answer stands; only its explanation is missing
        result.explain_error = str(exc)
