"""Benchmark orchestration: plan (release × profile) measurements, run each isolated, store runs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from devtrack import queries
from devtrack.core.adb_target import is_adb
from devtrack.core.audit_state import run_fields_digest, samples_digest
from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.limits import BOUNDS, longest_max_time_s, worker_need_text, worker_seconds
from devtrack.core.profile import MeasurementSettings, Profile
from devtrack.core.release import Release
from devtrack.errors import Aborted, DatabaseLockedError, UsageError
from devtrack.interrupts import deferred
from devtrack.interrupts import reason as interrupt_reason
from devtrack.provenance import current_host, current_user
from devtrack.records import Run, columns
from devtrack.store import utc_now
from devtrack.workspace import Workspace

if TYPE_CHECKING:
    import numpy as np

    from devtrack.bench.runner import Progress
    from devtrack.evaluation import EvalPlan


OVERRIDE_KEYS = {  # BenchOverrides field: (its bench flag, the profile key whose bounds it shares)
    "min_runs": ("--runs", "measurement.min_runs"),
    "min_time_s": ("--min-time", "measurement.min_time_s"),
    "max_time_s": ("--max-time", "measurement.max_time_s"),
    "threads": ("--threads", "execution.threads"),
}


@dataclass(frozen=True)
class BenchOverrides:
    """Command-line overrides of a profile's settings and a release's input specs."""

    min_runs: int | None = None
    min_time_s: float | None = None
    max_time_s: float | None = None
    threads: int | None = None
    input_specs: list[InputSpec] = field(default_factory=list)
    fills: list[FillSpec] = field(default_factory=list)
    op_profile: bool = False
    eval_dataset: str | None = None  # dataset name; None: the model line's default, if set
    reference: str | None = None  # MODEL@VERSION for fidelity; None: the release's parent
    evaluate: bool = True  # False: timing only, even when the model line has a default

    def __post_init__(self) -> None:
        for flag, value in (("--min-time", self.min_time_s), ("--max-time", self.max_time_s)):
            if value is not None and not math.isfinite(value):
                raise UsageError(f"{flag} {value} is not a number of seconds; give e.g. "
                                 f"{flag} 2")
        for attribute, (flag, key) in OVERRIDE_KEYS.items():
            value = getattr(self, attribute)
            problem = BOUNDS[key].problem(value) if value is not None else None
            if problem:  # the same bounds as the profile key it overrides
                raise UsageError(f"{flag}: {problem} (allowed: {BOUNDS[key].text()}, as "
                                 f"{key} in a profile)")

    def apply(self, profile: Profile) -> Profile:
        """The profile as it will really run; its hash reflects the overrides, its
        ``conditions_hash`` only ``threads`` (the others are the stopping rule: policy).

        Raises UsageError naming the flag when the window it asks for does not fit in the
        profile's ``execution.timeout_s`` (``core.limits.worker_seconds``): the timeout is the
        user's setting and is never raised to make room.
        """
        m = profile.measurement
        measurement = replace(
            m,
            min_runs=self.min_runs if self.min_runs is not None else m.min_runs,
            min_time_s=self.min_time_s if self.min_time_s is not None else m.min_time_s,
            max_time_s=self.max_time_s if self.max_time_s is not None else m.max_time_s,
        )
        if measurement.min_time_s > measurement.max_time_s:
            # The flag given wins over the profile's value it contradicts.
            if self.max_time_s is None:
                measurement = replace(measurement, max_time_s=measurement.min_time_s)
            elif self.min_time_s is None:
                measurement = replace(measurement, min_time_s=measurement.max_time_s)
            else:
                raise UsageError(
                    f"--min-time {measurement.min_time_s:g} is longer than --max-time "
                    f"{measurement.max_time_s:g}"
                )
        execution = profile.execution
        if self.threads is not None:
            execution = replace(execution, threads=self.threads)
        self._check_fits(profile, measurement)
        return replace(profile, measurement=measurement, execution=execution)

    def _check_fits(self, profile: Profile, m: MeasurementSettings) -> None:
        timeout = profile.execution.timeout_s
        if worker_seconds(m.max_time_s, m.cooldown_s) <= timeout:
            return
        # A validated profile fits, so a flag made it not fit: name the one that did.
        longest = math.floor(longest_max_time_s(timeout, m.cooldown_s) * 10) / 10
        where = f" in {profile.source}" if profile.source else ""
        need = worker_need_text(m.max_time_s, m.cooldown_s)
        for flag, value in (("--max-time", self.max_time_s), ("--min-time", self.min_time_s)):
            if value is not None:
                raise UsageError(f"{flag} {value:g} does not fit in profile {profile.name}'s "
                                 f"execution.timeout_s ({timeout:g} s): {need}; give {flag} "
                                 f"{longest:g} or less, or raise timeout_s{where}")
        raise UsageError(f"profile {profile.name}: execution.timeout_s ({timeout:g} s) is too "
                         f"short: {need}; raise it{where}")  # built in code, not validated


@dataclass(frozen=True)
class Measurement:
    """One planned (release, profile) measurement."""

    release: Release
    profile: Profile
    input_specs: list[InputSpec]
    fills: list[FillSpec]
    evaluation: EvalPlan | None = None  # run after the timed loop, in the same worker


def merged_specs(release: Release, overrides: BenchOverrides) -> tuple[list[InputSpec],
                                                                       list[FillSpec]]:
    """The release's stored specs with command-line specs replacing those of the same input."""
    specs = {s.name: s for s in release.input_specs}
    specs.update({s.name: s for s in overrides.input_specs})
    fills = {f.name: f for f in release.fills}
    fills.update({f.name: f for f in overrides.fills})
    for name in specs.keys() & fills.keys():
        if any(s.name == name for s in overrides.fills):
            specs.pop(name)
        else:
            fills.pop(name)
    return list(specs.values()), list(fills.values())


def plan(releases: list[Release], profiles: list[Profile], overrides: BenchOverrides,
         ws: Workspace | None = None) -> tuple[list[Measurement], list[str]]:
    """Every (release, profile) pair that can run, and a note for each pair that cannot.

    With ``ws``, each release's evaluation (dataset, reference) is resolved here too, so a
    dataset that does not fit fails before anything runs; without it, ``run_measurement``
    resolves it (the model line's default dataset still applies).
    """
    from devtrack.core.input_layout import input_layout

    measurements: list[Measurement] = []
    skipped: list[str] = []
    for release in releases:
        specs, fills = merged_specs(release, overrides)
        input_layout(release.summary.inputs, specs, fills)  # a missing spec: usage error now
        evaluation = None
        if ws is not None:
            evaluation = _resolve_evaluation(ws, release, fills, overrides)
        for profile in profiles:
            if not profile.runs_format(release.format):
                skipped.append(f"{release.ref} on {profile.name}: profile does not run "
                               f"{release.format} models")
                continue
            measurements.append(Measurement(release, overrides.apply(profile), specs, fills,
                                            evaluation))
    return measurements, skipped


def _resolve_evaluation(ws: Workspace, release: Release, fills: list[FillSpec],
                        overrides: BenchOverrides) -> EvalPlan | None:
    from devtrack.evaluation import resolve_evaluation

    return resolve_evaluation(ws, release, fills, overrides.eval_dataset, overrides.reference,
                              overrides.evaluate)


def build_job(ws: Workspace, m: Measurement, op_profile: bool) -> dict[str, Any]:
    """The JSON job a worker process runs (the artifact's hash is checked there too)."""
    from devtrack.bench.protocol import MeasureJob, MeasureWindow

    path = ws.artifacts.verify(m.release.sha256, f"release {m.release.ref}")
    p = m.profile
    window = p.measurement
    return MeasureJob(
        artifact_path=str(path), sha256=m.release.sha256, format=m.release.format,
        input_specs=[s.to_dict() for s in m.input_specs], fills=[f.to_dict() for f in m.fills],
        options={
            "threads": p.execution.threads,
            "ort_graph_optimization_level": p.onnxruntime.graph_optimization_level,
            "ort_execution_mode": p.onnxruntime.execution_mode,
            "litert_xnnpack": p.litert.xnnpack,
            "litert_api": p.litert.api,
            "op_profile": op_profile,
        },
        measurement=MeasureWindow(
            warmup_runs=window.warmup_runs, min_runs=window.min_runs,
            min_time_s=window.min_time_s, max_time_s=window.max_time_s,
            target_rel_ci=window.target_rel_ci, cooldown_s=window.cooldown_s),
        seed=0, op_profile=op_profile, evaluation=_evaluation_job(ws, m),
    ).to_dict()


def _evaluation_job(ws: Workspace, m: Measurement) -> dict[str, Any] | None:
    if m.evaluation is None:
        return None
    from devtrack.evaluation import evaluation_job

    return evaluation_job(ws, m.evaluation, m.fills)


@dataclass(frozen=True)
class PreparedJob:
    """A measurement ready to hand to its target: the job, and what storing it needs."""

    measurement: Measurement
    job: dict[str, Any]
    started: str  # utc_now() before the job was built: the run's started_at
    timeout_s: float  # the profile's timeout_s plus the evaluation allowance
    allowance_s: float  # the evaluation allowance (0 without a dataset)


def prepare_job(ws: Workspace, m: Measurement, overrides: BenchOverrides) -> PreparedJob:
    """Resolve the evaluation (when ``plan`` had no workspace) and build the worker's job.

    The worker's limit is the profile's ``timeout_s`` plus, when a dataset is evaluated,
    ``EvalPlan.timeout_allowance_s`` (recorded as ``isolation.evaluation_allowance_s``).
    """
    on_phone = is_adb(m.profile.execution.target)  # benchmark_model: latency and memory only
    if m.evaluation is None and not on_phone:
        m = replace(m, evaluation=_resolve_evaluation(ws, m.release, m.fills, overrides))
    phone_notes = ([f"accuracy not evaluated: {m.evaluation.dataset.name} would need the "
                    "model run on the phone by devtrack; benchmark_model measures latency "
                    "and memory only"] if on_phone and m.evaluation is not None else [])
    if on_phone:
        m = replace(m, evaluation=None)
    started = utc_now()
    job = build_job(ws, m, overrides.op_profile)
    if phone_notes:
        job["notes"] = phone_notes  # bench/adb.py adds them to the run's warnings
    allowance = m.evaluation.timeout_allowance_s() if m.evaluation is not None else 0.0
    return PreparedJob(m, job, started, m.profile.execution.timeout_s + allowance, allowance)


def store_result(ws: Workspace, prepared: PreparedJob, result: dict[str, Any]) -> int:
    """Store a finished job's result (ok or failed) as a run; returns its id."""
    m = prepared.measurement
    if prepared.allowance_s:
        result.setdefault("isolation", {})["evaluation_allowance_s"] = round(
            prepared.allowance_s, 3)
    if result.get("error"):
        # The worker sees the artifact under its content address; users know the release.
        path = prepared.job["artifact_path"]
        result["error"] = str(result["error"]).replace(path, m.release.ref).replace(
            m.release.sha256, m.release.ref)
    return store_run(ws, m, result, prepared.started)


def store_aborted(ws: Workspace, prepared: PreparedJob, exc: Aborted,
                  abort_reason: str | None = None) -> int:
    """Store an aborted job as an aborted run whose error is ``abort_reason``, else the
    signal's reason; ``exc.run_id`` is set to its id."""
    partial = getattr(exc, "result", None) or {}
    result = {**partial, "status": "aborted",
              "error": abort_reason or interrupt_reason(exc.signum)}
    run_id = store_run(ws, prepared.measurement, result, prepared.started)
    exc.run_id = run_id  # type: ignore[attr-defined]
    return run_id


def run_measurement(ws: Workspace, m: Measurement, overrides: BenchOverrides,
                    progress: Callable[[Progress], None] | None = None, *,
                    abort_reason: str | None = None) -> dict[str, Any]:
    """Run one measurement on its profile's target and store it; returns the stored run.

    When it is aborted (Ctrl-C; SIGTERM or SIGHUP inside ``interrupts.signals_interrupt``;
    or ``progress`` raised Aborted) the run is stored as aborted with ``abort_reason``, else
    the signal's reason, as its error, then Aborted is re-raised with ``run_id``. Several
    measurements, devices in parallel: ``orchestration.run_bench``.
    """
    from devtrack.targets import TargetJob, target_for

    target = target_for(m.profile)
    prepared = prepare_job(ws, m, overrides)
    try:
        result = target.run(TargetJob(prepared.job, prepared.measurement.profile,
                                      prepared.timeout_s, progress))
    except Aborted as exc:
        store_aborted(ws, prepared, exc, abort_reason)
        raise
    return get_run(ws, store_result(ws, prepared, result))


def _num(mapping: dict[str, Any] | None, key: str) -> float | None:
    if not mapping:
        return None
    value = mapping.get(key)
    return float(value) if isinstance(value, int | float) else None


def store_run(ws: Workspace, m: Measurement, result: dict[str, Any], started: str) -> int:
    """Insert the run, its evaluation (if any) and its audit event in one transaction."""
    from devtrack.bench.protocol import text_to_blob

    stats = result.get("stats") or {}
    phases = result.get("phases") or {}
    memory = result.get("memory") or {}
    samples_text = result.get("samples_ms")
    actor = current_user()
    row = {
        "release_id": m.release.id,
        "profile": m.profile.name,
        "profile_hash": m.profile.hash,
        "profile_snapshot": json.dumps(m.profile.to_dict(), sort_keys=True),
        "conditions_hash": m.profile.conditions_hash,
        "status": result.get("status", "failed"),
        "error": result.get("error"),
        "started_at": started,
        "finished_at": utc_now(),
        "actor": actor,
        "host": current_host(),
        "runtime": result.get("runtime"),
        "runtime_version": result.get("runtime_version"),
        "import_ms": _num(phases, "import_ms"),
        "init_ms": _num(phases, "init_ms"),
        "first_ms": _num(phases, "first_ms"),
        "warmup_ms": _num(phases, "warmup_ms"),
        "n": stats.get("n"),
        "p50_ms": _num(stats, "median"),
        "p90_ms": _num(stats, "p90"),
        "p95_ms": _num(stats, "p95"),
        "p99_ms": _num(stats, "p99"),
        "mean_ms": _num(stats, "mean"),
        "std_ms": _num(stats, "std"),
        "min_ms": _num(stats, "min"),
        "max_ms": _num(stats, "max"),
        "cv": _num(stats, "cv"),
        "ci_low_ms": _num(stats, "ci_low"),
        "ci_high_ms": _num(stats, "ci_high"),
        "stop_reason": result.get("stop_reason"),
        "baseline_rss_mb": _num(memory, "baseline_rss_mb"),
        "load_peak_mb": _num(memory, "load_peak_mb"),
        "load_delta_mb": _num(memory, "load_delta_mb"),
        "inference_peak_mb": _num(memory, "inference_peak_mb"),
        "peak_rss_mb": _num(memory, "peak_rss_mb"),
        "memory_method": memory.get("method"),
        "samples": text_to_blob(samples_text) if samples_text else None,
        "inputs": json.dumps({"input_specs": [s.to_text() for s in m.input_specs],
                              "fills": [f.to_text() for f in m.fills]}),
        "environment": json.dumps(result.get("environment") or {}, sort_keys=True),
        "warnings": json.dumps((result.get("warnings") or []) + list(
            m.evaluation.notes if m.evaluation is not None else ())),
        "op_profile": json.dumps(result["op_profile"]) if result.get("op_profile") else None,
        "details": json.dumps({"phases": phases, "memory": memory,
                               "isolation": result.get("isolation"),
                               **({"source": result["source"]} if result.get("source") else {})},
                              sort_keys=True),
    }
    payload: dict[str, Any] = {
        "profile": m.profile.name, "profile_hash": m.profile.hash[:12],
        "conditions_hash": m.profile.conditions_hash[:12], "status": row["status"],
        "p50_ms": row["p50_ms"], "peak_rss_mb": row["peak_rss_mb"], "error": row["error"],
        "samples_sha256": samples_digest(row["samples"])}  # audit verify checks the samples
    if result.get("source"):  # not measured by the worker: say where the figures came from
        payload["source"] = {k: v for k, v in result["source"].items()
                             if k in ("tool", "origin", "log_name", "log_sha256", "serial")}
    evaluated = result.get("evaluation") if row["status"] == "ok" else None
    if evaluated and m.evaluation is not None:
        payload.update(dataset=m.evaluation.dataset.name, accuracy=evaluated.get("accuracy"),
                       nonfinite=evaluated.get("nonfinite"))
    def write() -> int:
        with ws.store.transaction():
            run_id = ws.store.insert("runs", row)
            sealed: dict[str, Any] = {"evaluation": None}  # verify: no evaluation of this run
            if evaluated and m.evaluation is not None:
                from devtrack.auditing import evaluation_digest
                from devtrack.evaluation import store_evaluation

                evaluation_id = store_evaluation(ws, run_id, m.evaluation, evaluated)
                sealed = {"evaluation": evaluation_id,
                          "evaluation_sha256": evaluation_digest(ws, evaluation_id)}
            # Sealed as SQLite hands the fields back, which is what audit verify reads.
            stored = queries.run(ws.store, run_id)
            assert stored is not None
            ws.store.append_event(
                actor=actor, kind="bench", model=m.release.model, version=m.release.version,
                payload={"run": run_id, **payload, **sealed,
                         "fields_sha256": run_fields_digest(vars(stored))},
            )
        return run_id

    # A finished measurement is worth waiting for: another devtrack process may hold the
    # write lock for a while (each attempt waits the store's busy timeout). A SIGTERM that
    # arrives meanwhile is raised once the run is stored, not in the middle of the write.
    with deferred():
        for attempt in range(STORE_ATTEMPTS):
            try:
                return write()
            except DatabaseLockedError:
                if attempt == STORE_ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")


STORE_ATTEMPTS = 6


# A run as results and bench show it: its columns (records.Run) but the release (shown as
# model and version), the samples (on request) and the JSON ones, decoded apart.
RUN_FIELDS = tuple(c for c in columns(Run) if c not in (
    "release_id", "profile_snapshot", "samples", "inputs", "environment", "warnings",
    "op_profile", "details"))


def _run_to_dict(run: Run, model: str, version: str,
                 with_samples: bool = False) -> dict[str, Any]:
    data = {key: getattr(run, key) for key in RUN_FIELDS}
    data["run_id"] = data.pop("id")
    data["model"] = model
    data["version"] = version
    data["warnings"] = json.loads(run.warnings)
    data["environment"] = json.loads(run.environment or "{}")
    data["inputs"] = json.loads(run.inputs or "{}")
    data["op_profile"] = json.loads(run.op_profile) if run.op_profile else None
    if with_samples:
        data["samples_ms"] = samples_of(run).tolist()
    return data


def samples_of(run: Run) -> np.ndarray:
    """A stored run's latency samples (ms), float64."""
    from devtrack.bench.protocol import samples_from_blob

    return samples_from_blob(run.samples)


def get_run(ws: Workspace, run_id: int, with_samples: bool = False) -> dict[str, Any]:
    """One stored run; an evaluated run also has the ``evaluation.RUN_EVAL_KEYS`` fields."""
    from devtrack.evaluation import attach_evaluations

    run = queries.run(ws.store, run_id)
    ref = queries.release_ref(ws.store, run.release_id) if run is not None else None
    if run is None or ref is None:
        raise UsageError(f"no run {run_id}")
    return attach_evaluations(ws, [_run_to_dict(run, *ref, with_samples)])[0]


def list_runs(ws: Workspace, release: Release, profile: str | None = None,
              with_samples: bool = False) -> list[dict[str, Any]]:
    from devtrack.evaluation import attach_evaluations

    runs = queries.runs_of_release(ws.store, release.id, profile)
    return attach_evaluations(ws, [_run_to_dict(run, release.model, release.version,
                                                with_samples) for run in runs])
