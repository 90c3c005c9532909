"""Compare two releases: what changed, and every metric per profile with its verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from devtrack.core.diff import ReleaseDiff, diff_releases
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.core.significance import (
    accuracy_diff_ci,
    latency_verdict,
    mann_whitney_u,
    ratio_of_medians_ci,
    unpaired_accuracy_diff_ci,
)
from devtrack.errors import UsageError
from devtrack.pairing import (
    PairedResult,
    Progress,
    RerunSettings,
    check_runs_formats,
    measure_pair,
    measured_profile,
)
from devtrack.provenance import current_user
from devtrack.store import utc_now
from devtrack.workspace import Workspace

STORED_RUNS_NOTE = (
    "latency verdicts from stored runs are indicative only: runs taken at different times "
    "differ by up to ±30% on a shared machine; an interleaved side-by-side measurement "
    "decides (compare --rerun; check without --no-rerun)"
)
TOP_OPS = 5
DEFAULT_THRESHOLD_PCT = 5.0  # latency noise floor when a profile sets no regression limit



@dataclass(frozen=True)
class LatencyChange:
    """Candidate (B) over baseline (A) latency: a ratio with its 95% CI and a verdict."""

    method: str  # "stored" (two runs taken apart) | "interleaved" (a fresh side-by-side run)
    ratio: float
    ci_low: float
    ci_high: float
    p_value: float | None  # Mann-Whitney U on stored samples; None for interleaved
    threshold_pct: float
    verdict: str  # faster | slower | unchanged
    a_ms: float | None  # medians of each side
    b_ms: float | None
    n: int  # samples per side (stored) or repeats (interleaved)

    @property
    def indicative(self) -> bool:
        return self.method == "stored"

    @property
    def pct(self) -> float:
        return (self.ratio - 1.0) * 100.0

    @property
    def resolved(self) -> bool:
        """Whether the CI is narrow enough to tell a change of the threshold's size.

        An "unchanged" from a CI wider than ±threshold means "too noisy to tell".
        """
        return (self.ci_high - self.ci_low) / 2.0 <= self.threshold_pct / 100.0

    def noise_note(self) -> str | None:
        if self.resolved:
            return None
        return (f"inconclusive: the 95% CI {self.ci_low:.2f}–{self.ci_high:.2f} is wider than "
                f"±{self.threshold_pct:g}%, too noisy to tell a change of that size")

    def describe(self) -> str:
        """``p50 latency +103.2% (ratio 2.03, 95% CI 1.98–2.07)``."""
        return (f"p50 latency {self.pct:+.1f}% (ratio {self.ratio:.2f}, 95% CI "
                f"{self.ci_low:.2f}–{self.ci_high:.2f})")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "ratio": self.ratio, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "pct": self.pct, "p_value": self.p_value,
                "threshold_pct": self.threshold_pct, "verdict": self.verdict,
                "a_ms": self.a_ms, "b_ms": self.b_ms, "n": self.n,
                "indicative": self.indicative, "resolved": self.resolved}


@dataclass(frozen=True)
class MetricDelta:
    """One figure of A and of B with its absolute and relative change."""

    metric: str
    a: float | None
    b: float | None

    @property
    def abs(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def rel(self) -> float | None:
        return None if self.a is None or self.b is None or self.a == 0 else self.b / self.a - 1

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "a": self.a, "b": self.b, "abs": self.abs,
                "rel": self.rel}


@dataclass(frozen=True)
class AccuracyChange:
    """Accuracy of A and B on one dataset: the difference B - A with its 95% CI."""

    dataset: str
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float | None  # exact McNemar when paired
    method: str  # "paired (McNemar)" | "unpaired"
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "a": self.a, "b": self.b, "diff": self.diff,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "p_value": self.p_value,
                "method": self.method, "n": self.n}


@dataclass(frozen=True)
class OpDelta:
    """Time per inference of one operator type in A's and B's op profiles."""

    op: str
    a_ms: float
    b_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "a_ms": self.a_ms, "b_ms": self.b_ms,
                "delta_ms": self.b_ms - self.a_ms}


@dataclass
class ProfileComparison:
    """A and B on one device profile, measured under the same profile hash."""

    profile: str
    profile_hash: str
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
        "ratios": result.block_ratios.astype("<f4").tobytes() if result.ok else None,
        "details": json.dumps({**result.details(),
                               "threshold_pct": latency.threshold_pct if latency else None}),
        "created_at": utc_now(), "actor": current_user(),
    })


# --- reading stored results ---------------------------------------------------------------

def ok_runs(ws: Workspace, release: Release, profile: str) -> list[dict[str, Any]]:
    """The release's successful runs on ``profile``, newest first (samples included)."""
    return ws.store.query(
        "SELECT * FROM runs WHERE release_id = ? AND profile = ? AND status = 'ok' "
        "ORDER BY id DESC", (release.id, profile))


def latest_ok_run(ws: Workspace, release: Release, profile: str,
                  profile_hash: str) -> dict[str, Any] | None:
    return ws.store.one(
        "SELECT * FROM runs WHERE release_id = ? AND profile = ? AND profile_hash = ? "
        "AND status = 'ok' ORDER BY id DESC LIMIT 1", (release.id, profile, profile_hash))


def threshold_pct_of(run: dict[str, Any]) -> float:
    """The latency noise threshold of the profile a run was taken under, in percent."""
    snapshot = json.loads(run.get("profile_snapshot") or "{}")
    value = (snapshot.get("budgets") or {}).get("max_latency_regression_pct")
    return float(value) if value is not None else DEFAULT_THRESHOLD_PCT


def stored_latency(run_a: dict[str, Any], run_b: dict[str, Any],
                   threshold_pct: float) -> LatencyChange | None:
    """Ratio of medians (bootstrap CI) and Mann-Whitney p of two stored runs' samples."""
    from devtrack.benchmarking import samples_of

    a, b = samples_of(run_a), samples_of(run_b)
    if a.size < 2 or b.size < 2:
        return None
    median_a, median_b = float(np.median(a)), float(np.median(b))
    n = int(min(a.size, b.size))
    # A microsecond model keeps 10^5 samples; the bootstrap and the rank test on an evenly
    # strided subset take milliseconds instead of tens of seconds, and the medians (and so
    # the ratio) still come from every sample.
    _, low, high = ratio_of_medians_ci(_thin(a), _thin(b))
    _, p = mann_whitney_u(_thin(a), _thin(b))
    ratio = median_b / median_a
    low, high = min(low, ratio), max(high, ratio)
    verdict = latency_verdict(ratio, low, high, threshold_pct / 100.0, p_value=p)
    return LatencyChange("stored", ratio, low, high, p, threshold_pct, verdict,
                         median_a, median_b, n)


STORED_SAMPLES_MAX = 4000


def _thin(samples: np.ndarray, limit: int = STORED_SAMPLES_MAX) -> np.ndarray:
    """At most ``limit`` samples, taken evenly across the run (so drift is represented)."""
    if samples.size <= limit:
        return samples
    return samples[np.linspace(0, samples.size - 1, limit).astype(np.int64)]


def paired_latency(result: PairedResult, threshold_pct: float) -> LatencyChange:
    """The verdict on a fresh interleaved measurement (see ``pairing.PairedResult``)."""
    verdict = latency_verdict(result.ratio, result.ci_low, result.ci_high,
                              threshold_pct / 100.0)
    return LatencyChange("interleaved", result.ratio, result.ci_low, result.ci_high, None,
                         threshold_pct, verdict, result.a_ms, result.b_ms,
                         len(result.repeat_ratios))


def latest_evaluation(ws: Workspace, release: Release, profile: str,
                      profile_hash: str | None = None) -> dict[str, Any] | None:
    """The newest evaluation with an accuracy of ``release`` on ``profile``, if any."""
    sql = ("SELECT e.*, d.name AS dataset, d.sha256 AS dataset_sha256, d.samples AS samples "
           "FROM evaluations e JOIN runs r ON r.id = e.run_id "
           "JOIN datasets d ON d.id = e.dataset_id "
           "WHERE r.release_id = ? AND r.profile = ? AND e.accuracy IS NOT NULL")
    params: list[Any] = [release.id, profile]
    if profile_hash is not None:
        sql += " AND r.profile_hash = ?"
        params.append(profile_hash)
    return ws.store.one(sql + " ORDER BY e.id DESC LIMIT 1", tuple(params))


def _labels(ws: Workspace, evaluation: dict[str, Any]) -> np.ndarray | None:
    """The dataset's labels from its stored ``.npz``, or None when they cannot be read."""
    try:
        path = ws.artifacts.path_for(evaluation["dataset_sha256"])
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["labels"]).reshape(-1)
    except Exception:  # not stored there, not an npz, no labels: fall back to unpaired
        return None


def accuracy_change(ws: Workspace, ev_a: dict[str, Any],
                    ev_b: dict[str, Any]) -> AccuracyChange | None:
    """B - A accuracy with a CI: paired (McNemar) when both have per-sample predictions."""
    if ev_a["dataset_id"] != ev_b["dataset_id"]:
        return None
    acc_a, acc_b = float(ev_a["accuracy"]), float(ev_b["accuracy"])
    labels = _labels(ws, ev_a) if ev_a["predictions"] and ev_b["predictions"] else None
    if labels is not None:
        pred_a = np.frombuffer(ev_a["predictions"], dtype="<i4")
        pred_b = np.frombuffer(ev_b["predictions"], dtype="<i4")
        if 0 < pred_a.size == pred_b.size <= labels.size:  # the first n samples were evaluated
            truth = labels[: pred_a.size]
            diff, low, high, p = accuracy_diff_ci(pred_a == truth, pred_b == truth)
            return AccuracyChange(ev_a["dataset"], acc_a, acc_b, diff, low, high, p,
                                  "paired (McNemar)", int(truth.size))
    (k_a, n_a), (k_b, n_b) = _counts(ev_a), _counts(ev_b)
    if n_a < 1 or n_b < 1:
        return None
    diff, low, high = unpaired_accuracy_diff_ci(k_a, n_a, k_b, n_b)
    return AccuracyChange(ev_a["dataset"], acc_a, acc_b, acc_b - acc_a, low, high, None,
                          "unpaired", min(n_a, n_b))


def _counts(evaluation: dict[str, Any]) -> tuple[int, int]:
    """(correct, evaluated) from the metrics JSON, else from the accuracy and dataset size."""
    metrics = json.loads(evaluation.get("metrics") or "{}")
    n = int(metrics.get("n") or evaluation.get("samples") or 0)
    correct = metrics.get("correct")
    k = int(correct) if correct is not None else round(float(evaluation["accuracy"]) * n)
    return k, n


def op_deltas(run_a: dict[str, Any], run_b: dict[str, Any], top: int = TOP_OPS) -> list[OpDelta]:
    """The operator types whose time per inference moved most, when both runs profiled ops."""
    if not run_a.get("op_profile") or not run_b.get("op_profile"):
        return []

    def per_run(run: dict[str, Any]) -> dict[str, float]:
        prof = json.loads(run["op_profile"])
        runs = max(1, int(prof.get("runs") or 1))
        return {o["op"]: float(o["total_ms"]) / runs for o in prof.get("ops", [])}

    a, b = per_run(run_a), per_run(run_b)
    deltas = [OpDelta(op, a.get(op, 0.0), b.get(op, 0.0)) for op in a.keys() | b.keys()]
    deltas.sort(key=lambda d: (-abs(d.b_ms - d.a_ms), d.op))
    return deltas[:top]


def memory_deltas(run_a: dict[str, Any], run_b: dict[str, Any]) -> list[MetricDelta]:
    return [MetricDelta(key, run_a.get(key), run_b.get(key))
            for key in ("peak_rss_mb", "load_delta_mb", "init_ms")]


def _common_hash_runs(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]]
                      ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The newest ok run of each under the newest profile hash both were measured with."""
    hashes_b = {r["profile_hash"] for r in runs_b}
    for run_a in runs_a:  # newest first
        if run_a["profile_hash"] in hashes_b:
            run_b = next(r for r in runs_b if r["profile_hash"] == run_a["profile_hash"])
            return run_a, run_b
    return None


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

    Without ``rerun`` latency comes from the newest ok run of each under the same profile
    hash (indicative only); with ``rerun`` A and B are measured again side by side,
    interleaved in one worker, and each measurement is stored in ``comparisons`` with a
    ``compare`` event. Memory, accuracy and op deltas always come from stored runs.
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
    for name in names:
        comparison = _compare_stored(ws, rel_a, rel_b, name, result)
        if rerun:
            comparison = _rerun(ws, rel_a, rel_b, by_name[name], comparison, settings,
                                progress)
        if comparison is not None:
            result.profiles.append(comparison)
    if not rerun and any(p.latency for p in result.profiles):
        result.notes.append(STORED_RUNS_NOTE)
    return result


def _measured_by_both(ws: Workspace, a: Release, b: Release, result: Comparison) -> list[str]:
    rows = ws.store.query(
        "SELECT DISTINCT profile, release_id FROM runs WHERE status = 'ok' AND release_id IN "
        "(?, ?) ORDER BY profile", (a.id, b.id))
    on_a = {r["profile"] for r in rows if r["release_id"] == a.id}
    on_b = {r["profile"] for r in rows if r["release_id"] == b.id}
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


def _compare_stored(ws: Workspace, a: Release, b: Release, name: str,
                    result: Comparison) -> ProfileComparison | None:
    runs_a, runs_b = ok_runs(ws, a, name), ok_runs(ws, b, name)
    if not runs_a or not runs_b:
        missing = [r.ref for r, runs in ((a, runs_a), (b, runs_b)) if not runs]
        if not result.rerun:
            result.not_comparable[name] = f"not measured with {' and '.join(missing)}"
        return ProfileComparison(name, "") if result.rerun else None
    pair = _common_hash_runs(runs_a, runs_b)
    if pair is None:
        if not result.rerun:
            result.not_comparable[name] = (
                "not comparable (profile changed): the runs of A and B were taken under "
                "different settings of this profile; measure both again")
        return ProfileComparison(name, "") if result.rerun else None
    run_a, run_b = pair
    comparison = ProfileComparison(name, run_a["profile_hash"], run_a=run_a["id"],
                                   run_b=run_b["id"])
    if not result.rerun:
        comparison.latency = stored_latency(run_a, run_b, threshold_pct_of(run_a))
    comparison.memory = memory_deltas(run_a, run_b)
    comparison.ops = op_deltas(run_a, run_b)
    ev_a = latest_evaluation(ws, a, name, run_a["profile_hash"])
    ev_b = latest_evaluation(ws, b, name, run_a["profile_hash"])
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
    comparison = comparison or ProfileComparison(profile.name, measured.hash)
    if comparison.profile_hash and comparison.profile_hash != measured.hash:
        comparison.notes.append("memory and accuracy come from runs taken under older "
                                "settings of this profile")
    comparison.profile_hash = measured.hash
    threshold = profile.budgets.max_latency_regression_pct
    threshold_pct = DEFAULT_THRESHOLD_PCT if threshold is None else threshold
    paired = measure_pair(ws, a, b, measured, settings, progress)
    if paired.ok:
        comparison.latency = paired_latency(paired, threshold_pct)
        note = comparison.latency.noise_note()
        if note:
            comparison.notes.append(note)
    else:
        comparison.notes.append(f"interleaved measurement failed: {paired.error}")
    with ws.store.transaction():
        comparison.comparison_id = store_pair(ws, a, b, measured, paired,
                                              comparison.latency)
        ws.store.append_event(
            actor=current_user(), kind="compare", model=b.model, version=b.version,
            payload={"comparison": comparison.comparison_id, "baseline": a.version,
                     "profile": profile.name, "profile_hash": measured.hash[:12],
                     "status": paired.status,
                     "ratio": comparison.latency.ratio if comparison.latency else None,
                     "verdict": comparison.latency.verdict if comparison.latency else None,
                     "error": paired.error})
    return comparison

