"""Per-operator times of two models side by side in one worker (``devtrack explain``).

Each repeat opens both models (creation order alternated across repeats) and runs them in
short alternating blocks (A B / B A), as ``interleaved.py`` does for whole-model latency, so
drift hits both sides alike and cannot pass for an operator's regression: first plain
sessions, timed (the total change, free of profiler overhead), then sessions with
onnxruntime's profiler on (the per-node times), at most ``max_runs`` inferences a side (the
profiler writes an event per node per run). The job has ``"op_pair": [A, B]``, each side
``{"artifact_path", "sha256", "format"}``; ``repeats`` (even), ``block_size``.
"""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.bench.inputs import make_inputs
from devtrack.bench.protocol import PROTOCOL_KEY, PROTOCOL_VERSION, RESULT_VERSION
from devtrack.bench.worker import (
    Progress,
    job_inputs,
    run_guarded,
    verify_artifact,
)
from devtrack.errors import RuntimeUnavailableError, UsageError
from devtrack.runtimes import RuntimeOptions, RuntimeSession, load_runtime, open_session

DEFAULT_REPEATS = 4
DEFAULT_BLOCK_SIZE = 5
MAX_RUNS = 300  # profiled inferences per side and repeat


def run_op_pair(job: dict[str, Any]) -> dict[str, Any]:
    """Profile the pair in ``job`` side by side; never raises, a failure is in the result."""
    result: dict[str, Any] = {
        PROTOCOL_KEY: PROTOCOL_VERSION, "result_version": RESULT_VERSION, "mode": "op_pair",
        "status": "failed", "error": None, "runtime": None, "runtime_version": None, "phases": {},
        "warnings": [],
    }
    return run_guarded(job, result, _measure)


def _sides(job: dict[str, Any]) -> list[dict[str, Any]]:
    sides = list(job["op_pair"])
    if len(sides) != 2:
        raise UsageError(f"an op_pair job needs exactly two artifacts, got {len(sides)}")
    return [{"artifact_path": s["artifact_path"], "sha256": s.get("sha256"),
             "format": s.get("format") or Path(s["artifact_path"]).suffix.lstrip(".")}
            for s in sides]


def _open(side: dict[str, Any], options: RuntimeOptions, feeds_for: Callable[
        [RuntimeSession], dict[str, np.ndarray]]) -> tuple[Callable[[], object],
                                                            Callable[[], object], RuntimeSession]:
    """(plain run, profiled run, session): the plain one is bound before profiling starts,
    so its timing carries no profiler overhead."""
    session = open_session(Path(side["artifact_path"]), side["format"], options)
    feeds = feeds_for(session)
    plain = session.bind(feeds)
    if not hasattr(session, "end_node_profile") or not session.start_op_profile():
        raise RuntimeUnavailableError(f"{session.runtime_name} has no per-node profiler here")
    return plain, functools.partial(session.run, feeds), session


def _measure(job: dict[str, Any], result: dict[str, Any], progress: Progress) -> None:
    sides = _sides(job)
    options = replace(RuntimeOptions.from_dict(job.get("options", {})), ort_allow_spinning=False)
    m = job.get("measurement", {})
    repeats = int(job.get("repeats", DEFAULT_REPEATS))
    block = int(job.get("block_size", DEFAULT_BLOCK_SIZE))
    repeat_s = float(m.get("min_time_s", 1.0))
    warmup = int(m.get("warmup_runs", 10))
    max_runs = int(job.get("max_runs", MAX_RUNS))
    specs, fills = job_inputs(job)
    seed = int(job.get("seed", 0))
    progress("verify")
    for side in sides:
        verify_artifact(Path(side["artifact_path"]), side["sha256"])
    progress("import")
    result["runtime"], result["runtime_version"] = load_runtime(sides[0]["format"], options)
    load_runtime(sides[1]["format"], options)

    walls: list[list[float]] = [[], []]
    repeat_ratios: list[float] = []
    nodes: list[dict[str, dict[str, Any]]] = [{}, {}]
    for r in range(repeats):
        progress(f"repeat {r + 1}/{repeats}")
        opened: list[Any] = [None, None]
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):  # alternate which is created first
            opened[k] = _open(sides[k], options,
                              lambda s: make_inputs(s.inputs, specs, fills, seed=seed))
        plain = [opened[k][0] for k in (0, 1)]
        profiled = [opened[k][1] for k in (0, 1)]
        for _ in range(warmup):
            for k in (0, 1):
                plain[k]()
                profiled[k]()
        # the total: plain sessions, as the gate measures them; then the per-node times
        samples = _loop(plain, block, repeat_s, None, first=r % 2)
        _loop(profiled, block, repeat_s, max_runs, first=r % 2)
        repeat_ratios.append(float(np.median(samples[1]) / np.median(samples[0])))
        for k in (0, 1):
            walls[k] += samples[k]
            profile = opened[k][2].end_node_profile(skip_runs=warmup)
            for node in profile or []:
                kept = nodes[k].setdefault(node["name"], {**node, "samples_us": []})
                kept["samples_us"] += node["samples_us"]
        del opened, plain, profiled
        gc.collect()
    result.update({"repeats": repeats, "block_size": block, "repeat_s": repeat_s,
                   "repeat_ratios": [round(x, 6) for x in repeat_ratios]})
    for k, name in ((0, "a"), (1, "b")):
        result[name] = {
            "wall_ms": float(np.median(walls[k])), "runs": len(walls[k]),
            "nodes": [{"name": n["name"], "op": n["op"], "inputs": n["inputs"],
                       "ms": _trimmed_mean(n["samples_us"]) / 1000.0}
                      for n in nodes[k].values()]}
    progress("done")


def _trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    """The mean of the middle values (``cut`` off each end): robust to a burst of load, and
    finer than a median of the profiler's whole microseconds."""
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    k = int(ordered.size * cut)
    return float(ordered[k:ordered.size - k].mean()) if ordered.size > 2 * k else 0.0


def _loop(invokes: list[Callable[[], object]], block: int, duration_s: float,
          max_runs: int | None, first: int) -> list[list[float]]:
    """Blocks A B / B A … for ``duration_s`` (or ``max_runs`` a side); wall ms per run."""
    clock = time.perf_counter_ns
    out: list[list[float]] = [[], []]
    start = clock()
    index = 0
    while not out[0] or (clock() - start < duration_s * 1e9
                         and (max_runs is None or len(out[0]) < max_runs)):
        lead = (index + first) % 2
        for k in (lead, 1 - lead):
            invoke = invokes[k]
            for _ in range(block):
                t0 = clock()
                invoke()
                out[k].append((clock() - t0) / 1e6)
        index += 1
    return out
