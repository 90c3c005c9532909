"""Per-operator times of TFLite releases for `explain`, from benchmark_model's op profiles.

LiteRT's Python API has no per-operator profiler, so a TFLite pair is explained from what
``benchmark_model --enable_op_profiling=true`` prints, taken from (first that applies):

1. two logs the user gives (``explain A B -p P --op-log A=LOG --op-log B=LOG``);
2. the phone of an ``adb://`` profile: both models profiled there in whole runs alternated
   A B B A … (one model per process: as close to side by side as the tool allows);
3. the op profiles stored with the runs that count of both releases on the profile
   (``bench --op-profile`` on a phone, or ``results import`` of a profiled log).

Runs taken apart are indicative only, and the explanation's source says so. Without any of
these the caller explains from the structure alone, with :func:`missing_source_reason`.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from pathlib import Path

from devtrack.core.adb_target import is_adb
from devtrack.core.benchmark_model_log import BenchmarkLog, OpNode, parse_log
from devtrack.core.diff import diff_releases
from devtrack.core.explanation import Explanation, NodeTime, explain_measured
from devtrack.core.profile import Profile
from devtrack.core.release import Release
from devtrack.errors import UsageError
from devtrack.workspace import Workspace

FROM_LOGS = "benchmark_model op profiles from the given logs (runs taken apart: indicative)"
FROM_STORED = ("benchmark_model op profiles stored with the runs that count (runs taken "
               "apart: indicative)")


def missing_source_reason(a: Release, b: Release, profile: Profile) -> str:
    """Why a TFLite pair has no per-operator times here, and how to get them."""
    return (f"{a.ref if a.format == 'tflite' else b.ref} is tflite, and LiteRT's Python API has "
            "no per-operator profiler; give benchmark_model op profiles (--op-log A=LOG "
            "--op-log B=LOG, from --enable_op_profiling=true), bench both with --op-profile on "
            f"an adb:// profile, or explain on one (profile {profile.name} is "
            f"{profile.execution.target})")


def node_times(nodes: Sequence[OpNode]) -> list[NodeTime]:
    """benchmark_model's Run Order rows as explain's nodes (see :func:`_named`)."""
    return _named([(n.name, n.op, n.ms) for n in nodes])


def _named(rows: Sequence[tuple[str, str, float]]) -> list[NodeTime]:
    """Delegate rows repeat a name (``Delegate/Convolution (NHWC, QC8) IGEMM`` for each
    partition), so a repeated name gets ``#2``, ``#3`` … in order; the printed node index is
    left out (it shifts whenever a node is inserted before it, which would defeat matching
    by name)."""
    seen: dict[str, int] = {}
    out = []
    for name, op, ms in rows:
        seen[name] = seen.get(name, 0) + 1
        out.append(NodeTime(name if seen[name] == 1 else f"{name} #{seen[name]}", op, ms))
    return out


def _mean_nodes(runs: Sequence[Sequence[NodeTime]]) -> list[NodeTime]:
    """Per node (by name, in the first run's order), the mean time over ``runs``."""
    times: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    for nodes in runs:
        for node in nodes:
            times.setdefault(node.name, []).append(node.ms)
            ops.setdefault(node.name, node.op)
    return [NodeTime(name, ops[name], statistics.fmean(values))
            for name, values in times.items()]


def _profiled(log: BenchmarkLog, what: str) -> list[NodeTime]:
    if log.op_profile is None or not log.op_profile.nodes:
        raise UsageError(f"{what} has no op-profiling tables (Run Order); run benchmark_model "
                         "with --enable_op_profiling=true")
    return node_times(log.op_profile.nodes)


def _explain(a: Release, b: Release, profile: Profile, source: str,
             a_runs: Sequence[tuple[float, list[NodeTime]]],
             b_runs: Sequence[tuple[float, list[NodeTime]]]) -> Explanation:
    a_ms = statistics.fmean(ms for ms, _ in a_runs)
    b_ms = statistics.fmean(ms for ms, _ in b_runs)
    return explain_measured(a.ref, b.ref, profile.name, source,
                            _mean_nodes([n for _, n in a_runs]),
                            _mean_nodes([n for _, n in b_runs]),
                            a_ms, b_ms, b_ms / a_ms if a_ms else None, None,
                            diff_releases(a, b))


def _check_tflite(a: Release, b: Release) -> None:
    for release in (a, b):
        if release.format != "tflite":
            raise UsageError(f"{release.ref} is {release.format}: benchmark_model op profiles "
                             "explain tflite releases only")


def explain_from_logs(a: Release, b: Release, profile: Profile,
                      logs: tuple[Path, Path]) -> Explanation:
    """Explain B against A from two benchmark_model logs with op tables (UsageError for a
    log that cannot be read, has no op tables, or an ONNX release)."""
    from devtrack.results_import import read_log

    _check_tflite(a, b)
    runs = []
    for path in logs:
        text, _ = read_log(path)
        log = parse_log(text, source=str(path))
        runs.append([(log.median_ms, _profiled(log, str(path)))])
    return _explain(a, b, profile, FROM_LOGS, runs[0], runs[1])


def explain_on_phone(ws: Workspace, a: Release, b: Release, profile: Profile,
                     repeats: int) -> Explanation:
    """Profile both releases on the phone of an adb:// profile, whole runs alternated
    A B B A … (``repeats`` runs each side in all, at least 1)."""
    from devtrack.bench.adb import op_profiles_on_phone

    _check_tflite(a, b)
    paths = [(str(ws.artifacts.verify(r.sha256, f"release {r.ref}")), r.sha256) for r in (a, b)]
    pairs = max(1, repeats // 2)
    order = [i for k in range(pairs) for i in ((0, 1) if k % 2 == 0 else (1, 0))]
    logs = op_profiles_on_phone(profile, paths, order)
    runs: list[list[tuple[float, list[NodeTime]]]] = [[], []]
    for index, log in zip(order, logs, strict=True):
        runs[index].append((log.median_ms, _profiled(log, f"benchmark_model on "
                                                          f"{profile.execution.target}")))
    source = (f"benchmark_model op profiles on {profile.execution.target}, {len(order)} whole "
              "runs alternated A B B A (one model per process: indicative)")
    return _explain(a, b, profile, source, runs[0], runs[1])


def explain_from_stored(ws: Workspace, a: Release, b: Release,
                        profile: Profile) -> Explanation | None:
    """From the benchmark_model op profiles of the runs that count, when both have them."""
    from devtrack.counted_runs import counted_run

    runs = []
    for release in (a, b):
        run, _ = counted_run(ws, release.id, profile.name, profile.conditions_hash)
        if run is None or not run.op_profile:
            return None
        stored = json.loads(run.op_profile)
        nodes = stored.get("nodes") if stored.get("source") == "benchmark_model" else None
        if not nodes or run.p50_ms is None:
            return None
        runs.append([(float(run.p50_ms),
                      _named([(str(n["name"]), str(n["op"]), float(n["ms"])) for n in nodes]))])
    return _explain(a, b, profile, FROM_STORED, runs[0], runs[1])


def explain_tflite(ws: Workspace, a: Release, b: Release, profile: Profile, repeats: int,
                   logs: tuple[Path, Path] | None) -> Explanation | None:
    """The explanation from the first per-operator source that applies (module docstring),
    or None when there is none."""
    if logs is not None:
        return explain_from_logs(a, b, profile, logs)
    if a.format != "tflite" or b.format != "tflite":
        return None
    if is_adb(profile.execution.target):
        return explain_on_phone(ws, a, b, profile, repeats)
    return explain_from_stored(ws, a, b, profile)
