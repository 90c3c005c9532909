"""Interleaved A/B measurement inside one worker: both models loaded, short alternating blocks.

Why (ARCHITECTURE.md, "Measurement"): on a shared machine drift between runs dwarfs the noise
within one, so a verdict compares A and B side by side at a fine grain. Two biases were
measured and are cancelled here by alternation rather than ignored: the block run second in
a pair, and more strongly the session created second, ran 2-3% faster for identical files.
So each repeat re-creates both sessions, A first in even repeats and B first in odd ones,
and within a repeat the pairs alternate A-then-B and B-then-A.

The job is a worker job with ``"pair": [A, B]`` instead of ``artifact_path``; each side is
``{"artifact_path", "sha256", "format"}`` (or just a path). Each repeat lasts
``measurement.min_time_s`` (stretched so it holds at least ``MIN_PAIRS`` block pairs of a
slow model). ``block_size`` inferences per block; when it is absent the worker sizes blocks
from the warm-up so a repeat holds about ``PAIRS_PER_REPEAT`` pairs (at most 10 a block).
With ``"sequential"`` (a :class:`~devtrack.core.sequential.SequentialPlan` as a dict) the
worker looks at the repeat ratios at the plan's looks and stops at the first decided one or
the plan's cap; without it, it runs exactly ``repeats`` (default 6). Each repeat yields two
ratios B/A: the median of wall-clock block-median ratios (``repeat_median_ratios``) and the
median ratio of the process CPU time each block took (``repeat_cpu_ratios``); ``"clock":
"cpu"`` makes the decision judge the latter. On a machine with more runnable threads than
cores, waiting for a core is most of a block's wall time and is not the model's cost:
measured here at a load average of 7-10 on 2 cores, A/A repeat ratios spread 5-16% in wall
time and 0.8-1.5% in CPU time (1 or 2 threads).
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.bench.inputs import make_inputs
from devtrack.bench.protocol import (
    PROTOCOL_KEY,
    PROTOCOL_VERSION,
    RESULT_VERSION,
    SAMPLES_ENCODING,
    encode_samples,
)
from devtrack.bench.worker import (
    Progress,
    job_inputs,
    ns_to_ms,
    run_guarded,
    verify_artifact,
)
from devtrack.core.sequential import SequentialPlan, look_at
from devtrack.core.stats import summarize
from devtrack.runtimes import (
    RuntimeOptions,
    RuntimeSession,
    check_format,
    load_runtime,
    open_session,
)

MAX_BLOCK_SIZE = 10
DEFAULT_REPEATS = 6
PAIRS_PER_REPEAT = 48  # blocks sized from the warm-up so a repeat holds about this many pairs
MIN_PAIRS = 4  # a repeat of a slow model is stretched to hold at least this many
WARM_RUNS_AFTER_FIRST = 2
CLOCK_WALL = "wall"  # the sequential decision judges wall-clock block ratios ...
CLOCK_CPU = "cpu"  # ... or the worker process's CPU time per block


def _side(spec: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(spec, str):
        return {"artifact_path": spec, "sha256": None, "format": check_format(Path(spec).suffix)}
    return {"artifact_path": spec["artifact_path"], "sha256": spec.get("sha256"),
            "format": check_format(spec.get("format") or Path(spec["artifact_path"]).suffix)}


def _block_medians(samples: np.ndarray, block_size: int) -> np.ndarray:
    blocks = samples[: samples.size // block_size * block_size].reshape(-1, block_size)
    return np.median(blocks, axis=1)


def _run_block(invoke: Callable[[], object], buf: np.ndarray, start: int,
               block_size: int) -> None:
    clock = time.perf_counter_ns
    for i in range(start, start + block_size):
        t0 = clock()
        invoke()
        buf[i] = clock() - t0


def run_interleaved(job: dict[str, Any]) -> dict[str, Any]:
    """Measure the pair in ``job`` side by side; never raises, a failure is in the result."""
    sides = [_side(s) for s in job["pair"]]
    result: dict[str, Any] = {
        PROTOCOL_KEY: PROTOCOL_VERSION, "result_version": RESULT_VERSION,
        "mode": "interleaved", "status": "failed", "error": None, "pair": sides,
        "runtime": None, "runtime_version": None,
        "runtime_options": job.get("options", {}), "samples_encoding": SAMPLES_ENCODING,
        "phases": {}, "warnings": [],
    }
    return run_guarded(job, result,
                       lambda job, result, progress: _interleave(job, sides, result, progress))


def _interleave(job: dict[str, Any], sides: list[dict[str, Any]], result: dict[str, Any],
                progress: Progress) -> None:
    if len(sides) != 2:
        raise ValueError(f"an interleaved job needs exactly two artifacts, got {len(sides)}")
    # Both sessions stay loaded: idle onnxruntime threads must not spin (see RuntimeOptions).
    options = replace(RuntimeOptions.from_dict(job.get("options", {})), ort_allow_spinning=False)
    m = job.get("measurement", {})
    block_size = int(job["block_size"]) if job.get("block_size") else None
    plan = SequentialPlan.from_dict(job["sequential"]) if job.get("sequential") else None
    repeats = plan.max_repeats if plan else int(job.get("repeats", DEFAULT_REPEATS))
    repeat_s = float(m.get("min_time_s", 1.5))
    warmup_runs = max(1, int(m.get("warmup_runs", 10)))
    by_cpu = job.get("clock", CLOCK_WALL) == CLOCK_CPU
    specs, fills = job_inputs(job)
    seed = int(job.get("seed", 0))
    clock = time.perf_counter_ns
    phases = result["phases"]

    progress("verify")
    for side in sides:
        verify_artifact(Path(side["artifact_path"]), side["sha256"])
    progress("import")
    t0 = clock()
    runtimes = [load_runtime(side["format"], options) for side in sides]
    phases["import_ms"] = ns_to_ms(clock() - t0)
    result["runtime"], result["runtime_version"] = runtimes[0]
    result["runtimes"] = [list(r) for r in runtimes]

    samples: list[list[np.ndarray]] = [[], []]
    ratios: list[np.ndarray] = []
    repeat_ratios: list[float] = []
    cpu_ratios: list[float] = []
    looks: list[dict[str, Any]] = []
    init_ms: list[list[float]] = [[], []]
    for r in range(repeats):
        progress(f"repeat {r + 1}/{repeats}")
        sessions: list[RuntimeSession | None] = [None, None]
        for k in ((0, 1) if r % 2 == 0 else (1, 0)):  # alternate which is created first
            t0 = clock()
            sessions[k] = open_session(Path(sides[k]["artifact_path"]), sides[k]["format"],
                                       options)
            init_ms[k].append(ns_to_ms(clock() - t0))
        pair: list[RuntimeSession] = [s for s in sessions if s is not None]
        feeds = [make_inputs(s.inputs, specs, fills, seed=seed) for s in pair]
        # The first repeat warms the process (imports, allocator, caches) as the profile
        # says; later ones only a new session's first calls, so WARM_RUNS_AFTER_FIRST do.
        runs = warmup_runs if r == 0 else min(warmup_runs, WARM_RUNS_AFTER_FIRST)
        timed = (runs + 1) // 2  # the later half: the first calls run cold
        for i in range(runs):
            if i == runs - timed:
                t0 = clock()
            for k in (0, 1):
                pair[k].run(feeds[k])
        if block_size is None:  # one pair of warm inferences took this long
            block_size, repeat_s = fit_grain(ns_to_ms(clock() - t0) / timed, repeat_s)
        bufs, cpu = _interleaved_loop(pair, feeds, block_size, repeat_s, first=r % 2)
        del pair, sessions, feeds
        gc.collect()
        medians = [_block_medians(b, block_size) for b in bufs]
        block_ratios = medians[1] / medians[0]
        ratios.append(block_ratios)
        repeat_ratios.append(float(np.median(block_ratios)))
        cpu_ratios.append(float(np.median(cpu[1] / np.maximum(cpu[0], 1e-6))))
        for k in (0, 1):
            samples[k].append(bufs[k])
        decide_on = cpu_ratios if by_cpu else repeat_ratios
        if plan is not None and plan.is_look(len(decide_on)):
            look = look_at(decide_on, plan)
            looks.append(look.to_dict())
            if look.decided:
                break

    all_ratios = np.concatenate(ratios)
    ratio_stats = summarize(all_ratios)
    phases["init_ms"] = {"a": init_ms[0], "b": init_ms[1]}
    result.update({
        "block_size": block_size,
        "repeats": len(repeat_ratios),
        "repeat_s": repeat_s,
        "ratios_b_over_a": encode_samples(all_ratios),
        "ratio_stats": ratio_stats.to_dict(),
        "median_ratio": ratio_stats.median,
        "repeat_median_ratios": [float(x) for x in repeat_ratios],
        "repeat_cpu_ratios": [float(x) for x in cpu_ratios],
        "clock": CLOCK_CPU if by_cpu else CLOCK_WALL,
        "sequential": plan.to_dict() if plan else None,
        "looks": looks,
    })
    for k, name in ((0, "a"), (1, "b")):
        side_ms = np.concatenate(samples[k]).astype(np.float32)
        result[name] = {"samples_ms": encode_samples(side_ms),
                        "stats": summarize(side_ms).to_dict()}
    progress("done")


def fit_grain(pair_ms: float, repeat_s: float) -> tuple[int, float]:
    """Block size and repeat length for a model whose A+B inference pair takes ``pair_ms``.

    Blocks as large as fit ``PAIRS_PER_REPEAT`` block pairs in ``repeat_s`` (1 to 10
    inferences), so a model over ~3 ms a pair alternates single inferences. More pairs a
    repeat narrow its ratio most (at 2 threads under load: ~7 pairs a 0.3 s repeat spread
    2-3%, ~16 pairs 1.1-1.5%), and the CPU clock needs no block to ride out a preempted
    call. A model too slow for ``MIN_PAIRS`` pairs of single inferences stretches the
    repeat instead.
    """
    pair_ms = max(pair_ms, 1e-3)
    fitting = int(repeat_s * 1000.0 / (PAIRS_PER_REPEAT * pair_ms))
    block = max(1, min(MAX_BLOCK_SIZE, fitting))
    return block, max(repeat_s, MIN_PAIRS * pair_ms * block / 1000.0)


def _interleaved_loop(pair: list[RuntimeSession], feeds: list[dict[str, np.ndarray]],
                      block_size: int, duration_s: float,
                      first: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Blocks A B / B A … for ``duration_s``: each side's samples and block CPU times in ms.

    The CPU time is the whole worker process's (``CLOCK_PROCESS_CPUTIME_ID``), so it
    counts every runtime thread, while time spent waiting for a core does not count.
    """
    clock, cpu_clock = time.perf_counter_ns, time.process_time_ns
    capacity = 64 * block_size
    bufs = [np.ones(capacity, dtype=np.int64), np.ones(capacity, dtype=np.int64)]
    cpu: list[list[int]] = [[], []]
    invokes = [pair[k].bind(feeds[k]) for k in (0, 1)]
    n = 0
    gc.disable()
    start = clock()
    pair_index = 0
    while n == 0 or clock() - start < duration_s * 1e9:
        if n + block_size > capacity:
            capacity *= 2
            for k in (0, 1):
                grown = np.ones(capacity, dtype=np.int64)
                grown[:n] = bufs[k][:n]
                bufs[k] = grown
        lead = (pair_index + first) % 2  # A-then-B and B-then-A alternate
        for k in (lead, 1 - lead):
            c0 = cpu_clock()
            _run_block(invokes[k], bufs[k], n, block_size)
            cpu[k].append(cpu_clock() - c0)
        n += block_size
        pair_index += 1
    gc.enable()
    return [b[:n] / 1e6 for b in bufs], [np.asarray(c, dtype=np.float64) / 1e6 for c in cpu]
