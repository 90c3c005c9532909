"""`devtrack explain`: per-operator times of two releases side by side, and what they say.

Both releases run in one isolated worker with onnxruntime's profiler on, in alternating
blocks (``bench/op_pair.py``); the pure core (``core/explanation.py``) aligns the two graphs'
nodes, ranks their shares of the change and ties it to the release diff. A release with no
per-operator source here (TFLite: LiteRT's Python API has no per-op profiler) is explained
from its structure alone, with the reason said.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtrack.core.adb_target import is_adb
from devtrack.core.diff import diff_releases
from devtrack.core.explanation import Explanation, NodeTime, explain_measured, explain_structure
from devtrack.core.limits import pair_need_text, pair_seconds
from devtrack.core.profile import MAX_REPEATS, Profile
from devtrack.core.release import Release
from devtrack.errors import MeasurementFailed, UsageError
from devtrack.workspace import Workspace

Progress = Callable[[str], None]
SOURCE = "onnxruntime profiler, side by side in one worker"
PROFILED_FORMATS = ("onnx",)
MIN_REPEAT_S = 0.2


@dataclass(frozen=True)
class ExplainSettings:
    """How the per-operator measurement runs: ``repeats`` (even: the order alternates) of
    ``repeat_s`` seconds each (default: the profile's ``min_time_s``, at least 0.2 s)."""

    repeats: int = 4
    repeat_s: float | None = None

    def __post_init__(self) -> None:
        if self.repeats < 2 or self.repeats % 2 or self.repeats > MAX_REPEATS:
            raise UsageError(f"repeats must be an even number from 2 to {MAX_REPEATS} (the "
                             f"order alternates), got {self.repeats}")
        if self.repeat_s is not None and self.repeat_s <= 0:
            raise UsageError(f"repeat_s must be > 0, got {self.repeat_s}")


def no_profile_reason(a: Release, b: Release, profile: Profile) -> str | None:
    """Why per-operator times cannot be measured for this pair here, or None."""
    for release in (a, b):
        if release.format not in PROFILED_FORMATS:
            return (f"{release.ref} is {release.format}, and LiteRT's Python API has no "
                    f"per-operator profiler")
        if not profile.runs_format(release.format):
            return f"profile {profile.name} does not run {release.format} models"
    return None


def _repeat_s(profile: Profile, settings: ExplainSettings) -> float:
    return settings.repeat_s or max(MIN_REPEAT_S, profile.measurement.min_time_s)


def _check_fits(profile: Profile, settings: ExplainSettings) -> None:
    repeat_s = _repeat_s(profile, settings)
    timeout = profile.execution.timeout_s
    # each repeat times plain sessions, then profiled ones: twice a side-by-side repeat
    if pair_seconds(settings.repeats, 2 * repeat_s) > timeout:
        raise UsageError(f"--repeats {settings.repeats} does not fit in profile "
                         f"{profile.name}'s execution.timeout_s ({timeout:g} s): "
                         f"{pair_need_text(settings.repeats, 2 * repeat_s)}")


def measure_ops(ws: Workspace, a: Release, b: Release, profile: Profile,
                settings: ExplainSettings | None = None,
                progress: Progress | None = None) -> dict[str, Any]:
    """Run the per-operator side-by-side worker; its result dict (status "ok" or "failed")."""
    from devtrack.pairing import pair_job, run_pair_job

    settings = settings or ExplainSettings()
    _check_fits(profile, settings)
    job = {**pair_job(ws, a, b, profile, "op_pair", _repeat_s(profile, settings)),
           "repeats": settings.repeats}
    if progress is not None:
        progress(f"profiling {a.ref} and {b.ref} side by side on {profile.name}: "
                 f"{settings.repeats} × {_repeat_s(profile, settings):g} s")
    return run_pair_job(job, profile, sessions=4)  # two models, two sessions each


def explanation_from_result(a: Release, b: Release, profile: str,
                            raw: dict[str, Any]) -> Explanation:
    """The explanation of an ok ``op_pair`` worker result."""
    from devtrack.core.significance import paired_ratio_summary

    ratios = [float(x) for x in raw["repeat_ratios"]]
    ratio, low, high = paired_ratio_summary(ratios)
    return explain_measured(
        a.ref, b.ref, profile, SOURCE,
        [NodeTime.from_dict(n) for n in raw["a"]["nodes"]],
        [NodeTime.from_dict(n) for n in raw["b"]["nodes"]],
        float(raw["a"]["wall_ms"]), float(raw["b"]["wall_ms"]), ratio, (low, high),
        diff_releases(a, b))


def explain_releases(ws: Workspace, a: Release | str, b: Release | str, profile_name: str,
                     settings: ExplainSettings | None = None,
                     progress: Progress | None = None,
                     op_logs: tuple[Path, Path] | None = None) -> Explanation:
    """Why B's latency differs from A's on ``profile_name``, operator by operator.

    ONNX: measured here by onnxruntime's profiler; the measurement (ok or failed) is stored
    with an ``explain`` event (``investigations.record_explain``). TFLite: from
    benchmark_model op profiles (``op_logs`` of A and B, a phone, or stored runs:
    ``tflite_op_profiles.py``), recorded nowhere (logs and stored runs are records already;
    a phone's profiled runs are not kept); without one, from the structure alone with the
    reason. Raises UsageError for unknown releases or profile, different models, an
    unreadable log or a measurement that cannot fit in the profile's timeout;
    MeasurementFailed (exit 1) when the worker (or the phone) fails.
    """
    from devtrack.comparison import check_same_model
    from devtrack.pairing import measured_profile
    from devtrack.profiles import load_profile
    from devtrack.registry import get_release

    rel_a = get_release(ws, a) if isinstance(a, str) else a
    rel_b = get_release(ws, b) if isinstance(b, str) else b
    check_same_model(rel_a, rel_b)
    profile = measured_profile(load_profile(profile_name, ws.root))
    settings = settings or ExplainSettings()
    if not is_adb(profile.execution.target):  # on a phone each run has its own timeout
        _check_fits(profile, settings)
    reason = no_profile_reason(rel_a, rel_b, profile)
    if op_logs is not None or "tflite" in (rel_a.format, rel_b.format):
        from devtrack.tflite_op_profiles import explain_tflite, missing_source_reason

        if progress is not None and is_adb(profile.execution.target) and op_logs is None:
            progress(f"profiling {rel_a.ref} and {rel_b.ref} with benchmark_model on "
                     f"{profile.execution.target}, whole runs alternated")
        explained = explain_tflite(ws, rel_a, rel_b, profile, settings.repeats, op_logs)
        if explained is not None:
            return explained
        if profile.runs_format("tflite"):
            reason = missing_source_reason(rel_a, rel_b, profile)
    if reason is not None:
        return explain_structure(rel_a.ref, rel_b.ref, profile.name, reason,
                                 diff_releases(rel_a, rel_b))
    from devtrack.investigations import record_explain

    raw = measure_ops(ws, rel_a, rel_b, profile, settings, progress)
    ok = raw.get("status") == "ok"
    explanation = explanation_from_result(rel_a, rel_b, profile.name, raw) if ok else None
    record_explain(ws, rel_a, rel_b, profile, raw, explanation)  # a failed run is kept too
    if explanation is None:
        raise MeasurementFailed(f"per-operator measurement of {rel_a.ref} and {rel_b.ref} on "
                                f"{profile.name} failed: {raw.get('error')}")
    return explanation


# --- for the gate -------------------------------------------------------------------------

TOP_CONTRIBUTORS = 3  # op types named from stored op profiles


def contributor_lines(e: Explanation) -> list[str]:
    """The groups of nodes that explain most of the change, one short line each, e.g.
    "20 added MatMul nodes mm20, mm21, mm22, …: +0.81 ms, 96% of the change"."""
    from devtrack.core.explanation import contribution_groups

    return [f"{label}: {delta:+.3g} ms, {share * 100:.0f}% of the change"
            for share, delta, label in contribution_groups(e)]


def stored_contributor_lines(ws: Workspace, a: Release, b: Release, profile: Profile,
                             top: int = TOP_CONTRIBUTORS) -> list[str]:
    """The op types that moved most between the runs that count, when both profiled ops
    (``bench --op-profile``); runs taken apart, so indicative only."""
    from devtrack.counted_runs import counted_run
    from devtrack.metric_changes import op_deltas

    run_a, _ = counted_run(ws, a.id, profile.name, profile.conditions_hash)
    run_b, _ = counted_run(ws, b.id, profile.name, profile.conditions_hash)
    if run_a is None or run_b is None:
        return []
    deltas = [d for d in op_deltas(run_a, run_b) if d.b_ms > d.a_ms][:top]
    return [f"{d.op} {d.b_ms - d.a_ms:+.3g} ms a run (stored op profiles)" for d in deltas]


def latency_contributors(ws: Workspace, a: Release, b: Release, profile: Profile,
                         fresh: bool, progress: Progress | None = None
                         ) -> tuple[list[str], str | None]:
    """What made B slower than A on ``profile``, for a failed gate: (top contributor lines,
    a note). ``fresh``: profile both side by side now (ONNX); otherwise the stored op
    profiles of the runs that count. Never raises but Aborted: a problem is the note."""
    from devtrack.errors import Aborted, DevtrackError

    if not fresh:
        return stored_contributor_lines(ws, a, b, profile), None
    reason = no_profile_reason(a, b, profile)
    if reason is not None:
        return [], f"no per-operator contributors: {reason}"
    try:
        raw = measure_ops(ws, a, b, profile, ExplainSettings(), progress)
    except Aborted:
        raise
    except DevtrackError as exc:
        return [], f"no per-operator contributors: {exc}"
    if raw.get("status") != "ok":
        return [], f"no per-operator contributors: the profiled run failed: {raw.get('error')}"
    explanation = explanation_from_result(a, b, profile.name, raw)
    return contributor_lines(explanation), f"explain: {explanation.headline}"
