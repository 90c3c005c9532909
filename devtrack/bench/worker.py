"""Runs inside the isolated child process: time every phase, measure memory, write the result.

Entry point: ``python -m devtrack.bench.worker JOB.json RESULT.json``; the parent side is
``devtrack.bench.runner``. The job is the JSON ``runner.run_job`` writes; a job with a
``"pair"`` key runs the interleaved A/B mode of ``devtrack.bench.interleaved`` instead, one with
``"op_pair"`` the per-operator A/B mode of ``devtrack.bench.op_pair``; an
``"evaluation"`` key adds the phase of ``devtrack.bench.evaluation`` after the timed loop.
The result is written atomically (temp file + rename), so the parent sees all of it or none.

For tests only, ``DEVTRACK_TEST_HOOK`` makes the worker misbehave right after loading the
model: ``abort`` (os.abort), ``sleep`` (forever), ``allocate:<MB>`` (allocate and touch that
many MiB, keep them, carry on), ``raise`` (raise RuntimeError), ``exit:<code>`` (print a line
to stderr and exit without a result), ``signal:<NAME>`` (send itself e.g. SIGSEGV).
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from devtrack.bench.environment import busy_warning, environment_snapshot, load_average
from devtrack.bench.inputs import make_inputs
from devtrack.bench.memory import MemoryProbe
from devtrack.bench.protocol import (
    PROTOCOL_KEY,
    PROTOCOL_VERSION,
    RESULT_VERSION,
    SAMPLES_ENCODING,
    MeasureJob,
    encode_samples,
    version_problem,
)
from devtrack.core.inputspec import FillSpec, InputSpec
from devtrack.core.stats import StoppingRule, stop_reason, summarize
from devtrack.errors import DevtrackError, UsageError
from devtrack.runtimes import RuntimeOptions, RuntimeSession, load_runtime, open_session

CHECK_EVERY_RUNS = 50  # look at the stopping rule after at most this many runs ...
CHECK_EVERY_S = 0.2  # ... or this much time, whichever comes first,
CHECK_OVERHEAD = 0.02  # unless checking would cost more than this share of the loop
OP_PROFILE_RUNS = 20
HIGH_CV = 0.10
HEAVY_TAIL = 3.0  # p99 / median above this is reported as a heavy tail
_MIB = 1024.0 * 1024.0
_hook_ballast: list[np.ndarray] = []  # keeps the allocate hook's memory resident


# --- job helpers shared with the interleaved mode -----------------------------------------

def verify_artifact(path: Path, sha256: str | None) -> None:
    """Raise UsageError unless ``path`` exists and (when given) hashes to ``sha256``."""
    if not path.is_file():
        raise UsageError(f"artifact {path} does not exist")
    if not sha256:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != sha256.lower():
        raise UsageError(f"artifact sha256 mismatch for {path}: expected {sha256[:12]}…, "
                         f"file has {digest.hexdigest()[:12]}… (changed or corrupted on disk)")


def job_inputs(job: dict[str, Any]) -> tuple[list[InputSpec], list[FillSpec]]:
    return ([InputSpec.from_dict(d) for d in job.get("input_specs", [])],
            [FillSpec.from_dict(d) for d in job.get("fills", [])])


def ns_to_ms(ns: int) -> float:
    return round(ns / 1e6, 4)


def write_result(path: Path, result: dict[str, Any]) -> None:
    """Write ``result`` as JSON atomically: a temp file beside ``path``, then rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class Progress:
    """Tells the parent which phase the worker is in (a tiny file it polls), never in a loop."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None

    def __call__(self, phase: str) -> None:
        if self.path is None:
            return
        try:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(phase, encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass


def run_test_hook() -> None:
    """Misbehave as ``DEVTRACK_TEST_HOOK`` asks (tests only; see the module docstring)."""
    hook = os.environ.get("DEVTRACK_TEST_HOOK", "")
    if not hook:
        return
    name, _, arg = hook.partition(":")
    if name == "abort":
        os.abort()
    elif name == "sleep":
        while True:
            time.sleep(3600)
    elif name == "allocate":
        ballast = np.ones(int(float(arg) * _MIB), dtype=np.uint8)  # ones() touches every page
        _hook_ballast.append(ballast)
    elif name == "raise":
        raise RuntimeError("DEVTRACK_TEST_HOOK=raise")
    elif name == "exit":
        sys.stderr.write(f"DEVTRACK_TEST_HOOK=exit:{arg}: leaving without a result\n")
        sys.stderr.flush()
        os._exit(int(arg or 3))
    elif name == "signal":
        os.kill(os.getpid(), signal.Signals[arg])
        time.sleep(5)
    else:
        raise UsageError(f"unknown DEVTRACK_TEST_HOOK {hook!r}")


# --- the measured loop --------------------------------------------------------------------

def _block_size(est_ns: float, check_ns: int, remaining_s: float) -> int:
    """Runs until the next look at the stopping rule: ≤ 50 runs or ≤ 0.2 s, but enough that
    the check costs ≤ 2% of the loop, and not far past ``max_time_s``."""
    est = max(est_ns, 1.0)
    block = max(1, min(CHECK_EVERY_RUNS, int(CHECK_EVERY_S * 1e9 / est)))
    if check_ns > CHECK_OVERHEAD * block * est:
        block = int(check_ns / CHECK_OVERHEAD / est) + 1
    return max(1, min(block, int(remaining_s * 1e9 / est) + 1))


def measure_loop(session: RuntimeSession, feeds: dict[str, np.ndarray], rule: StoppingRule,
                 est_ns: float) -> tuple[np.ndarray, float, str]:
    """Time the session's bound inference call (see ``RuntimeSession.bind``) until ``rule``
    says stop.

    Returns (samples in ns as int64, loop seconds, stop reason). Inside a block nothing but
    the run call and one store into a preallocated int64 array happens; growing the array,
    the stopping rule and the next block size are dealt with between blocks.
    """
    invoke = session.bind(feeds)
    clock = time.perf_counter_ns
    buf = np.zeros(max(1024, min(1 << 16, int(rule.max_time_s * 1e9 / max(est_ns, 1.0)) + 64)),
                   dtype=np.int64)
    buf.fill(1)  # touch every page now, not inside the loop
    n = 0
    check_ns = 0
    reason: str | None = None
    start = clock()
    while reason is None:
        remaining = rule.max_time_s - (clock() - start) / 1e9
        block = _block_size(est_ns, check_ns, max(remaining, 0.0))
        if n + block > buf.size:
            grown = np.ones(max(buf.size * 2, n + block), dtype=np.int64)
            grown[:n] = buf[:n]
            buf = grown
        for i in range(n, n + block):
            t0 = clock()
            invoke()
            buf[i] = clock() - t0
        c0 = clock()
        est_ns = float(buf[n:n + block].mean())
        n += block
        elapsed = (c0 - start) / 1e9
        reason = stop_reason(rule, buf[:n] / 1e6, elapsed)
        if reason is None and elapsed > rule.max_time_s * 1.5 + 1.0:
            reason = "max_time"  # belt and braces: never outlive the parent's timeout
        check_ns = clock() - c0
    return buf[:n].copy(), (clock() - start) / 1e9, reason


# --- one measurement ----------------------------------------------------------------------

def _new_result(job: dict[str, Any]) -> dict[str, Any]:
    return {
        PROTOCOL_KEY: PROTOCOL_VERSION,
        "result_version": RESULT_VERSION,
        "mode": "single",
        "status": "failed",
        "error": None,
        "artifact_path": job.get("artifact_path"),
        "sha256": job.get("sha256"),
        "format": job.get("format"),
        "runtime": None,
        "runtime_version": None,
        "runtime_options": job.get("options", {}),
        "measurement": job.get("measurement", {}),
        "phases": {},
        "samples_ms": None,
        "samples_encoding": SAMPLES_ENCODING,
        "stop_reason": None,
        "stats": None,
        "memory": None,
        "op_profile": None,
        "evaluation": None,
        "environment": {},
        "warnings": [],
    }


def record_failure(result: dict[str, Any], exc: BaseException) -> None:
    result["status"] = "failed"
    if isinstance(exc, DevtrackError):
        result["error"] = str(exc)
    else:
        text = str(exc).strip().splitlines()
        result["error"] = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
        result["traceback"] = traceback.format_exc()


def run_guarded(job: dict[str, Any], result: dict[str, Any],
                measure: Callable[[dict[str, Any], dict[str, Any], Progress], None],
                ) -> dict[str, Any]:
    """Run ``measure`` with the environment snapshot around it; never raises: a failure is
    recorded in ``result`` (shared by single and interleaved measurements)."""
    result["environment"] = environment_snapshot()
    busy = busy_warning(result["environment"])
    if busy:
        result["warnings"].append(busy)
    try:
        measure(job, result, Progress(job.get("progress_path")))
        result["status"] = "ok"
    except Exception as exc:
        record_failure(result, exc)
    finally:
        gc.enable()
        result["environment"]["load_average_after"] = load_average()
    return result


def run_single(job: dict[str, Any]) -> dict[str, Any]:
    """Measure one artifact as ``job`` says; never raises, a failure is in the result."""
    return run_guarded(job, _new_result(job), _measure)


def _measure(job: dict[str, Any], result: dict[str, Any], progress: Progress) -> None:
    phases = result["phases"]
    typed = MeasureJob.from_dict(job)
    path = Path(typed.artifact_path)
    fmt = typed.format
    options = RuntimeOptions.from_dict(typed.options)
    result["runtime_options"] = options.to_dict()
    window = typed.measurement
    rule = StoppingRule(min_runs=window.min_runs, min_time_s=window.min_time_s,
                        max_time_s=window.max_time_s, target_rel_ci=window.target_rel_ci)
    warmup_runs = window.warmup_runs
    specs, fills = job_inputs(job)
    clock = time.perf_counter_ns

    progress("verify")
    verify_artifact(path, typed.sha256)

    progress("import")
    t0 = clock()
    result["runtime"], result["runtime_version"] = load_runtime(fmt, options)
    phases["import_ms"] = ns_to_ms(clock() - t0)

    memory = MemoryProbe()
    baseline = memory.rss_mb()
    mem: dict[str, Any] = {"baseline_rss_mb": round(baseline, 2), "method": memory.method}
    result["memory"] = mem

    progress("load")
    memory.reset_peak()
    t0 = clock()
    session = open_session(path, fmt, options)
    phases["init_ms"] = ns_to_ms(clock() - t0)
    load_peak = memory.peak_mb()
    mem["load_peak_mb"] = round(load_peak, 2)
    mem["load_delta_mb"] = round(load_peak - baseline, 2)
    result["runtime_api"] = getattr(session, "api", None)

    run_test_hook()
    feeds = make_inputs(session.inputs, specs, fills, seed=typed.seed)
    result["inputs"] = {k: {"shape": list(v.shape), "dtype": v.dtype.name}
                        for k, v in feeds.items()}

    cooldown_s = window.cooldown_s
    if cooldown_s > 0:
        progress("cooldown")
        time.sleep(cooldown_s)  # let the CPU settle (and cool) after loading
        phases["cooldown_s"] = cooldown_s

    progress("first")
    gc.collect()
    memory.reset_peak()
    t0 = clock()
    first_outputs = session.run(feeds)
    first_ns = clock() - t0
    phases["first_ms"] = ns_to_ms(first_ns)

    progress("warmup")
    gc.disable()  # like timeit: a collection pause is the harness's noise, not the model's
    t0 = clock()
    for _ in range(warmup_runs):
        session.run(feeds)
    warmup_ns = clock() - t0
    phases["warmup_ms"] = ns_to_ms(warmup_ns)
    phases["warmup_runs"] = warmup_runs

    progress("measure")
    est_ns = warmup_ns / warmup_runs if warmup_runs else float(first_ns)
    samples_ns, loop_s, reason = measure_loop(session, feeds, rule, est_ns)
    gc.enable()
    phases["loop_s"] = round(loop_s, 4)
    inference_peak = memory.peak_mb()
    mem["inference_peak_mb"] = round(inference_peak, 2)
    mem["peak_rss_mb"] = round(max(load_peak, inference_peak), 2)

    samples_ms = (samples_ns / 1e6).astype(np.float32)
    result["stop_reason"] = reason
    result["samples_ms"] = encode_samples(samples_ms)
    if samples_ms.size:
        stats = summarize(samples_ms)
        result["stats"] = stats.to_dict()
        q25, q75 = np.percentile(samples_ms, [25, 75])
        spread = float((q75 - q25) / stats.median) if stats.median > 0 else 0.0
        _quality_warnings(result, stats.cv, spread, stats.p99 / stats.median
                          if stats.median > 0 else 1.0, stats.rel_ci_half_width, rule, reason)

    if options.op_profile or typed.op_profile:
        progress("op_profile")
        result["op_profile"] = _op_profile(session, feeds, result["warnings"])

    if typed.evaluation:
        from devtrack.bench.evaluation import add_fidelity, evaluate

        evaluation = evaluate(session, job, fills, result["warnings"], progress)
        del session  # the reference loads next: one model resident at a time (memory cap)
        gc.collect()
        result["evaluation"] = add_fidelity(evaluation, job, options, result["warnings"],
                                            progress)
    else:
        _nonfinite_warning(first_outputs, result["warnings"])
    progress("done")


def _quality_warnings(result: dict[str, Any], cv: float, spread: float, tail: float,
                      rel_ci: float, rule: StoppingRule, reason: str) -> None:
    """Warn about noisy runs in terms a user can act on.

    The CV (std/mean) of latency is dominated by a handful of scheduler hiccups on a fast
    model (a 4 ms stall among 10^5 samples of 10 µs gives a CV of 1000% while the median is
    exact to ±0.2%), so it warns only when the bulk is spread too (interquartile range over
    the median above 10%); a heavy tail is reported on its own through p99/median.
    """
    warnings: list[str] = result["warnings"]
    if cv > HIGH_CV and spread > HIGH_CV:
        warnings.append(f"high variance: CV {cv * 100:.1f}%, interquartile range "
                        f"{spread * 100:.1f}% of the median")
    if tail > HEAVY_TAIL:
        warnings.append(f"heavy tail: p99 is {tail:.1f}× the median (CV {cv * 100:.0f}%)")
    n = result["stats"]["n"]
    if n < rule.min_runs:
        warnings.append(f"only {n} of min_runs={rule.min_runs} runs fit in "
                        f"max_time_s={rule.max_time_s:g}")
    elif reason != "converged" and rule.target_rel_ci > 0:
        loop_s = result["phases"]["loop_s"]
        warnings.append(f"did not converge: median ±{rel_ci * 100:.1f}% after {loop_s:.1f} s "
                        f"(target ±{rule.target_rel_ci * 100:g}%)")


def _nonfinite_warning(outputs: list[np.ndarray], warnings: list[str]) -> None:
    """Flag NaN/Inf in the outputs of the first inference (on the benchmark inputs)."""
    from devtrack.core.metrics import count_nonfinite

    found = count_nonfinite([np.asarray(out)[None, ...] for out in outputs])
    if found.flagged:
        warnings.append(f"{found.describe()} (benchmark inputs)")


def _op_profile(session: RuntimeSession, feeds: dict[str, np.ndarray],
                warnings: list[str]) -> dict[str, Any] | None:
    """Per-op times from a separate profiled pass, after the measured loop."""
    if not session.start_op_profile():
        warnings.append(f"op profile not available: {session.runtime_name}'s Python API "
                        f"exposes no per-op profiler")
        return None
    for _ in range(OP_PROFILE_RUNS):
        session.run(feeds)
    ops = session.end_op_profile()
    return None if ops is None else {"runs": OP_PROFILE_RUNS, "ops": ops}


# --- entry point --------------------------------------------------------------------------

def _die_with_parent() -> None:
    """Never outlive devtrack, whatever kills it (SIGKILL, SIGHUP, a crash), so no orphan
    keeps measuring: on Linux the kernel SIGKILLs this worker when its parent dies
    (PR_SET_PDEATHSIG); elsewhere a daemon thread checks every second. A parent that died
    while this worker was still starting is caught by comparing ``getppid()`` with the pid
    the parent passed in ``DEVTRACK_PARENT_PID``."""
    from devtrack.bench.runner import PARENT_PID_ENV

    expected = os.environ.get(PARENT_PID_ENV, "")
    parent = int(expected) if expected.isdigit() else os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    else:
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(3)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent is already gone
        os._exit(3)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.stderr.write("usage: python -m devtrack.bench.worker JOB.json RESULT.json\n")
        return 2
    _die_with_parent()
    job_path, result_path = Path(args[0]), Path(args[1])
    try:
        job = json.loads(job_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        result = _new_result({})
        result["error"] = f"cannot read job {job_path}: {exc}"
        write_result(result_path, result)
        return 0
    refused = version_problem(job, "job") if isinstance(job, dict) else "the job is not a table"
    if refused is not None:  # e.g. a device that cached a worker of another devtrack
        result = _new_result({})
        result["error"] = f"worker refused the job: {refused}"
        write_result(result_path, result)
        return 0
    if "pair" in job:
        from devtrack.bench.interleaved import run_interleaved

        result = run_interleaved(job)
    elif "op_pair" in job:
        from devtrack.bench.op_pair import run_op_pair

        result = run_op_pair(job)
    else:
        result = run_single(job)
    write_result(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
