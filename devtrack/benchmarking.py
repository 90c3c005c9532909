"""Benchmark orchestration: plan (release × profile) measurements, run each isolated, store runs."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from devtrack.core.audit_state import RUN_SEALED_FIELDS, run_fields_digest, samples_digest
from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.limits import BOUNDS, longest_max_time_s, worker_need_text, worker_seconds
from devtrack.core.profile import MeasurementSettings, Profile
from devtrack.core.release import Release
from devtrack.errors import Aborted, DatabaseLockedError, UsageError
from devtrack.interrupts import deferred
from devtrack.interrupts import reason as interrupt_reason
from devtrack.provenance import current_host, current_user
from devtrack.store import utc_now
from devtrack.workspace import Workspace

if TYPE_CHECKING:
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
    path = ws.artifacts.verify(m.release.sha256, f"release {m.release.ref}")
    p = m.profile
    return {
        "artifact_path": str(path),
        "sha256": m.release.sha256,
        "format": m.release.format,
        "input_specs": [s.to_dict() for s in m.input_specs],
        "fills": [f.to_dict() for f in m.fills],
        "options": {
            "threads": p.execution.threads,
            "ort_graph_optimization_level": p.onnxruntime.graph_optimization_level,
            "ort_execution_mode": p.onnxruntime.execution_mode,
            "litert_xnnpack": p.litert.xnnpack,
            "litert_api": p.litert.api,
            "op_profile": op_profile,
        },
        "measurement": {
            "warmup_runs": p.measurement.warmup_runs,
            "min_runs": p.measurement.min_runs,
            "min_time_s": p.measurement.min_time_s,
            "max_time_s": p.measurement.max_time_s,
            "target_rel_ci": p.measurement.target_rel_ci,
        },
        "seed": 0,
        "op_profile": op_profile,
    } | _evaluation_job(ws, m)


def _evaluation_job(ws: Workspace, m: Measurement) -> dict[str, Any]:
    if m.evaluation is None:
        return {}
    from devtrack.evaluation import evaluation_job

    return {"evaluation": evaluation_job(ws, m.evaluation, m.fills)}


def run_measurement(ws: Workspace, m: Measurement, overrides: BenchOverrides,
                    progress: Callable[[Progress], None] | None = None, *,
                    abort_reason: str | None = None) -> dict[str, Any]:
    """Run one measurement in a fresh worker and store it; returns the stored run as a dict.

    When it is aborted (Ctrl-C; SIGTERM or SIGHUP inside ``interrupts.signals_interrupt``;
    or ``progress`` raised Aborted) the run is stored as aborted with ``abort_reason``, else
    the signal's reason, as its error, then Aborted is re-raised with ``run_id``.

    The worker's limit is the profile's ``timeout_s`` plus, when a dataset is evaluated,
    ``EvalPlan.timeout_allowance_s`` (recorded as ``isolation.evaluation_allowance_s``).
    """
    from devtrack.bench.dispatch import run_profile_job

    if m.evaluation is None:
        m = replace(m, evaluation=_resolve_evaluation(ws, m.release, m.fills, overrides))
    started = utc_now()
    job = build_job(ws, m, overrides.op_profile)
    execution = m.profile.execution
    allowance = m.evaluation.timeout_allowance_s() if m.evaluation is not None else 0.0
    timeout_s = execution.timeout_s + allowance
    try:
        result = run_profile_job(m.profile, job, threads=execution.threads,
                                 cpu_affinity=list(execution.cpu_affinity) or None,
                                 memory_limit_mb=execution.memory_limit_mb,
                                 timeout_s=timeout_s, progress=progress)
    except Aborted as exc:
        partial = getattr(exc, "result", None) or {}
        result = {**partial, "status": "aborted",
                  "error": abort_reason or interrupt_reason(exc.signum)}
        run_id = store_run(ws, m, result, started)
        exc.run_id = run_id  # type: ignore[attr-defined]
        raise
    if allowance:
        result.setdefault("isolation", {})["evaluation_allowance_s"] = round(allowance, 3)
    if result.get("error"):
        # The worker sees the artifact under its content address; users know the release.
        path = job["artifact_path"]
        result["error"] = str(result["error"]).replace(path, m.release.ref).replace(
            m.release.sha256, m.release.ref)
    run_id = store_run(ws, m, result, started)
    return get_run(ws, run_id)


def _num(mapping: dict[str, Any] | None, key: str) -> float | None:
    if not mapping:
        return None
    value = mapping.get(key)
    return float(value) if isinstance(value, int | float) else None


def store_run(ws: Workspace, m: Measurement, result: dict[str, Any], started: str) -> int:
    """Insert the run, its evaluation (if any) and its audit event in one transaction."""
    stats = result.get("stats") or {}
    phases = result.get("phases") or {}
    memory = result.get("memory") or {}
    samples_b64 = result.get("samples_ms")
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
        "samples": base64.b64decode(samples_b64) if samples_b64 else None,
        "inputs": json.dumps({"input_specs": [s.to_text() for s in m.input_specs],
                              "fills": [f.to_text() for f in m.fills]}),
        "environment": json.dumps(result.get("environment") or {}, sort_keys=True),
        "warnings": json.dumps((result.get("warnings") or []) + list(
            m.evaluation.notes if m.evaluation is not None else ())),
        "op_profile": json.dumps(result["op_profile"]) if result.get("op_profile") else None,
        "details": json.dumps({"phases": phases, "memory": memory,
                               "isolation": result.get("isolation")}, sort_keys=True),
    }
    payload: dict[str, Any] = {
        "profile": m.profile.name, "profile_hash": m.profile.hash[:12],
        "conditions_hash": m.profile.conditions_hash[:12], "status": row["status"],
        "p50_ms": row["p50_ms"], "peak_rss_mb": row["peak_rss_mb"], "error": row["error"],
        "samples_sha256": samples_digest(row["samples"])}  # audit verify checks the samples
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
            stored = ws.store.one(f"SELECT {', '.join(RUN_SEALED_FIELDS)} FROM runs "
                                  "WHERE id = ?", (run_id,))
            assert stored is not None
            ws.store.append_event(
                actor=actor, kind="bench", model=m.release.model, version=m.release.version,
                payload={"run": run_id, **payload, **sealed,
                         "fields_sha256": run_fields_digest(stored)},
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


RUN_FIELDS = (
    "id", "profile", "profile_hash", "conditions_hash", "status", "error", "started_at",
    "finished_at", "actor", "host", "runtime", "runtime_version", "import_ms", "init_ms",
    "first_ms", "warmup_ms", "n",
    "p50_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "cv",
    "ci_low_ms", "ci_high_ms", "stop_reason", "baseline_rss_mb", "load_peak_mb",
    "load_delta_mb", "inference_peak_mb", "peak_rss_mb", "memory_method",
)


def _run_to_dict(row: dict[str, Any], with_samples: bool = False) -> dict[str, Any]:
    data = {key: row[key] for key in RUN_FIELDS}
    data["run_id"] = data.pop("id")
    data["model"] = row["model"]
    data["version"] = row["version"]
    data["warnings"] = json.loads(row["warnings"])
    data["environment"] = json.loads(row["environment"] or "{}")
    data["inputs"] = json.loads(row["inputs"] or "{}")
    data["op_profile"] = json.loads(row["op_profile"]) if row["op_profile"] else None
    if with_samples:
        data["samples_ms"] = samples_of(row).tolist()
    return data


def samples_of(row: dict[str, Any]) -> np.ndarray:
    blob = row.get("samples")
    return np.frombuffer(blob, dtype="<f4").astype(np.float64) if blob else np.zeros(0)


_RUN_SQL = (
    "SELECT runs.*, m.name AS model, r.version AS version FROM runs "
    "JOIN releases r ON r.id = runs.release_id JOIN models m ON m.id = r.model_id "
)


def get_run(ws: Workspace, run_id: int, with_samples: bool = False) -> dict[str, Any]:
    """One stored run; an evaluated run also has the ``evaluation.RUN_EVAL_KEYS`` fields."""
    from devtrack.evaluation import attach_evaluations

    row = ws.store.one(_RUN_SQL + "WHERE runs.id = ?", (run_id,))
    if row is None:
        raise UsageError(f"no run {run_id}")
    return attach_evaluations(ws, [_run_to_dict(row, with_samples)])[0]


def list_runs(ws: Workspace, release: Release, profile: str | None = None,
              with_samples: bool = False) -> list[dict[str, Any]]:
    from devtrack.evaluation import attach_evaluations

    sql = _RUN_SQL + "WHERE runs.release_id = ?"
    params: list[Any] = [release.id]
    if profile is not None:
        sql += " AND runs.profile = ?"
        params.append(profile)
    rows = ws.store.query(sql + " ORDER BY runs.id", tuple(params))
    return attach_evaluations(ws, [_run_to_dict(row, with_samples) for row in rows])
